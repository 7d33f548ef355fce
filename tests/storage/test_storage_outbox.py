"""The DM outbox: leases, retries and exactly-once claiming, on SQLite and PostgreSQL."""

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select, text

from bot.domain.model import Notification
from bot.domain.notices import NoticeKind
from storage import SqlStore, make_engine, upgrade
from storage.engine import writer
from storage.tables import outbox
from tests.storage.helpers import T0, notice, reset_postgres

LEASE = 60.0


async def _queue(store: SqlStore, count: int, *, at: datetime = T0) -> None:
    async with store.transaction() as tx:
        for n in range(count):
            await tx.notify(notice(n, at=at))


async def _claim(store: SqlStore, now: datetime, *, limit: int = 100) -> Sequence[Notification]:
    return await store.claim_notifications(limit=limit, now=now, lease_seconds=LEASE)


async def test_claims_are_oldest_first_up_to_the_limit_and_count_attempts(store: SqlStore) -> None:
    await _queue(store, 5)
    claimed = await _claim(store, T0, limit=3)
    assert [(n.user_id, n.notice, n.attempts) for n in claimed] == [
        ("U0000", notice(0), 1),
        ("U0001", notice(1), 1),
        ("U0002", notice(2), 1),
    ]
    assert [n.user_id for n in await _claim(store, T0, limit=3)] == ["U0003", "U0004"]


async def test_a_notice_comes_back_from_the_outbox_equal_to_the_one_queued(store: SqlStore) -> None:
    at = T0 + timedelta(microseconds=123456)
    queued = [
        replace(
            notice(n, at=at, kind=kind),
            org="Acmé Corp",
            project=None if kind is NoticeKind.ROLE_GRANTED else "Wéb",
            role="owner" if kind in (NoticeKind.ROLE_GRANTED, NoticeKind.ROLE_REVOKED) else None,
            enterprise_id="E0001" if n % 2 else None,
        )
        for n, kind in enumerate(NoticeKind)
    ]
    async with store.transaction() as tx:
        for one in queued:
            await tx.notify(one)
    claimed = await _claim(store, at)
    assert [n.notice for n in claimed] == queued
    assert [(n.user_id, n.text, n.attempts) for n in claimed] == [(q.recipient, "", 1) for q in queued]
    assert all(n.notice is not None and n.notice.at.utcoffset() == timedelta(0) for n in claimed)
    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    outbox.c.user_id, outbox.c.team_id, outbox.c.created_at, outbox.c.next_attempt_at
                ).order_by(outbox.c.id)
            )
        ).all()
    assert rows == [(q.recipient, q.team_id, at, at) for q in queued]


async def test_rows_queued_as_text_are_claimed_without_a_notice(store: SqlStore) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(
            outbox.insert().values(user_id="U1", text="hello", created_at=T0, next_attempt_at=T0)
        )
    [claimed] = await _claim(store, T0)
    assert claimed == Notification(id=claimed.id, user_id="U1", notice=None, text="hello", attempts=1)


async def test_two_concurrent_claimers_never_get_the_same_row(store: SqlStore) -> None:
    await _queue(store, 60)

    async def worker() -> list[int]:
        mine: list[int] = []
        while batch := await _claim(store, T0 + timedelta(seconds=1), limit=4):
            mine += [n.id for n in batch]
            await asyncio.sleep(0)
        return mine

    first, second = await asyncio.gather(worker(), worker())
    assert not set(first) & set(second)
    assert len(first) + len(second) == 60


async def test_claimed_rows_are_not_claimed_again_before_the_lease_expires(store: SqlStore) -> None:
    await _queue(store, 1)
    [first] = await _claim(store, T0)
    assert await _claim(store, T0 + timedelta(seconds=LEASE - 1)) == []
    [again] = await _claim(store, T0 + timedelta(seconds=LEASE))
    assert (again.id, again.attempts) == (first.id, 2)


async def test_rescheduled_rows_come_back_after_their_time(store: SqlStore) -> None:
    await _queue(store, 1)
    [claimed] = await _claim(store, T0)
    retry_at = T0 + timedelta(seconds=30)
    await store.reschedule(claimed.id, at=retry_at, error="ratelimited " + "x" * 1000)
    assert await _claim(store, retry_at - timedelta(seconds=1)) == []
    [again] = await _claim(store, retry_at)
    assert (again.id, again.attempts) == (claimed.id, 2)
    async with store.engine.connect() as conn:
        error = (await conn.execute(select(outbox.c.last_error))).scalar_one()
    assert error.startswith("ratelimited") and len(error) == 500


async def test_sent_rows_never_come_back(store: SqlStore) -> None:
    await _queue(store, 2)
    first, second = await _claim(store, T0)
    await store.mark_sent(first.id, at=T0)
    assert await store.pending_notifications() == 1
    later = await _claim(store, T0 + timedelta(days=1))
    assert [n.id for n in later] == [second.id]
    await store.mark_sent(second.id, at=T0)
    assert await _claim(store, T0 + timedelta(days=30)) == []
    assert await store.pending_notifications() == 0


async def test_rows_queued_for_later_are_not_claimed_early(store: SqlStore) -> None:
    await _queue(store, 1, at=T0 + timedelta(minutes=1))
    assert await _claim(store, T0) == []
    assert len(await _claim(store, T0 + timedelta(minutes=1))) == 1


async def test_a_claimer_skips_rows_another_holds_instead_of_waiting_on_postgresql(
    pg_url: str,
) -> None:
    engine = make_engine(pg_url)
    await reset_postgres(engine)
    await upgrade(engine)
    store = SqlStore(engine)
    try:
        await _queue(store, 3)
        async with writer(engine).begin() as holder:
            await holder.execute(text("SELECT id FROM outbox WHERE id = 1 FOR UPDATE"))
            claimed = await asyncio.wait_for(_claim(store, T0), timeout=5)
        assert [n.id for n in claimed] == [2, 3]
        assert [n.id for n in await _claim(store, T0)] == [1]
    finally:
        await store.close()

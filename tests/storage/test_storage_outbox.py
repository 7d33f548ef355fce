"""The DM outbox: leases, retries, exactly-once claiming and claiming by origin, on SQLite and PostgreSQL."""

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text

from bot.domain.model import AuditEvent, Notification
from bot.domain.notices import SHELL_ORIGIN, NoticeKind
from storage import SqlStore, make_engine, upgrade
from storage.engine import writer
from storage.tables import audit_events, outbox
from tests.storage.helpers import T0, TEAM, World, notice, reset_postgres

LEASE = 60.0


async def _queue(store: SqlStore, count: int, *, at: datetime = T0) -> None:
    async with store.transaction() as tx:
        for n in range(count):
            await tx.notify(notice(n, at=at))


async def _claim(
    store: SqlStore, now: datetime, *, limit: int = 100, origin: str | None = None
) -> Sequence[Notification]:
    return await store.claim_notifications(limit=limit, now=now, lease_seconds=LEASE, origin=origin)


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


async def test_a_worker_claims_only_the_rows_of_its_own_origin(store: SqlStore) -> None:
    origins = [None, SHELL_ORIGIN, None, SHELL_ORIGIN, SHELL_ORIGIN, None]
    async with store.transaction() as tx:
        for n, origin in enumerate(origins):
            await tx.notify(replace(notice(n), origin=origin))
    shell = await _claim(store, T0, origin=SHELL_ORIGIN)
    assert [n.user_id for n in shell] == ["U0001", "U0003", "U0004"]
    assert all(n.notice is not None and n.notice.origin == SHELL_ORIGIN for n in shell)
    async with store.engine.connect() as conn:
        untouched = (
            await conn.execute(
                select(outbox.c.user_id, outbox.c.origin, outbox.c.attempts, outbox.c.claimed_until)
                .where(outbox.c.origin.is_(None))
                .order_by(outbox.c.id)
            )
        ).all()
    assert untouched == [("U0000", None, 0, None), ("U0002", None, 0, None), ("U0005", None, 0, None)]
    assert await _claim(store, T0 + timedelta(seconds=1), origin=SHELL_ORIGIN) == []  # leased: none left
    server = await _claim(store, T0)
    assert [n.user_id for n in server] == ["U0000", "U0002", "U0005"]
    assert all(n.notice is not None and n.notice.origin is None for n in server)


async def test_rows_of_an_unknown_origin_are_claimed_by_no_worker(store: SqlStore) -> None:
    async with store.transaction() as tx:
        await tx.notify(replace(notice(0), origin="elsewhere"))
    assert await _claim(store, T0) == []
    assert await _claim(store, T0, origin=SHELL_ORIGIN) == []
    assert [n.user_id for n in await _claim(store, T0, origin="elsewhere")] == ["U0000"]


async def test_an_audit_event_keeps_its_origin(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        for n, origin in enumerate([None, SHELL_ORIGIN]):
            await tx.add_audit(
                AuditEvent(
                    org_id=world.org.id,
                    project_id=world.project.id,
                    actor="U0OWNER",
                    action="key created",
                    at=T0,
                    key_name=f"k{n}",
                    origin=origin,
                )
            )
    async with store.read() as tx:
        page = await tx.audit_page(project_id=world.project.id, before_id=None, limit=10)
    assert [(e.key_name, e.origin) for e in page] == [("k1", SHELL_ORIGIN), ("k0", None)]
    async with store.engine.connect() as conn:
        stored = (await conn.execute(select(audit_events.c.origin).order_by(audit_events.c.id))).scalars()
        assert list(stored) == [None, SHELL_ORIGIN]


# -- dead letters ---------------------------------------------------------------------------------


async def _outbox_row(store: SqlStore, row_id: int) -> Any:
    async with store.engine.connect() as conn:
        return (await conn.execute(select(outbox).where(outbox.c.id == row_id))).one()


async def test_a_buried_row_is_never_claimed_again_and_counts_as_dead_not_pending(store: SqlStore) -> None:
    await _queue(store, 2)
    ghost, other = await _claim(store, T0)
    await store.bury(ghost.id, at=T0 + timedelta(seconds=1), error="200 user_not_found " + "x" * 1000)
    await store.reschedule(other.id, at=T0, error="503 ")
    assert (await store.pending_notifications(), await store.dead_notifications()) == (1, 1)
    later = await _claim(store, T0 + timedelta(days=365))
    assert [n.id for n in later] == [other.id]
    row = await _outbox_row(store, ghost.id)
    assert (row.dead_at, row.claimed_until, row.sent_at) == (T0 + timedelta(seconds=1), None, None)
    assert row.last_error.startswith("200 user_not_found") and len(row.last_error) == 500


async def test_revived_rows_are_due_at_once_with_a_fresh_count_of_attempts(store: SqlStore) -> None:
    await _queue(store, 3)
    first, second, third = await _claim(store, T0)
    for n in (first, second):
        await store.bury(n.id, at=T0, error="200 channel_not_found")
    await store.mark_sent(third.id, at=T0)
    revive_at = T0 + timedelta(days=2)
    assert await store.revive_notifications([second.id, third.id, 999], at=revive_at) == [second.id]
    assert (await store.pending_notifications(), await store.dead_notifications()) == (1, 1)
    row = await _outbox_row(store, second.id)
    assert (row.dead_at, row.claimed_until, row.next_attempt_at, row.attempts) == (None, None, revive_at, 0)
    assert row.last_error == "200 channel_not_found"  # kept until the next attempt says otherwise
    [again] = await _claim(store, revive_at)
    assert (again.id, again.attempts) == (second.id, 1)
    assert await store.revive_notifications(None, at=revive_at) == [first.id]
    assert await store.revive_notifications(None, at=revive_at) == []
    assert await store.dead_notifications() == 0


async def test_a_sent_row_is_never_revived(store: SqlStore) -> None:
    await _queue(store, 1)
    [claimed] = await _claim(store, T0)
    await store.bury(claimed.id, at=T0, error="200 user_not_found")
    await store.mark_sent(claimed.id, at=T0)  # a slow first attempt that Slack delivered after all
    assert await store.revive_notifications([claimed.id], at=T0) == []
    assert await store.revive_notifications(None, at=T0) == []
    assert (await store.pending_notifications(), await store.dead_notifications()) == (0, 0)


async def test_unsent_rows_are_listed_pending_or_dead_oldest_first_without_their_text(store: SqlStore) -> None:
    await _queue(store, 4)
    async with store.engine.begin() as conn:
        await conn.execute(
            outbox.insert().values(user_id="UTEXT", text="hello", created_at=T0, next_attempt_at=T0)
        )
    rows = await _claim(store, T0)
    await store.bury(rows[1].id, at=T0 + timedelta(minutes=1), error="200 user_not_found")
    await store.bury(rows[4].id, at=T0 + timedelta(minutes=2), error="200 is_archived")
    await store.reschedule(rows[0].id, at=T0 + timedelta(minutes=5), error="503 ")
    await store.mark_sent(rows[2].id, at=T0)
    pending = await store.unsent_notifications(dead=False, limit=10)
    dead = await store.unsent_notifications(dead=True, limit=10)
    assert [(e.user_id, e.team_id, e.kind, e.attempts, e.last_error, e.next_attempt_at, e.dead_at)
            for e in pending] == [
        ("U0000", TEAM, "key created", 1, "503 ", T0 + timedelta(minutes=5), None),
        ("U0003", TEAM, "key created", 1, None, T0, None),
    ]
    assert [(e.user_id, e.kind, e.last_error, e.dead_at) for e in dead] == [
        ("U0001", "key created", "200 user_not_found", T0 + timedelta(minutes=1)),
        ("UTEXT", None, "200 is_archived", T0 + timedelta(minutes=2)),
    ]
    assert all(e.created_at == T0 for e in pending + dead)
    assert [e.user_id for e in await store.unsent_notifications(dead=False, limit=1)] == ["U0000"]


async def test_a_row_waits_out_the_settle_time_and_then_brings_its_recipients_younger_rows(store: SqlStore) -> None:
    async with store.transaction() as tx:
        await tx.notify(replace(notice(1), recipient="UANA", at=T0))
        await tx.notify(replace(notice(2), recipient="UANA", at=T0 + timedelta(seconds=2)))
        await tx.notify(replace(notice(3), recipient="UBOB", at=T0 + timedelta(seconds=2)))

    async def claim(now: datetime) -> list[str]:
        rows = await store.claim_notifications(limit=100, now=now, lease_seconds=LEASE, settle_seconds=3)
        return [f"{n.user_id}:{n.notice.key_name if n.notice else ''}" for n in rows]

    one, two, three = (notice(n).key_name for n in (1, 2, 3))
    assert await claim(T0 + timedelta(seconds=2.5)) == []
    assert await claim(T0 + timedelta(seconds=3)) == [f"UANA:{one}", f"UANA:{two}"]
    assert await claim(T0 + timedelta(seconds=4)) == []
    assert await claim(T0 + timedelta(seconds=5)) == [f"UBOB:{three}"]


async def test_a_row_waits_behind_an_older_one_to_the_same_person_until_that_is_sent_or_dead(store: SqlStore) -> None:
    async with store.transaction() as tx:
        for n in (1, 2, 1, 1):  # U0001, U0002, U0001, U0001
            await tx.notify(notice(n))
    first, other, second, third = await _claim(store, T0)
    assert not await store.waits_behind(first.id, user_id=first.user_id)
    assert await store.waits_behind(third.id, user_id=third.user_id)  # behind first and second
    assert not await store.waits_behind(other.id, user_id=other.user_id)  # nobody older to U0002
    await store.mark_sent(first.id, at=T0)
    await store.bury(second.id, at=T0, error="user_not_found")
    assert not await store.waits_behind(third.id, user_id=third.user_id)

"""The retention purges: what each deletes, where its boundary lies, in bounded batches, from several
purgers at once, and never an audit event; on SQLite and PostgreSQL."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select

from bot.domain.model import AuditEvent, PendingDeletion
from storage import SqlStore
from storage.tables import audit_events, outbox, pending_deletions
from tests.storage.helpers import OWNER, T0, TEAM, World, notice

CUT = T0 + timedelta(days=30)
SECOND = timedelta(seconds=1)


async def _rows(store: SqlStore, *, count: int) -> list[int]:
    """Queue ``count`` DMs (users U0000 …) and claim them all; their ids, oldest first."""
    async with store.transaction() as tx:
        for n in range(count):
            await tx.notify(notice(n))
    claimed = await store.claim_notifications(limit=count, now=T0, lease_seconds=60)
    return [n.id for n in claimed]


async def _users_left(store: SqlStore) -> list[str]:
    async with store.engine.connect() as conn:
        return list((await conn.execute(select(outbox.c.user_id).order_by(outbox.c.id))).scalars())


async def _tokens_left(store: SqlStore) -> list[str]:
    async with store.engine.connect() as conn:
        stmt = select(pending_deletions.c.token).order_by(pending_deletions.c.token)
        return list((await conn.execute(stmt)).scalars())


async def _pending(world: World, store: SqlStore, token: str, *, expires_at: datetime,
                   used_at: datetime | None = None) -> None:
    async with store.transaction() as tx:
        await tx.add_pending(
            PendingDeletion(token, key_row_id=1, project_id=world.project.id, user_id=OWNER, team_id=TEAM,
                            expires_at=expires_at, used_at=used_at)
        )


async def test_sent_dms_are_purged_only_when_sent_before_the_cut(store: SqlStore) -> None:
    before, at_cut, after, unsent, dead = await _rows(store, count=5)
    await store.mark_sent(before, at=CUT - SECOND)
    await store.mark_sent(at_cut, at=CUT)
    await store.mark_sent(after, at=CUT + SECOND)
    await store.reschedule(unsent, at=T0, error="503 ")
    await store.bury(dead, at=T0, error="200 user_not_found")
    assert await store.purge_sent_notifications(sent_before=CUT, limit=100) == 1
    assert await _users_left(store) == ["U0001", "U0002", "U0003", "U0004"]
    assert await store.purge_sent_notifications(sent_before=CUT, limit=100) == 0


async def test_dead_dms_are_purged_only_when_dead_since_before_the_cut(store: SqlStore) -> None:
    before, at_cut, after, pending, sent = await _rows(store, count=5)
    await store.bury(before, at=CUT - SECOND, error="200 user_not_found")
    await store.bury(at_cut, at=CUT, error="200 user_not_found")
    await store.bury(after, at=CUT + SECOND, error="200 user_not_found")
    await store.reschedule(pending, at=T0 - timedelta(days=365), error="503 ")  # old, but still live
    await store.mark_sent(sent, at=T0)
    assert await store.purge_dead_notifications(dead_before=CUT, limit=100) == 1
    assert await _users_left(store) == ["U0001", "U0002", "U0003", "U0004"]
    assert (await store.pending_notifications(), await store.dead_notifications()) == (1, 2)


async def test_pending_deletions_are_purged_once_expired_or_used_before_the_cut(
    store: SqlStore, world: World
) -> None:
    await _pending(world, store, "expired-before", expires_at=CUT - SECOND)
    await _pending(world, store, "expired-at-cut", expires_at=CUT)
    await _pending(world, store, "used-before", expires_at=CUT + timedelta(minutes=9), used_at=CUT - SECOND)
    await _pending(world, store, "used-at-cut", expires_at=CUT + timedelta(minutes=9), used_at=CUT)
    await _pending(world, store, "live", expires_at=CUT + timedelta(minutes=10))
    assert await store.purge_pending_deletions(ended_before=CUT, limit=100) == 2
    assert await _tokens_left(store) == ["expired-at-cut", "live", "used-at-cut"]
    async with store.read() as tx:
        assert await tx.pending("expired-before") is None
        live = await tx.pending("live")
    assert live is not None and live.used_at is None


async def test_each_purge_deletes_at_most_its_limit_per_call(store: SqlStore, world: World) -> None:
    for row_id in await _rows(store, count=7):
        await store.mark_sent(row_id, at=T0)
    for n in range(5):
        await _pending(world, store, f"t{n}", expires_at=T0)
    assert [await store.purge_sent_notifications(sent_before=CUT, limit=3) for _ in range(4)] == [3, 3, 1, 0]
    assert await _users_left(store) == []
    assert [await store.purge_pending_deletions(ended_before=CUT, limit=2) for _ in range(4)] == [2, 2, 1, 0]


async def test_purges_never_touch_audit_events(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        for n in range(3):
            await tx.add_audit(
                AuditEvent(org_id=world.org.id, project_id=world.project.id, actor=OWNER, action="key created",
                           at=T0 - timedelta(days=3650), key_name=f"k{n}")
            )
    for row_id in await _rows(store, count=2):
        await store.mark_sent(row_id, at=T0)
    await _pending(world, store, "old", expires_at=T0)
    far_future = T0 + timedelta(days=36500)
    assert await store.purge_sent_notifications(sent_before=far_future, limit=100) == 2
    assert await store.purge_dead_notifications(dead_before=far_future, limit=100) == 0
    assert await store.purge_pending_deletions(ended_before=far_future, limit=100) == 1
    async with store.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(audit_events))).scalar_one() == 3


async def test_purgers_running_at_the_same_time_delete_each_row_once(store: SqlStore) -> None:
    for row_id in await _rows(store, count=60):
        await store.mark_sent(row_id, at=T0)

    async def purger() -> int:
        deleted = 0
        while n := await store.purge_sent_notifications(sent_before=CUT, limit=4):
            deleted += n
            await asyncio.sleep(0)
        return deleted

    results = await asyncio.gather(*(purger() for _ in range(3)))
    assert sum(results) == 60
    assert await _users_left(store) == []


async def test_a_purge_leaves_rows_a_worker_is_sending_alone(store: SqlStore) -> None:
    """A row being sent is unsent: neither purge touches it, however old it is."""
    [row_id] = await _rows(store, count=1)
    purges: list[Callable[[], Awaitable[int]]] = [
        lambda: store.purge_sent_notifications(sent_before=CUT, limit=10),
        lambda: store.purge_dead_notifications(dead_before=CUT, limit=10),
    ]
    assert [await purge() for purge in purges] == [0, 0]
    await store.mark_sent(row_id, at=T0)
    assert await _users_left(store) == ["U0000"]

"""``MemoryStore``: the ports of ``bot/ports.py`` in memory, following their docstrings.

- ``transaction()`` blocks are serialized by one ``asyncio.Lock``; each works on a copy of the committed
  state, which replaces it when the block ends normally and is thrown away on any exception (rollback).
- ``read()`` blocks see the committed state as of their start and refuse writes.
- the outbox is claimed with a lease, by origin (a worker claims only rows of its own origin);
  ``attempts`` counts claims; rows leave the queue through ``mark_sent``, or ``bury`` (a dead letter,
  never claimed until revived); the retention purges delete rows in batches.

Every port call is counted in ``store.calls`` (``store.calls["verify_record"]``), so a test can prove
that some path costs no store call, and listed in ``store.call_order``. Setting ``store.down = True``
makes every call raise ``Unavailable``.
"""

import asyncio
import copy
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta

from bot.domain.errors import Unavailable
from bot.domain.model import AuditEvent, KeyState, Notification, VerifyRecord
from bot.ports import KeyListingPage, OutboxEntry, Transaction
from tests.fakes.jobs import MemoryJobQueue
from tests.fakes.state import OutboxRow, State, scalars
from tests.fakes.transaction import MemoryTransaction


class MemoryStore(MemoryJobQueue):
    """``UnitOfWork``, ``KeyListing``, ``VerifyReads``, ``Outbox``, ``Health``, ``DeadLetters`` and
    ``Retention``, in memory."""

    def __init__(self) -> None:
        self.state = State()
        self.calls: Counter[str] = Counter()
        self.call_order: list[str] = []  # every port call, in order (``calls`` counts them)
        self.down = False
        self._lock = asyncio.Lock()
        self._next_id: Counter[str] = Counter()

    def hit(self, method: str) -> None:
        self.calls[method] += 1
        self.call_order.append(method)
        if self.down:
            raise Unavailable("the in-memory store is down")

    def next_id(self, table: str) -> int:
        """Ids are never reused, not even after a rollback (like a PostgreSQL sequence)."""
        self._next_id[table] += 1
        return self._next_id[table]

    # -- UnitOfWork --

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Transaction]:
        async with self._lock:
            working = copy.deepcopy(self.state)
            tx = MemoryTransaction(self, working, writable=True)
            try:
                yield tx
            finally:
                tx.closed = True
            self.state = working

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[Transaction]:
        tx = MemoryTransaction(self, self.state, writable=False)
        try:
            yield tx
        finally:
            tx.closed = True

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        self.hit("transaction")
        return self._transaction()

    def read(self) -> AbstractAsyncContextManager[Transaction]:
        self.hit("read")
        return self._read()

    # -- KeyListing --

    async def key_listing(
        self,
        *,
        team_id: str,
        user_id: str,
        project_name: str,
        before_id: int | None,
        after_id: int | None,
        limit: int,
    ) -> KeyListingPage:
        self.hit("key_listing")
        scope = self.state.scope(team_id=team_id, user_id=user_id, project_name=project_name)
        if scope is None or scope.project is None:
            return KeyListingPage(scope=scope, keys=[])
        rows = [r for r in self.state.keys.values() if r.project_id == scope.project.id]
        if after_id is not None and before_id is None:  # the rows just newer, still newest first
            page = sorted((r for r in rows if r.id > after_id), key=lambda r: r.id)[:limit][::-1]
        else:
            older = [r for r in rows if before_id is None or r.id < before_id]
            page = sorted(older, key=lambda r: r.id, reverse=True)[:limit]
        if page:
            newer = sum(1 for r in rows if r.id > page[0].id)
        else:  # newer than where the page would be
            newer = sum(1 for r in rows if (after_id is not None and r.id > after_id) or (
                before_id is not None and r.id >= before_id))
        return KeyListingPage(scope=scope, keys=[r.as_record() for r in page], total=len(rows), newer=newer)

    # -- VerifyReads --

    async def verify_record(self, key_id: str) -> VerifyRecord | None:
        self.hit("verify_record")
        row = next((r for r in self.state.keys.values() if r.key_id == key_id), None)
        retired = None if row is not None else self.state.retired.get(key_id)
        if retired is not None:  # the old secret of a rolled key
            row = self.state.keys[retired.key_row_id]
        if row is None:
            return None
        project = self.state.projects[row.project_id]
        org = self.state.orgs[project.org_id]
        return VerifyRecord(
            id=row.id,
            key_id=key_id,
            name=row.name,
            secret_hash=row.secret_hash if retired is None else retired.secret_hash,
            project=project.name,
            org=org.name,
            last_used_at=row.last_used_at,
            disabled_at=row.disabled_at,
            expires_at=row.expires_at,
            retiring_at=None if retired is None else retired.retiring_at,
        )

    async def key_state(self, row_id: int, *, key_id: str) -> KeyState | None:
        self.hit("key_state")
        row = self.state.keys.get(row_id)
        if row is None:
            return None
        retired = self.state.retired.get(key_id)
        retiring_at = retired.retiring_at if retired is not None and retired.key_row_id == row_id else None
        return KeyState(
            key_id=row.key_id, disabled_at=row.disabled_at, expires_at=row.expires_at, retiring_at=retiring_at
        )

    async def touch_key(self, row_id: int, *, at: datetime) -> None:
        self.hit("touch_key")
        async with self._lock:
            row = self.state.keys.get(row_id)
            if row is not None:
                row.last_used_at = at

    # -- Outbox and Health --

    async def claim_notifications(
        self,
        *,
        limit: int,
        now: datetime,
        lease_seconds: float,
        origin: str | None = None,
        settle_seconds: float = 0.0,
    ) -> Sequence[Notification]:
        self.hit("claim_notifications")
        async with self._lock:
            waiting = [
                r
                for r in self.outbox(sent=False)
                if r.origin == origin
                and r.dead_at is None
                and r.next_attempt_at <= now
                and (r.claimed_until is None or r.claimed_until <= now)
            ]
            settled = now - timedelta(seconds=settle_seconds)
            recipients = {r.user_id for r in waiting if r.queued_at <= settled}
            due = [r for r in waiting if r.queued_at <= settled or r.user_id in recipients]
            for row in due[:limit]:
                row.claimed_until = now + timedelta(seconds=lease_seconds)
                row.attempts += 1
            return [Notification(r.id, r.user_id, r.notice, r.text, r.attempts) for r in due[:limit]]

    async def mark_sent(self, notification_id: int, *, at: datetime) -> None:
        self.hit("mark_sent")
        async with self._lock:
            row = self.state.outbox[notification_id]
            row.sent_at, row.claimed_until = at, None

    async def reschedule(self, notification_id: int, *, at: datetime, error: str) -> None:
        self.hit("reschedule")
        async with self._lock:
            row = self.state.outbox[notification_id]
            row.next_attempt_at, row.claimed_until, row.last_error = at, None, error[:500]

    async def waits_behind(self, notification_id: int, *, user_id: str) -> bool:
        self.hit("waits_behind")
        return any(
            r.user_id == user_id and r.id < notification_id and r.sent_at is None and r.dead_at is None
            for r in self.state.outbox.values()
        )

    async def hold_notifications(self, *, origin: str, at: datetime, error: str) -> int:
        self.hit("hold_notifications")
        async with self._lock:
            rows = [
                r for r in self.state.outbox.values()
                if r.origin == origin and r.sent_at is None and r.dead_at is None and r.next_attempt_at < at
            ]  # fmt: skip
            for row in rows:
                row.next_attempt_at, row.last_error = at, error[:500]
            return len(rows)

    async def bury(self, notification_id: int, *, at: datetime, error: str) -> None:
        self.hit("bury")
        async with self._lock:
            row = self.state.outbox[notification_id]
            row.dead_at, row.claimed_until, row.last_error = at, None, error[:500]

    async def pending_notifications(self) -> int:
        self.hit("pending_notifications")
        return sum(r.dead_at is None for r in self.outbox(sent=False))

    async def dead_notifications(self) -> int:
        self.hit("dead_notifications")
        return sum(r.dead_at is not None for r in self.outbox(sent=False))

    async def oldest_pending_notification(self) -> datetime | None:
        self.hit("oldest_pending_notification")
        queued = [r.notice.at if r.notice else r.next_attempt_at for r in self.outbox(sent=False) if r.dead_at is None]
        return min(queued, default=None)

    # -- DeadLetters --

    async def unsent_notifications(self, *, dead: bool, limit: int) -> list[OutboxEntry]:
        self.hit("unsent_notifications")
        rows = [r for r in self.outbox(sent=False) if (r.dead_at is not None) == dead][:limit]
        return [
            OutboxEntry(
                id=r.id,
                user_id=r.user_id,
                team_id=r.notice.team_id if r.notice else None,
                kind=r.notice.kind.value if r.notice else None,
                attempts=r.attempts,
                last_error=r.last_error,
                created_at=r.notice.at if r.notice else r.next_attempt_at,
                next_attempt_at=r.next_attempt_at,
                dead_at=r.dead_at,
            )
            for r in rows
        ]

    async def revive_notifications(self, ids: Sequence[int] | None, *, at: datetime) -> list[int]:
        self.hit("revive_notifications")
        async with self._lock:
            revived = [
                r
                for r in self.outbox(sent=False)
                if r.dead_at is not None and (ids is None or r.id in ids)
            ]
            for row in revived:
                row.dead_at, row.claimed_until, row.next_attempt_at, row.attempts = None, None, at, 0
            return [r.id for r in revived]

    # -- Retention --

    async def purge_sent_notifications(self, *, sent_before: datetime, limit: int) -> int:
        self.hit("purge_sent_notifications")
        return self._purge_outbox(lambda r: r.sent_at is not None and r.sent_at < sent_before, limit)

    async def purge_dead_notifications(self, *, dead_before: datetime, limit: int) -> int:
        self.hit("purge_dead_notifications")
        return self._purge_outbox(
            lambda r: r.sent_at is None and r.dead_at is not None and r.dead_at < dead_before, limit
        )

    def _purge_outbox(self, old: Callable[[OutboxRow], bool], limit: int) -> int:
        doomed = [r.id for r in self.outbox() if old(r)][:limit]
        for row_id in doomed:
            del self.state.outbox[row_id]
        return len(doomed)

    async def purge_pending_deletions(self, *, ended_before: datetime, limit: int) -> int:
        self.hit("purge_pending_deletions")
        doomed = [
            token
            for token, p in sorted(self.state.pending.items())
            if p.expires_at < ended_before or (p.used_at is not None and p.used_at < ended_before)
        ][:limit]
        for token in doomed:
            del self.state.pending[token]
        return len(doomed)

    # -- test helpers (not ports; not counted) --

    def values(self) -> Iterator[object]:
        """Every scalar value held in the committed state (for scanning for secrets)."""
        return scalars(self.state)

    def outbox(self, *, user_id: str | None = None, sent: bool | None = None) -> list[OutboxRow]:
        return [
            r
            for _, r in sorted(self.state.outbox.items())
            if (user_id is None or r.user_id == user_id) and (sent is None or (r.sent_at is not None) == sent)
        ]

    def audit_events(self) -> list[AuditEvent]:
        return [event for _, event in sorted(self.state.audit.items())]

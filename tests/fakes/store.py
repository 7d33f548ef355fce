"""``MemoryStore``: the ports of ``bot/ports.py`` in memory, following their docstrings.

- ``transaction()`` blocks are serialized by one ``asyncio.Lock``; each works on a copy of the committed
  state, which replaces it when the block ends normally and is thrown away on any exception (rollback).
- ``read()`` blocks see the committed state as of their start and refuse writes.
- the outbox is claimed with a lease; ``attempts`` counts claims; rows leave only through ``mark_sent``.

Every port call is counted in ``store.calls`` (``store.calls["verify_record"]``), so a test can prove
that some path costs no store call. Setting ``store.down = True`` makes every call raise ``Unavailable``.
"""

import asyncio
import copy
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta

from bot.domain.errors import Unavailable
from bot.domain.model import AuditEvent, KeyRecord, Notification, Scope, VerifyRecord
from bot.ports import Transaction
from tests.fakes.state import OutboxRow, State, scalars
from tests.fakes.transaction import MemoryTransaction


class MemoryStore:
    """``UnitOfWork``, ``KeyListing``, ``VerifyReads``, ``Outbox`` and ``Health``, in memory."""

    def __init__(self) -> None:
        self.state = State()
        self.calls: Counter[str] = Counter()
        self.down = False
        self._lock = asyncio.Lock()
        self._next_id: Counter[str] = Counter()

    def hit(self, method: str) -> None:
        self.calls[method] += 1
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
    ) -> tuple[Scope | None, list[KeyRecord]]:
        self.hit("key_listing")
        scope = self.state.scope(team_id=team_id, user_id=user_id, project_name=project_name)
        if scope is None or scope.project is None:
            return scope, []
        rows = [r for r in self.state.keys.values() if r.project_id == scope.project.id]
        if after_id is not None and before_id is None:  # the rows just newer, still newest first
            page = sorted((r for r in rows if r.id > after_id), key=lambda r: r.id)[:limit][::-1]
        else:
            older = [r for r in rows if before_id is None or r.id < before_id]
            page = sorted(older, key=lambda r: r.id, reverse=True)[:limit]
        return scope, [r.as_record() for r in page]

    # -- VerifyReads --

    async def verify_record(self, key_id: str) -> VerifyRecord | None:
        self.hit("verify_record")
        row = next((r for r in self.state.keys.values() if r.key_id == key_id), None)
        if row is None:
            return None
        project = self.state.projects[row.project_id]
        org = self.state.orgs[project.org_id]
        return VerifyRecord(
            row.id, row.key_id, row.name, row.secret_hash, project.name, org.name, row.last_used_at
        )

    async def key_exists(self, row_id: int) -> bool:
        self.hit("key_exists")
        return row_id in self.state.keys

    async def touch_key(self, row_id: int, *, at: datetime) -> None:
        self.hit("touch_key")
        async with self._lock:
            row = self.state.keys.get(row_id)
            if row is not None:
                row.last_used_at = at

    # -- Outbox and Health --

    async def claim_notifications(
        self, *, limit: int, now: datetime, lease_seconds: float
    ) -> Sequence[Notification]:
        self.hit("claim_notifications")
        async with self._lock:
            due = [
                r
                for r in self.outbox(sent=False)
                if r.next_attempt_at <= now and (r.claimed_until is None or r.claimed_until <= now)
            ]
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

    async def pending_notifications(self) -> int:
        self.hit("pending_notifications")
        return len(self.outbox(sent=False))

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

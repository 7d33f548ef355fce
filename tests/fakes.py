"""Hand-written fakes for unit tests: an in-memory ``bot.ports.Store``, clocks, a counting hasher.

``MemoryStore`` follows the Protocol docstrings in ``bot/ports.py``:

- ``transaction()`` blocks are serialized by one ``asyncio.Lock``; each works on a copy of the committed
  state, which replaces it when the block ends normally and is thrown away on any exception (rollback).
- ``read()`` blocks see the committed state as of their start and refuse writes.
- project and key names are unique case-insensitively (``Conflict``); key ids are unique.
- pages are keyset-paginated by row id, newest first.
- the outbox is claimed with a lease; ``attempts`` counts claims; rows leave only through ``mark_sent``.

Every method call is counted in ``store.calls`` (``store.calls["verify_record"]``), so a test can prove
that some path costs no store call. Setting ``store.down = True`` makes every call raise ``Unavailable``.
"""

import asyncio
import copy
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.domain.errors import Conflict, Unavailable
from bot.domain.hashing import Hasher, HashParams
from bot.domain.model import (
    AuditEvent,
    KeyRecord,
    NewKeyRecord,
    Notification,
    Org,
    PendingDeletion,
    Project,
    RoleGrant,
    Scope,
    VerifyRecord,
)
from bot.domain.roles import OrgRole, ProjectRole
from bot.ports import Store, Transaction

# -- clocks and hasher ---------------------------------------------------------------------------


class FakeClock:
    """A wall clock (aware UTC) that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2025, 1, 15, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta | None = None, /, **kwargs: float) -> datetime:
        self.now += delta if delta is not None else timedelta(**kwargs)
        return self.now


class FakeMonotonic:
    """A monotonic clock in seconds that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


class CountingHasher(Hasher):
    """A real argon2id hasher (cheapest profile by default) that counts hashes and verifications."""

    def __init__(self, params: HashParams | None = None) -> None:
        super().__init__(params or HashParams.cheapest())
        self.hashes = 0
        self.verifications = 0

    def hash_sync(self, plaintext: str) -> str:
        self.hashes += 1
        return super().hash_sync(plaintext)

    def verify_sync(self, digest: str, plaintext: str) -> bool:
        self.verifications += 1
        return super().verify_sync(digest, plaintext)


# -- rows ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ProjectRow:
    id: int
    org_id: int
    name: str
    created_by: str
    created_at: datetime

    def as_project(self) -> Project:
        return Project(id=self.id, org_id=self.org_id, name=self.name)


@dataclass(slots=True)
class KeyRow:
    id: int
    project_id: int
    key_id: str
    name: str
    masked: str
    secret_hash: str
    created_by: str
    created_at: datetime
    last_used_at: datetime | None = None

    def as_record(self) -> KeyRecord:
        return KeyRecord(
            id=self.id,
            project_id=self.project_id,
            key_id=self.key_id,
            name=self.name,
            masked=self.masked,
            created_by=self.created_by,
            created_at=self.created_at,
            last_used_at=self.last_used_at,
        )


@dataclass(slots=True)
class OutboxRow:
    id: int
    user_id: str
    text: str
    created_at: datetime
    next_attempt_at: datetime
    attempts: int = 0
    claimed_until: datetime | None = None
    sent_at: datetime | None = None
    last_error: str | None = None


@dataclass(slots=True)
class State:
    """Everything the store holds; ``copy.deepcopy`` of it is a transaction's working copy."""

    orgs: dict[int, Org] = field(default_factory=dict)
    org_roles: dict[tuple[int, str], OrgRole] = field(default_factory=dict)
    projects: dict[int, ProjectRow] = field(default_factory=dict)
    project_roles: dict[tuple[int, str], ProjectRole] = field(default_factory=dict)
    keys: dict[int, KeyRow] = field(default_factory=dict)
    pending: dict[str, PendingDeletion] = field(default_factory=dict)
    audit: dict[int, AuditEvent] = field(default_factory=dict)
    outbox: dict[int, OutboxRow] = field(default_factory=dict)


def _values(obj: object) -> Iterator[object]:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from _values(getattr(obj, f.name))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _values(k)
            yield from _values(v)
    elif isinstance(obj, list | tuple | set | frozenset):
        for item in obj:
            yield from _values(item)
    else:
        yield obj


# -- the store ---------------------------------------------------------------------------------------


class MemoryStore:
    """An in-memory ``bot.ports.Store``."""

    def __init__(self) -> None:
        self.state = State()
        self.calls: Counter[str] = Counter()
        self.down = False
        self.closed = False
        self.commits = 0
        self.rollbacks = 0
        self._lock = asyncio.Lock()
        self._next_id: Counter[str] = Counter()

    # -- bookkeeping --

    def _hit(self, method: str) -> None:
        self.calls[method] += 1
        if self.down:
            raise Unavailable("the in-memory store is down")

    def next_id(self, table: str) -> int:
        """Ids are never reused, not even after a rollback (like a PostgreSQL sequence)."""
        self._next_id[table] += 1
        return self._next_id[table]

    def values(self) -> Iterator[object]:
        """Every scalar value held in the committed state (for scanning for secrets)."""
        return _values(self.state)

    # -- transactions --

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Transaction]:
        async with self._lock:
            working = copy.deepcopy(self.state)
            tx = MemoryTransaction(self, working, writable=True)
            try:
                yield tx
            except BaseException:
                self.rollbacks += 1
                raise
            finally:
                tx.closed = True
            self.state = working
            self.commits += 1

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[Transaction]:
        tx = MemoryTransaction(self, self.state, writable=False)
        try:
            yield tx
        finally:
            tx.closed = True

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        self._hit("transaction")
        return self._transaction()

    def read(self) -> AbstractAsyncContextManager[Transaction]:
        self._hit("read")
        return self._read()

    # -- hot reads --

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
        self._hit("key_listing")
        async with self.read() as tx:
            scope = await tx.scope(team_id=team_id, user_id=user_id, project_name=project_name)
            if scope is None or scope.project is None:
                return scope, []
            keys = await tx.keys_page(
                project_id=scope.project.id, before_id=before_id, after_id=after_id, limit=limit
            )
            return scope, keys

    # -- verification --

    async def verify_record(self, key_id: str) -> VerifyRecord | None:
        self._hit("verify_record")
        for row in self.state.keys.values():
            if row.key_id == key_id:
                project = self.state.projects[row.project_id]
                return VerifyRecord(
                    id=row.id,
                    key_id=row.key_id,
                    name=row.name,
                    secret_hash=row.secret_hash,
                    project=project.name,
                    org=self.state.orgs[project.org_id].name,
                    last_used_at=row.last_used_at,
                )
        return None

    async def key_exists(self, row_id: int) -> bool:
        self._hit("key_exists")
        return row_id in self.state.keys

    async def touch_key(self, row_id: int, *, at: datetime) -> None:
        self._hit("touch_key")
        async with self._lock:
            row = self.state.keys.get(row_id)
            if row is not None:
                row.last_used_at = at

    # -- outbox --

    async def claim_notifications(
        self, *, limit: int, now: datetime, lease_seconds: float
    ) -> Sequence[Notification]:
        self._hit("claim_notifications")
        async with self._lock:
            claimed: list[Notification] = []
            for row in sorted(self.state.outbox.values(), key=lambda r: r.id):
                if len(claimed) >= limit:
                    break
                if row.sent_at is not None or row.next_attempt_at > now:
                    continue
                if row.claimed_until is not None and row.claimed_until > now:
                    continue
                row.claimed_until = now + timedelta(seconds=lease_seconds)
                row.attempts += 1
                claimed.append(
                    Notification(id=row.id, user_id=row.user_id, text=row.text, attempts=row.attempts)
                )
            return claimed

    async def mark_sent(self, notification_id: int, *, at: datetime) -> None:
        self._hit("mark_sent")
        async with self._lock:
            row = self.state.outbox[notification_id]
            row.sent_at = at
            row.claimed_until = None

    async def reschedule(self, notification_id: int, *, at: datetime, error: str) -> None:
        self._hit("reschedule")
        async with self._lock:
            row = self.state.outbox[notification_id]
            row.next_attempt_at = at
            row.claimed_until = None
            row.last_error = error[:500]

    async def pending_notifications(self) -> int:
        self._hit("pending_notifications")
        return sum(1 for row in self.state.outbox.values() if row.sent_at is None)

    async def close(self) -> None:
        self._hit("close")
        self.closed = True

    # -- test helpers (not part of the Protocol; not counted) --

    def outbox(self, *, user_id: str | None = None, sent: bool | None = None) -> list[OutboxRow]:
        rows = sorted(self.state.outbox.values(), key=lambda r: r.id)
        return [
            r
            for r in rows
            if (user_id is None or r.user_id == user_id) and (sent is None or (r.sent_at is not None) == sent)
        ]

    def audit_events(self) -> list[AuditEvent]:
        return [self.state.audit[i] for i in sorted(self.state.audit)]


class MemoryTransaction:
    """One transaction over a ``State`` (the working copy, or the committed state when read-only)."""

    def __init__(self, store: MemoryStore, state: State, *, writable: bool) -> None:
        self._store = store
        self._s = state
        self._writable = writable
        self.closed = False

    def _hit(self, method: str, *, write: bool = False) -> None:
        if self.closed:
            raise RuntimeError(f"{method}() called on a finished transaction")
        if write and not self._writable:
            raise RuntimeError(f"{method}() writes, but this is a read-only transaction")
        self._store._hit(method)

    # -- orgs and projects --

    def _org_by_team(self, team_id: str) -> Org | None:
        return next((o for o in self._s.orgs.values() if o.team_id == team_id), None)

    def _project_named(self, org_id: int, name: str) -> ProjectRow | None:
        lower = name.lower()
        return next(
            (p for p in self._s.projects.values() if p.org_id == org_id and p.name.lower() == lower), None
        )

    async def scope(self, *, team_id: str, user_id: str, project_name: str | None) -> Scope | None:
        self._hit("scope")
        org = self._org_by_team(team_id)
        if org is None:
            return None
        org_role = self._s.org_roles.get((org.id, user_id))
        row = self._project_named(org.id, project_name) if project_name is not None else None
        if row is None:
            return Scope(org=org, org_role=org_role)
        return Scope(
            org=org,
            org_role=org_role,
            project=row.as_project(),
            project_role=self._s.project_roles.get((row.id, user_id)),
        )

    async def lock_org(self, org_id: int) -> None:
        self._hit("lock_org", write=True)

    async def ensure_org(self, *, team_id: str, name: str) -> Org:
        self._hit("ensure_org", write=True)
        org = self._org_by_team(team_id)
        if org is None:
            org = Org(id=self._store.next_id("orgs"), team_id=team_id, name=name)
            self._s.orgs[org.id] = org
        return org

    async def visible_projects(self, *, org_id: int, user_id: str, all_projects: bool) -> list[Project]:
        self._hit("visible_projects")
        rows = [
            p
            for p in self._s.projects.values()
            if p.org_id == org_id and (all_projects or (p.id, user_id) in self._s.project_roles)
        ]
        return [p.as_project() for p in sorted(rows, key=lambda p: (p.name.lower(), p.id))]

    async def add_project(self, *, org_id: int, name: str, created_by: str, at: datetime) -> Project:
        self._hit("add_project", write=True)
        if self._project_named(org_id, name) is not None:
            raise Conflict(f"project {name} exists")
        row = ProjectRow(
            id=self._store.next_id("projects"), org_id=org_id, name=name, created_by=created_by, created_at=at
        )
        self._s.projects[row.id] = row
        return row.as_project()

    async def project_named(self, *, org_id: int, name: str) -> Project | None:
        self._hit("project_named")
        row = self._project_named(org_id, name)
        return row.as_project() if row is not None else None

    async def project_by_id(self, project_id: int) -> Project | None:
        self._hit("project_by_id")
        row = self._s.projects.get(project_id)
        return row.as_project() if row is not None else None

    # -- keys --

    async def add_key(self, key: NewKeyRecord) -> KeyRecord:
        self._hit("add_key", write=True)
        lower = key.name.lower()
        for row in self._s.keys.values():
            if (row.project_id == key.project_id and row.name.lower() == lower) or row.key_id == key.key_id:
                raise Conflict(f"key {key.name} exists")
        row = KeyRow(
            id=self._store.next_id("keys"),
            project_id=key.project_id,
            key_id=key.key_id,
            name=key.name,
            masked=key.masked,
            secret_hash=key.secret_hash,
            created_by=key.created_by,
            created_at=key.created_at,
        )
        self._s.keys[row.id] = row
        return row.as_record()

    async def key_named(self, *, project_id: int, name: str) -> KeyRecord | None:
        self._hit("key_named")
        lower = name.lower()
        for row in self._s.keys.values():
            if row.project_id == project_id and row.name.lower() == lower:
                return row.as_record()
        return None

    async def key_by_row_id(self, row_id: int) -> KeyRecord | None:
        self._hit("key_by_row_id")
        row = self._s.keys.get(row_id)
        return row.as_record() if row is not None else None

    async def keys_page(
        self, *, project_id: int, before_id: int | None, after_id: int | None, limit: int
    ) -> list[KeyRecord]:
        self._hit("keys_page")
        rows = [r for r in self._s.keys.values() if r.project_id == project_id]
        if before_id is not None:
            page = sorted((r for r in rows if r.id < before_id), key=lambda r: r.id, reverse=True)[:limit]
        elif after_id is not None:
            # the ``limit`` rows just newer than ``after_id``, still returned newest first
            page = sorted((r for r in rows if r.id > after_id), key=lambda r: r.id)[:limit]
            page.reverse()
        else:
            page = sorted(rows, key=lambda r: r.id, reverse=True)[:limit]
        return [r.as_record() for r in page]

    async def delete_key(self, row_id: int) -> bool:
        self._hit("delete_key", write=True)
        return self._s.keys.pop(row_id, None) is not None

    # -- roles --

    async def org_role(self, *, org_id: int, user_id: str) -> OrgRole | None:
        self._hit("org_role")
        return self._s.org_roles.get((org_id, user_id))

    async def set_org_role(self, *, org_id: int, user_id: str, role: OrgRole) -> None:
        self._hit("set_org_role", write=True)
        self._s.org_roles[(org_id, user_id)] = role

    async def delete_org_role(self, *, org_id: int, user_id: str) -> bool:
        self._hit("delete_org_role", write=True)
        return self._s.org_roles.pop((org_id, user_id), None) is not None

    async def count_org_owners(self, org_id: int) -> int:
        self._hit("count_org_owners")
        return sum(1 for (o, _), r in self._s.org_roles.items() if o == org_id and r is OrgRole.OWNER)

    async def project_role(self, *, project_id: int, user_id: str) -> ProjectRole | None:
        self._hit("project_role")
        return self._s.project_roles.get((project_id, user_id))

    async def set_project_role(self, *, project_id: int, user_id: str, role: ProjectRole) -> None:
        self._hit("set_project_role", write=True)
        self._s.project_roles[(project_id, user_id)] = role

    async def delete_project_role(self, *, project_id: int, user_id: str) -> bool:
        self._hit("delete_project_role", write=True)
        return self._s.project_roles.pop((project_id, user_id), None) is not None

    def _org_grants(self, org_id: int, user_id: str | None) -> list[RoleGrant]:
        return sorted(
            (
                RoleGrant(user_id=u, role=r.value, project=None)
                for (o, u), r in self._s.org_roles.items()
                if o == org_id and (user_id is None or u == user_id)
            ),
            key=lambda g: g.user_id,
        )

    def _project_grants(self, org_id: int, project_id: int | None, user_id: str | None) -> list[RoleGrant]:
        grants = []
        for (p, u), r in self._s.project_roles.items():
            project = self._s.projects.get(p)
            if project is None or project.org_id != org_id:
                continue
            if (project_id is None or p == project_id) and (user_id is None or u == user_id):
                grants.append(RoleGrant(user_id=u, role=r.value, project=project.name))
        return sorted(grants, key=lambda g: ((g.project or "").lower(), g.user_id))

    async def roles_of(self, *, org_id: int, user_id: str) -> list[RoleGrant]:
        """The user's org role (``project=None``) first, then its project roles by project name."""
        self._hit("roles_of")
        return self._org_grants(org_id, user_id) + self._project_grants(org_id, None, user_id)

    async def members(self, *, org_id: int, project_id: int | None) -> list[RoleGrant]:
        """``project_id=None``: the org roles only; else that project's roles. Sorted by user id."""
        self._hit("members")
        if project_id is None:
            return self._org_grants(org_id, None)
        return self._project_grants(org_id, project_id, None)

    async def project_owners(self, *, org_id: int, project_id: int) -> list[str]:
        """Org owners and this project's owners, each once, sorted."""
        self._hit("project_owners")
        owners = {u for (o, u), r in self._s.org_roles.items() if o == org_id and r is OrgRole.OWNER}
        owners |= {
            u for (p, u), r in self._s.project_roles.items() if p == project_id and r is ProjectRole.OWNER
        }
        return sorted(owners)

    # -- pending deletions --

    async def add_pending(self, pending: PendingDeletion) -> None:
        self._hit("add_pending", write=True)
        if pending.token in self._s.pending:
            raise Conflict("pending deletion token exists")
        self._s.pending[pending.token] = pending

    async def pending(self, token: str) -> PendingDeletion | None:
        self._hit("pending")
        return self._s.pending.get(token)

    async def use_pending(self, token: str, *, at: datetime) -> bool:
        self._hit("use_pending", write=True)
        pending = self._s.pending.get(token)
        if pending is None or pending.used_at is not None:
            return False
        self._s.pending[token] = dataclasses.replace(pending, used_at=at)
        return True

    # -- audit and outbox --

    async def add_audit(self, event: AuditEvent) -> None:
        self._hit("add_audit", write=True)
        event_id = self._store.next_id("audit")
        self._s.audit[event_id] = dataclasses.replace(event, id=event_id)

    async def audit_page(self, *, project_id: int, before_id: int | None, limit: int) -> list[AuditEvent]:
        self._hit("audit_page")
        ids = sorted(
            (
                i
                for i, e in self._s.audit.items()
                if e.project_id == project_id and (before_id is None or i < before_id)
            ),
            reverse=True,
        )
        return [self._s.audit[i] for i in ids[:limit]]

    async def notify(self, *, user_id: str, text: str, at: datetime) -> None:
        self._hit("notify", write=True)
        row_id = self._store.next_id("outbox")
        self._s.outbox[row_id] = OutboxRow(
            id=row_id, user_id=user_id, text=text, created_at=at, next_attempt_at=at
        )


def _conforms(store: MemoryStore, tx: MemoryTransaction) -> tuple[Store, Transaction]:
    """Never called: lets mypy check that the fakes satisfy the Protocols."""
    return store, tx

"""``MemoryTransaction``: ``bot.ports.Transaction`` over a ``State``.

Project and key names are unique case-insensitively (``Conflict``), key ids are unique, the audit log
is paged by row id, newest first.
"""

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING

from bot.domain.errors import Conflict
from bot.domain.model import (
    AuditEvent,
    KeyRecord,
    NewKeyRecord,
    Org,
    PendingDeletion,
    Project,
    RoleGrant,
    Scope,
)
from bot.domain.notices import Notice
from bot.domain.roles import OrgRole, ProjectRole
from tests.fakes.jobs import MemoryJobRows
from tests.fakes.lifecycle import MemoryLifecycleRows
from tests.fakes.requests import MemoryRequestRows
from tests.fakes.state import KeyRow, OutboxRow, State

if TYPE_CHECKING:
    from tests.fakes.store import MemoryStore


class MemoryTransaction(MemoryLifecycleRows, MemoryJobRows, MemoryRequestRows):
    """The working copy of a write transaction, or the committed state of a read-only one (the key
    lifecycle's rows are in tests/fakes/lifecycle.py)."""

    def __init__(self, store: "MemoryStore", state: State, *, writable: bool) -> None:
        self._store = store
        self._s = state
        self._writable = writable
        self.closed = False

    def _hit(self, method: str, *, write: bool = False) -> None:
        if self.closed:
            raise RuntimeError(f"{method}() called on a finished transaction")
        if write and not self._writable:
            raise RuntimeError(f"{method}() writes, but this is a read-only transaction")
        self._store.hit(method)

    def _next_job_id(self) -> int:
        return self._store.next_id("jobs")

    def _next_request_id(self) -> int:
        return self._store.next_id("requests")

    # -- OrgRows --

    async def scope(self, *, team_id: str, user_id: str, project_name: str | None) -> Scope | None:
        self._hit("scope")
        return self._s.scope(team_id=team_id, user_id=user_id, project_name=project_name)

    async def lock_org(self, org_id: int) -> None:
        self._hit("lock_org", write=True)

    async def lock_team(self, team_id: str, *, shared: bool = False) -> None:
        self._hit("lock_team shared" if shared else "lock_team", write=True)

    async def ensure_org(self, *, team_id: str, name: str, at: datetime) -> Org:
        self._hit("ensure_org", write=True)
        org = self._s.org_of_team(team_id)
        if org is None:
            org = Org(id=self._store.next_id("orgs"), team_id=team_id, name=name)
            self._s.orgs[org.id] = org
        return org

    async def org_teams(self) -> list[str]:
        self._hit("org_teams")
        return sorted(o.team_id for o in self._s.orgs.values())

    async def org_by_id(self, org_id: int) -> Org | None:
        self._hit("org_by_id")
        return self._s.orgs.get(org_id)

    # -- ProjectRows --

    async def visible_projects(self, *, org_id: int, user_id: str, all_projects: bool) -> list[Project]:
        self._hit("visible_projects")
        return sorted(
            (
                p
                for p in self._s.projects.values()
                if p.org_id == org_id and (all_projects or (p.id, user_id) in self._s.project_roles)
            ),
            key=lambda p: (p.name.lower(), p.id),
        )

    async def add_project(self, *, org_id: int, name: str, created_by: str, at: datetime) -> Project:
        self._hit("add_project", write=True)
        if self._s.project_named(org_id, name) is not None:
            raise Conflict(f"project {name} exists")
        project = Project(id=self._store.next_id("projects"), org_id=org_id, name=name)
        self._s.projects[project.id] = project
        return project

    async def project_by_id(self, project_id: int) -> Project | None:
        self._hit("project_by_id")
        return self._s.projects.get(project_id)

    # -- KeyRows --

    async def add_key(self, key: NewKeyRecord) -> KeyRecord:
        self._hit("add_key", write=True)
        taken = self._key_named(key.project_id, key.name)
        if taken or any(r.key_id == key.key_id for r in self._s.keys.values()) or key.key_id in self._s.retired:
            raise Conflict(f"key {key.name} exists")
        row = KeyRow(id=self._store.next_id("keys"), **dataclasses.asdict(key))
        self._s.keys[row.id] = row
        return row.as_record()

    def _key_named(self, project_id: int, name: str) -> KeyRow | None:
        lower = name.lower()
        return next(
            (r for r in self._s.keys.values() if r.project_id == project_id and r.name.lower() == lower), None
        )

    async def key_named(self, *, project_id: int, name: str) -> KeyRecord | None:
        self._hit("key_named")
        row = self._key_named(project_id, name)
        return row.as_record() if row is not None else None

    async def key_by_row_id(self, row_id: int) -> KeyRecord | None:
        self._hit("key_by_row_id")
        row = self._s.keys.get(row_id)
        return row.as_record() if row is not None else None

    async def keys_created_by(self, *, org_id: int, user_id: str) -> list[tuple[Project, KeyRecord]]:
        self._hit("keys_created_by")
        rows = [
            (project, row.as_record())
            for row in self._s.keys.values()
            if row.created_by == user_id
            and (project := self._s.projects.get(row.project_id)) is not None
            and project.org_id == org_id
        ]
        return sorted(rows, key=lambda pair: (pair[0].name.lower(), pair[1].name.lower()))

    async def delete_key(self, row_id: int) -> bool:
        self._hit("delete_key", write=True)
        for key_id in [k for k, r in self._s.retired.items() if r.key_row_id == row_id]:
            del self._s.retired[key_id]  # ON DELETE CASCADE
        for job_id in [j for j, r in self._s.jobs.items() if r.key_row_id == row_id]:
            del self._s.jobs[job_id]  # ON DELETE CASCADE
        return self._s.keys.pop(row_id, None) is not None

    # -- RoleRows --

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
        grants = [
            RoleGrant(u, r.value, None)
            for (o, u), r in self._s.org_roles.items()
            if o == org_id and user_id in (None, u)
        ]
        return sorted(grants, key=lambda g: g.user_id)

    def _project_grants(self, org_id: int, project_id: int | None, user_id: str | None) -> list[RoleGrant]:
        grants = [
            RoleGrant(u, r.value, project.name)
            for (p, u), r in self._s.project_roles.items()
            if (project := self._s.projects.get(p)) is not None
            and project.org_id == org_id
            and project_id in (None, p)
            and user_id in (None, u)
        ]
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
        self._hit("project_owners")
        owners = {u for (o, u), r in self._s.org_roles.items() if o == org_id and r is OrgRole.OWNER}
        owners |= {
            u for (p, u), r in self._s.project_roles.items() if p == project_id and r is ProjectRole.OWNER
        }
        return sorted(owners)

    # -- PendingRows --

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

    async def void_pending_deletions(self, *, team_id: str, user_id: str, at: datetime) -> int:
        self._hit("void_pending_deletions", write=True)
        tokens = [
            t for t, p in self._s.pending.items() if p.team_id == team_id and p.user_id == user_id and p.used_at is None
        ]
        for token in tokens:
            self._s.pending[token] = dataclasses.replace(self._s.pending[token], used_at=at)
        return len(tokens)

    # -- AuditRows and NoticeRows --

    async def add_audit(self, event: AuditEvent) -> None:
        self._hit("add_audit", write=True)
        event_id = self._store.next_id("audit")
        self._s.audit[event_id] = dataclasses.replace(event, id=event_id)

    async def audit_page(
        self, *, project_id: int, before_id: int | None, limit: int, after_id: int | None = None
    ) -> list[AuditEvent]:
        self._hit("audit_page")
        ids = [i for i, e in self._s.audit.items() if e.project_id == project_id]
        if after_id is not None:
            return [self._s.audit[i] for i in sorted(i for i in ids if i > after_id)[:limit]][::-1]
        ids = [i for i in ids if before_id is None or i < before_id]
        return [self._s.audit[i] for i in sorted(ids, reverse=True)[:limit]]

    async def notify(self, notice: Notice) -> None:
        self._hit("notify", write=True)
        row_id = self._store.next_id("outbox")
        self._s.outbox[row_id] = OutboxRow(
            id=row_id,
            user_id=notice.recipient,
            notice=notice,
            next_attempt_at=notice.at,
            origin=notice.origin,
            created_at=notice.at,
        )

"""``SqlTransaction``: ``bot.ports.Transaction`` on one SQLAlchemy ``AsyncConnection``.

Every method translates database errors (``storage.errors``). add_project and add_key run in a
SAVEPOINT and say which name conflicts, so after a ``Conflict`` the surrounding transaction is
still usable on PostgreSQL as on SQLite.
"""

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Insert, delete, func, select, union, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain.errors import Conflict
from bot.domain.model import (
    AUDIT_WEBHOOK,
    AuditEvent,
    ExportedEvent,
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
from storage.audit_export import EXPORTED_EVENTS
from storage.errors import is_unique_violation, translating
from storage.jobs import SqlJobRows
from storage.lifecycle import SqlLifecycleRows
from storage.requests import SqlRequestRows
from storage.statements import KEY_COLUMNS, KEY_NAMED, SCOPE, scope_from_row, scope_params
from storage.tables import (
    api_keys,
    audit_events,
    org_roles,
    orgs,
    outbox,
    pending_deletions,
    project_roles,
    projects,
)

if TYPE_CHECKING:
    from bot.ports import Transaction


class SqlTransaction(SqlLifecycleRows, SqlJobRows, SqlRequestRows):
    """One database transaction (see ``bot.ports.Transaction``); the key lifecycle's rows are in
    ``storage.lifecycle``, the jobs' in ``storage.jobs``, the access requests' in ``storage.requests``."""

    def __init__(self, conn: AsyncConnection, *, audit_webhook: bool = False) -> None:
        """``audit_webhook``: every audit event also queues its delivery to the audit webhook."""
        self._conn = conn
        self._audit_webhook = audit_webhook

    def _insert(self, table: Any) -> postgresql.Insert | sqlite.Insert:
        if self._conn.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    @translating
    async def scope(self, *, team_id: str, user_id: str, project_name: str | None) -> Scope | None:
        row = (await self._conn.execute(SCOPE, scope_params(team_id, user_id, project_name))).first()
        return None if row is None else scope_from_row(tuple(row))

    @translating
    async def lock_org(self, org_id: int) -> None:
        await self._conn.execute(select(orgs.c.id).where(orgs.c.id == org_id).with_for_update())

    @translating
    async def lock_team(self, team_id: str, *, shared: bool = False) -> None:
        if self._conn.dialect.name != "postgresql":
            return  # BEGIN IMMEDIATE already holds the database's one write lock
        stmt = select(orgs.c.id).where(orgs.c.team_id == team_id).with_for_update(read=shared)
        await self._conn.execute(stmt)

    @translating
    async def ensure_org(self, *, team_id: str, name: str, at: datetime) -> Org:
        values = {"team_id": team_id, "name": name, "created_at": at}
        await self._conn.execute(
            self._insert(orgs).values(values).on_conflict_do_nothing(index_elements=["team_id"])
        )
        stmt = select(orgs.c.id, orgs.c.team_id, orgs.c.name).where(orgs.c.team_id == team_id)
        return Org(*(await self._conn.execute(stmt)).one())

    @translating
    async def org_teams(self) -> list[str]:
        stmt = select(orgs.c.team_id)
        return sorted((await self._conn.execute(stmt)).scalars())  # codepoint order, any collation

    @translating
    async def org_by_id(self, org_id: int) -> Org | None:
        stmt = select(orgs.c.id, orgs.c.team_id, orgs.c.name).where(orgs.c.id == org_id)
        row = (await self._conn.execute(stmt)).first()
        return None if row is None else Org(*row)

    @translating
    async def visible_projects(self, *, org_id: int, user_id: str, all_projects: bool) -> list[Project]:
        stmt = select(projects.c.id, projects.c.org_id, projects.c.name).where(projects.c.org_id == org_id)
        if not all_projects:
            stmt = stmt.join(project_roles, project_roles.c.project_id == projects.c.id).where(
                project_roles.c.user_id == user_id
            )
        found = [Project(*row) for row in await self._conn.execute(stmt)]
        return sorted(found, key=lambda p: (p.name.lower(), p.id))  # codepoint order, any collation

    @translating
    async def add_project(self, *, org_id: int, name: str, created_by: str, at: datetime) -> Project:
        stmt = (
            projects.insert()
            .values(org_id=org_id, name=name, name_lower=name.lower(), created_by=created_by, created_at=at)
            .returning(projects.c.id)
        )
        row_id = await self._insert_once(stmt, f"a project named `{name}` already exists")
        return Project(id=row_id, org_id=org_id, name=name)

    @translating
    async def project_by_id(self, project_id: int) -> Project | None:
        stmt = select(projects.c.id, projects.c.org_id, projects.c.name).where(projects.c.id == project_id)
        row = (await self._conn.execute(stmt)).first()
        return None if row is None else Project(*row)

    @translating
    async def add_key(self, key: NewKeyRecord) -> KeyRecord:
        stmt = (
            api_keys.insert()
            .values(
                project_id=key.project_id,
                key_id=key.key_id,
                name=key.name,
                name_lower=key.name.lower(),
                masked=key.masked,
                secret_hash=key.secret_hash,
                created_by=key.created_by,
                created_at=key.created_at,
                expires_at=key.expires_at,
                note=key.note,
            )
            .returning(api_keys.c.id)
        )
        row_id = await self._insert_once(stmt, f"a key named `{key.name}` already exists")
        return KeyRecord(
            id=row_id,
            project_id=key.project_id,
            key_id=key.key_id,
            name=key.name,
            masked=key.masked,
            created_by=key.created_by,
            created_at=key.created_at,
            last_used_at=None,
            expires_at=key.expires_at,
            note=key.note,
        )

    async def _insert_once(self, stmt: Insert, conflict: str) -> int:
        """Run an INSERT … RETURNING id in a savepoint; a unique violation becomes ``Conflict``."""
        try:
            async with self._conn.begin_nested():
                return int((await self._conn.execute(stmt)).scalar_one())
        except IntegrityError as exc:
            if is_unique_violation(exc):
                raise Conflict(conflict) from None
            raise

    @translating
    async def key_named(self, *, project_id: int, name: str) -> KeyRecord | None:
        params = {"project_id": project_id, "name_lower": name.lower()}
        row = (await self._conn.execute(KEY_NAMED, params)).first()
        return None if row is None else KeyRecord(*row)

    @translating
    async def key_by_row_id(self, row_id: int) -> KeyRecord | None:
        row = (await self._conn.execute(select(*KEY_COLUMNS).where(api_keys.c.id == row_id))).first()
        return None if row is None else KeyRecord(*row)

    @translating
    async def delete_key(self, row_id: int) -> bool:
        result = await self._conn.execute(delete(api_keys).where(api_keys.c.id == row_id))
        return result.rowcount == 1

    @translating
    async def keys_created_by(self, *, org_id: int, user_id: str) -> list[tuple[Project, KeyRecord]]:
        stmt = (
            select(projects.c.id, projects.c.org_id, projects.c.name, *KEY_COLUMNS)
            .join(projects, projects.c.id == api_keys.c.project_id)
            .where(projects.c.org_id == org_id, api_keys.c.created_by == user_id)
        )
        rows = [(Project(*row[:3]), KeyRecord(*row[3:])) for row in await self._conn.execute(stmt)]
        return sorted(rows, key=lambda pair: (pair[0].name.lower(), pair[1].name.lower()))

    @translating
    async def org_role(self, *, org_id: int, user_id: str) -> OrgRole | None:
        stmt = select(org_roles.c.role).where(org_roles.c.org_id == org_id, org_roles.c.user_id == user_id)
        role = (await self._conn.execute(stmt)).scalar_one_or_none()
        return None if role is None else OrgRole(role)

    @translating
    async def set_org_role(self, *, org_id: int, user_id: str, role: OrgRole) -> None:
        stmt = self._insert(org_roles).values(org_id=org_id, user_id=user_id, role=role.value)
        await self._conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["org_id", "user_id"], set_={"role": stmt.excluded.role}
            )
        )

    @translating
    async def delete_org_role(self, *, org_id: int, user_id: str) -> bool:
        stmt = delete(org_roles).where(org_roles.c.org_id == org_id, org_roles.c.user_id == user_id)
        return (await self._conn.execute(stmt)).rowcount == 1

    @translating
    async def count_org_owners(self, org_id: int) -> int:
        stmt = select(func.count()).where(
            org_roles.c.org_id == org_id, org_roles.c.role == OrgRole.OWNER.value
        )
        return int((await self._conn.execute(stmt)).scalar_one())

    @translating
    async def project_role(self, *, project_id: int, user_id: str) -> ProjectRole | None:
        stmt = select(project_roles.c.role).where(
            project_roles.c.project_id == project_id, project_roles.c.user_id == user_id
        )
        role = (await self._conn.execute(stmt)).scalar_one_or_none()
        return None if role is None else ProjectRole(role)

    @translating
    async def set_project_role(self, *, project_id: int, user_id: str, role: ProjectRole) -> None:
        stmt = self._insert(project_roles).values(project_id=project_id, user_id=user_id, role=role.value)
        await self._conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["project_id", "user_id"], set_={"role": stmt.excluded.role}
            )
        )

    @translating
    async def delete_project_role(self, *, project_id: int, user_id: str) -> bool:
        stmt = delete(project_roles).where(
            project_roles.c.project_id == project_id, project_roles.c.user_id == user_id
        )
        return (await self._conn.execute(stmt)).rowcount == 1

    @translating
    async def roles_of(self, *, org_id: int, user_id: str) -> list[RoleGrant]:
        grants: list[RoleGrant] = []
        org_role = await self.org_role(org_id=org_id, user_id=user_id)
        if org_role is not None:
            grants.append(RoleGrant(user_id=user_id, role=org_role.value, project=None))
        stmt = (
            select(project_roles.c.role, projects.c.name)
            .join(projects, projects.c.id == project_roles.c.project_id)
            .where(projects.c.org_id == org_id, project_roles.c.user_id == user_id)
        )
        rows = sorted(await self._conn.execute(stmt), key=lambda row: row.name.lower())
        return grants + [RoleGrant(user_id=user_id, role=role, project=name) for role, name in rows]

    @translating
    async def members(self, *, org_id: int, project_id: int | None) -> list[RoleGrant]:
        if project_id is None:
            stmt = select(org_roles.c.user_id, org_roles.c.role).where(org_roles.c.org_id == org_id)
            grants = [RoleGrant(u, r, None) for u, r in await self._conn.execute(stmt)]
        else:
            project_stmt = (
                select(project_roles.c.user_id, project_roles.c.role, projects.c.name)
                .join(projects, projects.c.id == project_roles.c.project_id)
                .where(projects.c.org_id == org_id, projects.c.id == project_id)
            )
            grants = [RoleGrant(*row) for row in await self._conn.execute(project_stmt)]
        return sorted(grants, key=lambda g: g.user_id)

    @translating
    async def project_owners(self, *, org_id: int, project_id: int) -> list[str]:
        stmt = union(
            select(org_roles.c.user_id).where(
                org_roles.c.org_id == org_id, org_roles.c.role == OrgRole.OWNER.value
            ),
            select(project_roles.c.user_id)
            .join(projects, projects.c.id == project_roles.c.project_id)
            .where(
                projects.c.org_id == org_id,
                project_roles.c.project_id == project_id,
                project_roles.c.role == ProjectRole.OWNER.value,
            ),
        )
        return sorted((await self._conn.execute(stmt)).scalars())

    @translating
    async def add_pending(self, pending: PendingDeletion) -> None:
        await self._conn.execute(
            pending_deletions.insert().values(
                token=pending.token,
                key_row_id=pending.key_row_id,
                project_id=pending.project_id,
                user_id=pending.user_id,
                team_id=pending.team_id,
                expires_at=pending.expires_at,
                used_at=pending.used_at,
            )
        )

    @translating
    async def pending(self, token: str) -> PendingDeletion | None:
        t = pending_deletions.c
        stmt = select(
            t.token, t.key_row_id, t.project_id, t.user_id, t.team_id, t.expires_at, t.used_at
        ).where(t.token == token)
        row = (await self._conn.execute(stmt)).first()
        return None if row is None else PendingDeletion(*row)

    @translating
    async def use_pending(self, token: str, *, at: datetime) -> bool:
        stmt = (
            update(pending_deletions)
            .where(pending_deletions.c.token == token, pending_deletions.c.used_at.is_(None))
            .values(used_at=at)
        )
        return (await self._conn.execute(stmt)).rowcount == 1

    @translating
    async def void_pending_deletions(self, *, team_id: str, user_id: str, at: datetime) -> int:
        t = pending_deletions.c
        stmt = (
            update(pending_deletions)
            .where(t.team_id == team_id, t.user_id == user_id, t.used_at.is_(None))
            .values(used_at=at)
        )
        return int((await self._conn.execute(stmt)).rowcount)

    @translating
    async def add_audit(self, event: AuditEvent) -> None:
        """The event; with the audit webhook on, also its delivery, an outbox row of origin
        ``AUDIT_WEBHOOK`` whose text is the JSON body (the export's line), in this same transaction."""
        inserted = await self._conn.execute(
            audit_events.insert().returning(audit_events.c.id).values(
                org_id=event.org_id,
                project_id=event.project_id,
                actor=event.actor,
                action=event.action,
                key_name=event.key_name,
                key_masked=event.key_masked,
                target_user=event.target_user,
                role=event.role,
                at=event.at,
                origin=event.origin,
                detail=event.detail,
            )
        )
        if self._audit_webhook:
            await self._queue_webhook(inserted.scalar_one(), at=event.at)

    async def _queue_webhook(self, audit_id: int, *, at: datetime) -> None:
        row: Any = (await self._conn.execute(EXPORTED_EVENTS.where(audit_events.c.id == audit_id))).one()
        body = json.dumps(ExportedEvent(*row).as_json(), ensure_ascii=False, separators=(",", ":"))
        await self._conn.execute(
            outbox.insert().values(
                user_id=AUDIT_WEBHOOK,
                text=body,
                created_at=at,
                next_attempt_at=at,
                attempts=0,
                origin=AUDIT_WEBHOOK,
            )
        )

    @translating
    async def audit_page(
        self, *, project_id: int, before_id: int | None, limit: int, after_id: int | None = None
    ) -> list[AuditEvent]:
        a = audit_events.c
        stmt = select(audit_events).where(a.project_id == project_id)
        if after_id is not None:  # the events just newer than after_id, returned newest first
            stmt = stmt.where(a.id > after_id).order_by(a.id).limit(limit)
            return [AuditEvent(**row._mapping) for row in reversed((await self._conn.execute(stmt)).all())]
        if before_id is not None:
            stmt = stmt.where(a.id < before_id)
        stmt = stmt.order_by(a.id.desc()).limit(limit)
        return [AuditEvent(**row._mapping) for row in await self._conn.execute(stmt)]

    @translating
    async def notify(self, notice: Notice) -> None:
        await self._conn.execute(
            outbox.insert().values(
                user_id=notice.recipient,
                team_id=notice.team_id,
                notice=notice.to_json(),
                text="",
                created_at=notice.at,
                next_attempt_at=notice.at,
                attempts=0,
                origin=notice.origin,
            )
        )


if TYPE_CHECKING:  # mypy proves that SqlTransaction implements the port

    def _implements_port(tx: SqlTransaction) -> "Transaction":
        return tx

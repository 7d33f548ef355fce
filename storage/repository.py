"""``SqlStore`` and ``SqlTransaction``: ``bot.ports.Store`` and ``Transaction`` on SQLAlchemy Core.

Errors: a unique-name violation surfaces as ``Conflict`` (add_project and add_key say which name;
anything else says "that name is already taken" — services may reword it); a lost or unreachable
database as ``Unavailable``. add_project and add_key run in a SAVEPOINT, so after a ``Conflict``
the surrounding transaction is still usable on PostgreSQL as on SQLite.

Statements are built once at module level, so SQLAlchemy's compiled cache always hits. The hot
reads (``key_listing`` for ``/apikeys list``; ``verify_record`` and ``key_exists`` for verify) go
further: compiled once per store, run outside any transaction — synchronously on SQLite
(``_SqliteReader``), on a pooled driver connection on PostgreSQL. The Store's other one-statement
methods skip BEGIN/COMMIT (``storage.engine.single_statement``).
"""

import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import (
    Dialect,
    Insert,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    union,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import Update

from bot.domain.errors import Conflict, KeybotError, Unavailable
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
from storage.engine import make_engine, reader, single_statement, writer
from storage.migrations import upgrade
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

UNAVAILABLE = "The key database is temporarily unavailable. Try again in a minute."
_ERROR_LIMIT = 500

P = ParamSpec("P")
R = TypeVar("R")


# --- errors -------------------------------------------------------------------------------------


_OUTAGES = (
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    OSError,
    TimeoutError,
    # raised by the drivers themselves on the verify path (see _DriverStatement)
    sqlite3.OperationalError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.InterfaceError,
)


def _is_unique_violation(exc: IntegrityError) -> bool:
    orig = exc.orig
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    if code is not None:
        return bool(code == "23505")
    name = getattr(orig, "sqlite_errorname", "")
    return name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")


def _translate(exc: Exception) -> Exception:
    """The domain error standing for ``exc``, or ``exc`` itself."""
    if isinstance(exc, KeybotError):
        return exc
    if isinstance(exc, IntegrityError) and _is_unique_violation(exc):
        conflict = Conflict("that name is already taken")
        conflict.__suppress_context__ = True
        return conflict
    if isinstance(exc, _OUTAGES) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
        unavailable = Unavailable(UNAVAILABLE)
        unavailable.__cause__ = exc
        return unavailable
    return exc


def _translating(
    method: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    @wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except Exception as exc:
            translated = _translate(exc)
            if translated is exc:
                raise
            raise translated  # noqa: B904 (cause set by _translate)

    return wrapper


# --- statements on hot paths, built once ------------------------------------------------------

_KEY_COLUMNS = (
    api_keys.c.id,
    api_keys.c.project_id,
    api_keys.c.key_id,
    api_keys.c.name,
    api_keys.c.masked,
    api_keys.c.created_by,
    api_keys.c.created_at,
    api_keys.c.last_used_at,
)  # in KeyRecord's field order

_user = bindparam("user_id", type_=String)
_SCOPE = (
    select(
        orgs.c.id,
        orgs.c.team_id,
        orgs.c.name,
        org_roles.c.role.label("org_role"),
        projects.c.id.label("project_id"),
        projects.c.name.label("project_name"),
        project_roles.c.role.label("project_role"),
    )
    .select_from(
        orgs.outerjoin(org_roles, and_(org_roles.c.org_id == orgs.c.id, org_roles.c.user_id == _user))
        .outerjoin(
            projects,
            and_(projects.c.org_id == orgs.c.id, projects.c.name_lower == bindparam("name_lower")),
        )
        .outerjoin(
            project_roles,
            and_(project_roles.c.project_id == projects.c.id, project_roles.c.user_id == _user),
        )
    )
    .where(orgs.c.team_id == bindparam("team_id"))
)

_limit = bindparam("limit", type_=Integer)
_keys_of_project = select(*_KEY_COLUMNS).where(api_keys.c.project_id == bindparam("project_id"))
_KEYS_NEWEST = _keys_of_project.order_by(api_keys.c.id.desc()).limit(_limit)
_KEYS_BEFORE = _KEYS_NEWEST.where(api_keys.c.id < bindparam("cursor"))
_KEYS_AFTER = (
    _keys_of_project.where(api_keys.c.id > bindparam("cursor")).order_by(api_keys.c.id).limit(_limit)
)
_KEY_NAMED = _keys_of_project.where(api_keys.c.name_lower == bindparam("name_lower"))

_VERIFY = (
    select(
        api_keys.c.id,
        api_keys.c.key_id,
        api_keys.c.name,
        api_keys.c.secret_hash,
        projects.c.name,
        orgs.c.name,
        api_keys.c.last_used_at,
    )  # in VerifyRecord's field order
    .select_from(
        api_keys.join(projects, projects.c.id == api_keys.c.project_id).join(
            orgs, orgs.c.id == projects.c.org_id
        )
    )
    .where(api_keys.c.key_id == bindparam("key_id"))
)
_KEY_EXISTS = select(api_keys.c.id).where(api_keys.c.id == bindparam("row_id"))
_TOUCH = (
    update(api_keys)
    .where(
        api_keys.c.id == bindparam("row_id"),
        or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < bindparam("at")),
    )
    .values(last_used_at=bindparam("at"))
)


def _scope_params(team_id: str, user_id: str, project_name: str | None) -> dict[str, Any]:
    name_lower = None if project_name is None else project_name.lower()
    return {"team_id": team_id, "user_id": user_id, "name_lower": name_lower}


def _scope_from_row(row: tuple[Any, ...]) -> Scope:
    """A ``Scope`` from one row of ``_SCOPE``."""
    org_id, team_id, org_name, org_role, project_id, project_name, project_role = row
    org = Org(id=org_id, team_id=team_id, name=org_name)
    return Scope(
        org=org,
        org_role=None if org_role is None else OrgRole(org_role),
        project=None if project_id is None else Project(id=project_id, org_id=org_id, name=project_name),
        project_role=None if project_role is None else ProjectRole(project_role),
    )


class _DriverStatement:
    """A Core statement compiled once for one dialect and run directly on the driver connection.

    The verify path takes it: one driver call per statement, where SQLAlchemy's cursor adds three
    more trips to aiosqlite's thread, with SQLAlchemy's own type processing for values and rows.
    """

    def __init__(self, stmt: Select[Any] | Update, dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        self._binds = [
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in compiled.positiontup or ()
        ]
        # Values SQLAlchemy fills in itself, such as the OFFSET 0 that SQLite renders with a LIMIT.
        self._defaults = {name: bind.value for name, bind in compiled.binds.items() if bind.value is not None}
        columns = stmt.selected_columns if isinstance(stmt, Select) else ()
        self._results = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]

    def args(self, params: dict[str, Any]) -> list[Any]:
        values = {**self._defaults, **params}
        return [values[name] if bind is None else bind(values[name]) for name, bind in self._binds]

    def rows(self, raw: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        processors = self._results
        return [
            tuple(value if p is None else p(value) for p, value in zip(processors, row, strict=True))
            for row in raw
        ]


class _SqliteReader:
    """Hot, indexed, read-only statements on SQLite, run synchronously on the event loop.

    An indexed read of a WAL database takes tens of microseconds; handing it to aiosqlite's thread
    and back costs more than that, and under load that thread waits for the GIL (Python's switch
    interval is 5 ms), which capped ``/apikeys list`` near 250 requests/s. WAL readers never wait
    for writers, and ``busy_timeout=0`` makes sure this connection never blocks the loop: in the
    rare case SQLite says busy (recovery after a crash), ``fetch`` returns None and the caller
    takes the asynchronous path instead."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def fetch(self, stmt: "_DriverStatement", params: dict[str, Any]) -> list[tuple[Any, ...]] | None:
        conn = self._conn or self._open()
        try:
            raw = conn.execute(stmt.sql, stmt.args(params)).fetchall()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return None
            self.close()
            raise
        return stmt.rows(raw)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=0")
        conn.execute("PRAGMA query_only=ON")
        self._conn = conn
        return conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# --- transaction ------------------------------------------------------------------------------


class SqlTransaction:
    """One database transaction (see ``bot.ports.Transaction``)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    def _insert(self, table: Any) -> postgresql.Insert | sqlite.Insert:
        if self._conn.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    @_translating
    async def scope(self, *, team_id: str, user_id: str, project_name: str | None) -> Scope | None:
        row = (await self._conn.execute(_SCOPE, _scope_params(team_id, user_id, project_name))).first()
        return None if row is None else _scope_from_row(tuple(row))

    @_translating
    async def lock_org(self, org_id: int) -> None:
        await self._conn.execute(select(orgs.c.id).where(orgs.c.id == org_id).with_for_update())

    @_translating
    async def ensure_org(self, *, team_id: str, name: str) -> Org:
        values = {"team_id": team_id, "name": name, "created_at": datetime.now(UTC)}
        await self._conn.execute(
            self._insert(orgs).values(values).on_conflict_do_nothing(index_elements=["team_id"])
        )
        stmt = select(orgs.c.id, orgs.c.team_id, orgs.c.name).where(orgs.c.team_id == team_id)
        return Org(*(await self._conn.execute(stmt)).one())

    @_translating
    async def visible_projects(self, *, org_id: int, user_id: str, all_projects: bool) -> list[Project]:
        stmt = select(projects.c.id, projects.c.org_id, projects.c.name).where(projects.c.org_id == org_id)
        if not all_projects:
            stmt = stmt.join(project_roles, project_roles.c.project_id == projects.c.id).where(
                project_roles.c.user_id == user_id
            )
        found = [Project(*row) for row in await self._conn.execute(stmt)]
        return sorted(found, key=lambda p: (p.name.lower(), p.id))  # codepoint order, any collation

    @_translating
    async def add_project(self, *, org_id: int, name: str, created_by: str, at: datetime) -> Project:
        stmt = (
            projects.insert()
            .values(org_id=org_id, name=name, name_lower=name.lower(), created_by=created_by, created_at=at)
            .returning(projects.c.id)
        )
        row_id = await self._insert_once(stmt, f"a project named `{name}` already exists")
        return Project(id=row_id, org_id=org_id, name=name)

    @_translating
    async def project_named(self, *, org_id: int, name: str) -> Project | None:
        stmt = select(projects.c.id, projects.c.org_id, projects.c.name).where(
            projects.c.org_id == org_id, projects.c.name_lower == name.lower()
        )
        row = (await self._conn.execute(stmt)).first()
        return None if row is None else Project(*row)

    @_translating
    async def project_by_id(self, project_id: int) -> Project | None:
        stmt = select(projects.c.id, projects.c.org_id, projects.c.name).where(projects.c.id == project_id)
        row = (await self._conn.execute(stmt)).first()
        return None if row is None else Project(*row)

    @_translating
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
        )

    async def _insert_once(self, stmt: Insert, conflict: str) -> int:
        """Run an INSERT … RETURNING id in a savepoint; a unique violation becomes ``Conflict``."""
        try:
            async with self._conn.begin_nested():
                return int((await self._conn.execute(stmt)).scalar_one())
        except IntegrityError as exc:
            if _is_unique_violation(exc):
                raise Conflict(conflict) from None
            raise

    @_translating
    async def key_named(self, *, project_id: int, name: str) -> KeyRecord | None:
        params = {"project_id": project_id, "name_lower": name.lower()}
        row = (await self._conn.execute(_KEY_NAMED, params)).first()
        return None if row is None else KeyRecord(*row)

    @_translating
    async def key_by_row_id(self, row_id: int) -> KeyRecord | None:
        row = (await self._conn.execute(select(*_KEY_COLUMNS).where(api_keys.c.id == row_id))).first()
        return None if row is None else KeyRecord(*row)

    @_translating
    async def keys_page(
        self, *, project_id: int, before_id: int | None, after_id: int | None, limit: int
    ) -> list[KeyRecord]:
        params: dict[str, Any] = {"project_id": project_id, "limit": limit}
        if before_id is not None:
            result = await self._conn.execute(_KEYS_BEFORE, {**params, "cursor": before_id})
        elif after_id is not None:
            rows = (await self._conn.execute(_KEYS_AFTER, {**params, "cursor": after_id})).all()
            return [KeyRecord(*row) for row in reversed(rows)]
        else:
            result = await self._conn.execute(_KEYS_NEWEST, params)
        return [KeyRecord(*row) for row in result]

    @_translating
    async def delete_key(self, row_id: int) -> bool:
        result = await self._conn.execute(delete(api_keys).where(api_keys.c.id == row_id))
        return result.rowcount == 1

    @_translating
    async def org_role(self, *, org_id: int, user_id: str) -> OrgRole | None:
        stmt = select(org_roles.c.role).where(org_roles.c.org_id == org_id, org_roles.c.user_id == user_id)
        role = (await self._conn.execute(stmt)).scalar_one_or_none()
        return None if role is None else OrgRole(role)

    @_translating
    async def set_org_role(self, *, org_id: int, user_id: str, role: OrgRole) -> None:
        stmt = self._insert(org_roles).values(org_id=org_id, user_id=user_id, role=role.value)
        await self._conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["org_id", "user_id"], set_={"role": stmt.excluded.role}
            )
        )

    @_translating
    async def delete_org_role(self, *, org_id: int, user_id: str) -> bool:
        stmt = delete(org_roles).where(org_roles.c.org_id == org_id, org_roles.c.user_id == user_id)
        return (await self._conn.execute(stmt)).rowcount == 1

    @_translating
    async def count_org_owners(self, org_id: int) -> int:
        stmt = select(func.count()).where(
            org_roles.c.org_id == org_id, org_roles.c.role == OrgRole.OWNER.value
        )
        return int((await self._conn.execute(stmt)).scalar_one())

    @_translating
    async def project_role(self, *, project_id: int, user_id: str) -> ProjectRole | None:
        stmt = select(project_roles.c.role).where(
            project_roles.c.project_id == project_id, project_roles.c.user_id == user_id
        )
        role = (await self._conn.execute(stmt)).scalar_one_or_none()
        return None if role is None else ProjectRole(role)

    @_translating
    async def set_project_role(self, *, project_id: int, user_id: str, role: ProjectRole) -> None:
        stmt = self._insert(project_roles).values(project_id=project_id, user_id=user_id, role=role.value)
        await self._conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["project_id", "user_id"], set_={"role": stmt.excluded.role}
            )
        )

    @_translating
    async def delete_project_role(self, *, project_id: int, user_id: str) -> bool:
        stmt = delete(project_roles).where(
            project_roles.c.project_id == project_id, project_roles.c.user_id == user_id
        )
        return (await self._conn.execute(stmt)).rowcount == 1

    @_translating
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

    @_translating
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

    @_translating
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

    @_translating
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

    @_translating
    async def pending(self, token: str) -> PendingDeletion | None:
        t = pending_deletions.c
        stmt = select(
            t.token, t.key_row_id, t.project_id, t.user_id, t.team_id, t.expires_at, t.used_at
        ).where(t.token == token)
        row = (await self._conn.execute(stmt)).first()
        return None if row is None else PendingDeletion(*row)

    @_translating
    async def use_pending(self, token: str, *, at: datetime) -> bool:
        stmt = (
            update(pending_deletions)
            .where(pending_deletions.c.token == token, pending_deletions.c.used_at.is_(None))
            .values(used_at=at)
        )
        return (await self._conn.execute(stmt)).rowcount == 1

    @_translating
    async def add_audit(self, event: AuditEvent) -> None:
        await self._conn.execute(
            audit_events.insert().values(
                org_id=event.org_id,
                project_id=event.project_id,
                actor=event.actor,
                action=event.action,
                key_name=event.key_name,
                key_masked=event.key_masked,
                target_user=event.target_user,
                role=event.role,
                at=event.at,
            )
        )

    @_translating
    async def audit_page(self, *, project_id: int, before_id: int | None, limit: int) -> list[AuditEvent]:
        a = audit_events.c
        stmt = select(audit_events).where(a.project_id == project_id)
        if before_id is not None:
            stmt = stmt.where(a.id < before_id)
        stmt = stmt.order_by(a.id.desc()).limit(limit)
        return [AuditEvent(**row._mapping) for row in await self._conn.execute(stmt)]

    @_translating
    async def notify(self, *, user_id: str, text: str, at: datetime) -> None:
        await self._conn.execute(
            outbox.insert().values(user_id=user_id, text=text, created_at=at, next_attempt_at=at, attempts=0)
        )


# --- store ------------------------------------------------------------------------------------


@asynccontextmanager
async def _begin(engine: AsyncEngine) -> AsyncIterator[SqlTransaction]:
    try:
        async with engine.connect() as conn, conn.begin():
            yield SqlTransaction(conn)
    except Exception as exc:
        translated = _translate(exc)
        if translated is exc:
            raise
        raise translated  # noqa: B904 (cause set by _translate)


class SqlStore:
    """``bot.ports.Store`` on an AsyncEngine (SQLite via aiosqlite or PostgreSQL via asyncpg)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._writer = writer(engine)
        self._reader = reader(engine)
        self._single = single_statement(engine)
        self._postgres = engine.dialect.name == "postgresql"
        self._verify = _DriverStatement(_VERIFY, engine.dialect)
        self._key_exists = _DriverStatement(_KEY_EXISTS, engine.dialect)
        self._touch = _DriverStatement(_TOUCH, engine.dialect)
        self._scope = _DriverStatement(_SCOPE, engine.dialect)
        database = engine.url.database
        self._sync_reader = (
            _SqliteReader(database) if not self._postgres and database and database != ":memory:" else None
        )
        self._keys_newest = _DriverStatement(_KEYS_NEWEST, engine.dialect)
        self._keys_before = _DriverStatement(_KEYS_BEFORE, engine.dialect)
        self._keys_after = _DriverStatement(_KEYS_AFTER, engine.dialect)

    def transaction(self) -> AbstractAsyncContextManager[SqlTransaction]:
        """A write transaction (BEGIN IMMEDIATE on SQLite): commits at the end, rolls back on error."""
        return _begin(self._writer)

    def read(self) -> AbstractAsyncContextManager[SqlTransaction]:
        """A read transaction: a consistent snapshot without the SQLite write lock."""
        return _begin(self._reader)

    async def _read(self, stmt: _DriverStatement, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """A hot read: synchronous on SQLite (see ``_SqliteReader``), else on a driver connection."""
        if self._sync_reader is not None:
            rows = self._sync_reader.fetch(stmt, params)
            if rows is not None:
                return rows
        return await self._driver(stmt, params)

    async def _driver(self, stmt: _DriverStatement, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run ``stmt`` on a pooled connection's driver, outside any transaction."""
        async with self._single.connect() as conn:
            driver: Any = (await conn.get_raw_connection()).driver_connection
            try:
                return await self._fetch(driver, stmt, params)
            except BaseException:
                await conn.invalidate()  # the pool cannot tell what state the driver was left in
                raise

    @_translating
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
        """Scope and one page of keys: two hot reads, no BEGIN/COMMIT, no SQLAlchemy layer.

        The two reads need no common snapshot: a key created or deleted in between is simply
        shown or not, as it would be a moment later."""
        rows = await self._read(self._scope, _scope_params(team_id, user_id, project_name))
        scope = _scope_from_row(rows[0]) if rows else None
        if scope is None or scope.project is None:
            return scope, []
        params: dict[str, Any] = {"project_id": scope.project.id, "limit": limit}
        if before_id is not None:
            keys = await self._read(self._keys_before, {**params, "cursor": before_id})
        elif after_id is not None:
            keys = await self._read(self._keys_after, {**params, "cursor": after_id})
            keys.reverse()
        else:
            keys = await self._read(self._keys_newest, params)
        return scope, [KeyRecord(*row) for row in keys]

    async def _fetch(
        self, driver: Any, stmt: _DriverStatement, params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        args = stmt.args(params)
        if self._postgres:
            return stmt.rows(await driver.fetch(stmt.sql, *args))
        return stmt.rows(await driver.execute_fetchall(stmt.sql, args))

    @_translating
    async def verify_record(self, key_id: str) -> VerifyRecord | None:
        rows = await self._read(self._verify, {"key_id": key_id})
        return VerifyRecord(*rows[0]) if rows else None

    @_translating
    async def key_exists(self, row_id: int) -> bool:
        return bool(await self._read(self._key_exists, {"row_id": row_id}))

    @_translating
    async def touch_key(self, row_id: int, *, at: datetime) -> None:
        await self._driver(self._touch, {"row_id": row_id, "at": at})

    @_translating
    async def claim_notifications(
        self, *, limit: int, now: datetime, lease_seconds: float
    ) -> Sequence[Notification]:
        """Claim due, unsent outbox rows for ``lease_seconds`` (SKIP LOCKED on PostgreSQL)."""
        o = outbox.c
        due = (
            select(o.id)
            .where(
                o.sent_at.is_(None),
                o.next_attempt_at <= now,
                or_(o.claimed_until.is_(None), o.claimed_until <= now),
            )
            .order_by(o.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            update(outbox)
            .where(o.id.in_(due.scalar_subquery()))
            .values(claimed_until=now + timedelta(seconds=lease_seconds), attempts=o.attempts + 1)
            .returning(o.id, o.user_id, o.text, o.attempts)
        )
        async with self._single.connect() as conn:
            rows = (await conn.execute(stmt)).all()
            await conn.commit()
        return sorted((Notification(*row) for row in rows), key=lambda n: n.id)

    @_translating
    async def mark_sent(self, notification_id: int, *, at: datetime) -> None:
        await self._update_outbox(notification_id, sent_at=at, claimed_until=None)

    @_translating
    async def reschedule(self, notification_id: int, *, at: datetime, error: str) -> None:
        await self._update_outbox(
            notification_id, next_attempt_at=at, claimed_until=None, last_error=error[:_ERROR_LIMIT]
        )

    async def _update_outbox(self, notification_id: int, **values: Any) -> None:
        async with self._single.connect() as conn:
            await conn.execute(update(outbox).where(outbox.c.id == notification_id).values(values))
            await conn.commit()

    @_translating
    async def pending_notifications(self) -> int:
        stmt = select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        async with self._single.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def close(self) -> None:
        """Close every pooled connection."""
        if self._sync_reader is not None:
            self._sync_reader.close()
        await self.engine.dispose()


async def open_store(url: str, *, migrate: bool = True) -> SqlStore:
    """A ``SqlStore`` for ``url``, migrated to the newest schema unless ``migrate`` is False."""
    engine = make_engine(url)
    if migrate:
        try:
            await upgrade(engine)
        except Exception as exc:
            await engine.dispose()
            translated = _translate(exc)
            if translated is exc:
                raise
            raise translated from exc
    return SqlStore(engine)


if TYPE_CHECKING:  # mypy proves that both classes implement the ports

    def _implements_ports(store: SqlStore, tx: SqlTransaction) -> tuple[Store, Transaction]:
        return store, tx

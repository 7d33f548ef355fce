"""``SqlStore`` (the unit of work, the hot reads, the outbox, health, dead letters and retention)
and ``open_store``.

The hot reads (``key_listing`` for ``/apikeys list``; ``verify_record`` and ``key_state`` for
verify) run outside any transaction on statements compiled once per store (``storage.fastpath``):
synchronously on SQLite, on a pooled driver connection on PostgreSQL. The other one-statement
methods skip BEGIN/COMMIT (``storage.engine.single_statement``). Every entry point translates
database errors (``storage.errors``).
"""

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.model import KeyRecord, KeyState, Notification, Scope, VerifyRecord
from bot.domain.notices import Notice
from bot.ports import OutboxEntry
from storage.engine import make_engine, reader, single_statement, writer
from storage.errors import translating
from storage.fastpath import DriverStatement, SqliteReader
from storage.migrations import upgrade
from storage.statements import (
    KEY_COUNTS,
    KEY_STATE,
    KEYS_AFTER,
    KEYS_BEFORE,
    KEYS_NEWEST,
    SCOPE,
    TOUCH,
    VERIFY,
    VERIFY_RETIRED,
    scope_from_row,
    scope_params,
)
from storage.tables import outbox, pending_deletions
from storage.transaction import SqlTransaction

if TYPE_CHECKING:
    from bot.ports import DeadLetters, Health, KeyListing, Outbox, Retention, UnitOfWork, VerifyReads

_ERROR_LIMIT = 500


@asynccontextmanager
async def _begin(engine: AsyncEngine) -> AsyncIterator[SqlTransaction]:
    with translating:
        async with engine.connect() as conn, conn.begin():
            yield SqlTransaction(conn)


class SqlStore:
    """The ports of ``bot.ports`` on an AsyncEngine (SQLite via aiosqlite or PostgreSQL via asyncpg)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._writer = writer(engine)
        self._reader = reader(engine)
        self._single = single_statement(engine)
        self._postgres = engine.dialect.name == "postgresql"
        self._verify = DriverStatement(VERIFY, engine.dialect)
        self._verify_retired = DriverStatement(VERIFY_RETIRED, engine.dialect)
        self._key_state = DriverStatement(KEY_STATE, engine.dialect)
        self._touch = DriverStatement(TOUCH, engine.dialect)
        self._scope = DriverStatement(SCOPE, engine.dialect)
        database = engine.url.database
        self._sync_reader = (
            SqliteReader(database) if not self._postgres and database and database != ":memory:" else None
        )
        self._keys_newest = DriverStatement(KEYS_NEWEST, engine.dialect)
        self._keys_before = DriverStatement(KEYS_BEFORE, engine.dialect)
        self._keys_after = DriverStatement(KEYS_AFTER, engine.dialect)
        self._key_counts = DriverStatement(KEY_COUNTS, engine.dialect)

    # -- the unit of work ------------------------------------------------------------------------

    def transaction(self) -> AbstractAsyncContextManager[SqlTransaction]:
        """A write transaction (BEGIN IMMEDIATE on SQLite): commits at the end, rolls back on error."""
        return _begin(self._writer)

    def read(self) -> AbstractAsyncContextManager[SqlTransaction]:
        """A read transaction: a consistent snapshot without the SQLite write lock."""
        return _begin(self._reader)

    # -- the hot reads -----------------------------------------------------------------------------

    async def _read(self, stmt: DriverStatement, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """A hot read: synchronous on SQLite (see ``SqliteReader``), else on a driver connection."""
        if self._sync_reader is not None:
            rows = self._sync_reader.fetch(stmt, params)
            if rows is not None:
                return rows
        return await self._driver(stmt, params)

    async def _driver(self, stmt: DriverStatement, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run ``stmt`` on a pooled connection's driver, outside any transaction."""
        async with self._single.connect() as conn:
            driver: Any = (await conn.get_raw_connection()).driver_connection
            try:
                return await stmt.fetch(driver, params)
            except BaseException:
                await conn.invalidate()  # the pool cannot tell what state the driver was left in
                raise

    @translating
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
        rows = await self._read(self._scope, scope_params(team_id, user_id, project_name))
        scope = scope_from_row(rows[0]) if rows else None
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

    @translating
    async def key_counts(self, *, project_id: int, above: int | None) -> tuple[int, int]:
        """How many keys ``project_id`` has, and how many have a row id above ``above`` (newer)."""
        params = {"project_id": project_id, "above": 2**31 - 1 if above is None else above}
        [(total, newer)] = await self._read(self._key_counts, params)
        return int(total), int(newer)

    @translating
    async def verify_record(self, key_id: str) -> VerifyRecord | None:
        rows = await self._read(self._verify, {"key_id": key_id})
        if not rows:  # perhaps the old secret of a rolled key
            rows = await self._read(self._verify_retired, {"key_id": key_id})
        return VerifyRecord(*rows[0]) if rows else None

    @translating
    async def key_state(self, row_id: int, *, key_id: str) -> KeyState | None:
        rows = await self._read(self._key_state, {"row_id": row_id, "key_id": key_id})
        return KeyState(*rows[0]) if rows else None

    @translating
    async def touch_key(self, row_id: int, *, at: datetime) -> None:
        await self._driver(self._touch, {"row_id": row_id, "at": at})

    # -- the outbox and health ---------------------------------------------------------------------

    @translating
    async def claim_notifications(
        self,
        *,
        limit: int,
        now: datetime,
        lease_seconds: float,
        origin: str | None = None,
        settle_seconds: float = 0.0,
    ) -> Sequence[Notification]:
        """Claim due, unsent outbox rows of ``origin`` (None: Slack's; "shell": keybot shell's) for
        ``lease_seconds`` (SKIP LOCKED on PostgreSQL). A row is due once it is ``settle_seconds`` old;
        then every other due row for the same recipient comes along, so they can go out as one DM."""
        o = outbox.c
        waiting = (
            o.sent_at.is_(None),
            o.dead_at.is_(None),
            o.next_attempt_at <= now,
            or_(o.claimed_until.is_(None), o.claimed_until <= now),
            o.origin.is_(None) if origin is None else o.origin == origin,
        )
        settled = o.created_at <= now - timedelta(seconds=settle_seconds)
        recipients = select(o.user_id).where(*waiting, settled)
        due = (
            select(o.id)
            .where(*waiting, or_(settled, o.user_id.in_(recipients.scalar_subquery())))
            .order_by(o.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            update(outbox)
            .where(o.id.in_(due.scalar_subquery()))
            .values(claimed_until=now + timedelta(seconds=lease_seconds), attempts=o.attempts + 1)
            .returning(o.id, o.user_id, o.notice, o.text, o.attempts)
        )
        async with self._single.connect() as conn:
            rows = (await conn.execute(stmt)).all()
            await conn.commit()
        claimed = (
            Notification(
                id=row_id,
                user_id=user_id,
                notice=Notice.from_json(raw) if raw else None,
                text=text,
                attempts=attempts,
            )
            for row_id, user_id, raw, text, attempts in rows
        )
        return sorted(claimed, key=lambda n: n.id)

    @translating
    async def mark_sent(self, notification_id: int, *, at: datetime) -> None:
        await self._update_outbox(notification_id, sent_at=at, claimed_until=None)

    @translating
    async def reschedule(self, notification_id: int, *, at: datetime, error: str) -> None:
        await self._update_outbox(
            notification_id, next_attempt_at=at, claimed_until=None, last_error=error[:_ERROR_LIMIT]
        )

    @translating
    async def bury(self, notification_id: int, *, at: datetime, error: str) -> None:
        await self._update_outbox(
            notification_id, dead_at=at, claimed_until=None, last_error=error[:_ERROR_LIMIT]
        )

    async def _update_outbox(self, notification_id: int, **values: Any) -> None:
        async with self._single.connect() as conn:
            await conn.execute(update(outbox).where(outbox.c.id == notification_id).values(values))
            await conn.commit()

    async def _count_unsent(self, *, dead: bool) -> int:
        o = outbox.c
        stmt = (
            select(func.count())
            .select_from(outbox)
            .where(o.sent_at.is_(None), o.dead_at.is_not(None) if dead else o.dead_at.is_(None))
        )
        async with self._single.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    @translating
    async def pending_notifications(self) -> int:
        return await self._count_unsent(dead=False)

    @translating
    async def dead_notifications(self) -> int:
        return await self._count_unsent(dead=True)

    # -- dead letters (keybot outbox) ---------------------------------------------------------------

    @translating
    async def unsent_notifications(self, *, dead: bool, limit: int) -> list[OutboxEntry]:
        o = outbox.c
        stmt = (
            select(
                o.id, o.user_id, o.team_id, o.notice, o.attempts, o.last_error, o.created_at,
                o.next_attempt_at, o.dead_at,
            )
            .where(o.sent_at.is_(None), o.dead_at.is_not(None) if dead else o.dead_at.is_(None))
            .order_by(o.id)
            .limit(limit)
        )
        async with self._single.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            OutboxEntry(
                id=row.id,
                user_id=row.user_id,
                team_id=row.team_id,
                kind=Notice.from_json(row.notice).kind.value if row.notice else None,
                attempts=row.attempts,
                last_error=row.last_error,
                created_at=row.created_at,
                next_attempt_at=row.next_attempt_at,
                dead_at=row.dead_at,
            )
            for row in rows
        ]

    @translating
    async def revive_notifications(self, ids: Sequence[int] | None, *, at: datetime) -> list[int]:
        o = outbox.c
        stmt = update(outbox).where(o.sent_at.is_(None), o.dead_at.is_not(None))
        if ids is not None:
            stmt = stmt.where(o.id.in_(list(ids)))
        stmt = stmt.values(dead_at=None, claimed_until=None, next_attempt_at=at, attempts=0).returning(o.id)
        async with self._single.connect() as conn:
            revived = list((await conn.execute(stmt)).scalars())
            await conn.commit()
        return sorted(revived)

    # -- retention -----------------------------------------------------------------------------------

    async def _delete_batch(self, table: Any, key: Any, *conditions: Any, limit: int) -> int:
        """Delete up to ``limit`` rows matching ``conditions`` in one statement (rows another
        instance is deleting at the same moment are skipped on PostgreSQL)."""
        batch = select(key).where(*conditions).order_by(key).limit(limit).with_for_update(skip_locked=True)
        async with self._single.connect() as conn:
            deleted = (await conn.execute(delete(table).where(key.in_(batch.scalar_subquery())))).rowcount
            await conn.commit()
        return int(deleted)

    @translating
    async def purge_sent_notifications(self, *, sent_before: datetime, limit: int) -> int:
        return await self._delete_batch(outbox, outbox.c.id, outbox.c.sent_at < sent_before, limit=limit)

    @translating
    async def purge_dead_notifications(self, *, dead_before: datetime, limit: int) -> int:
        o = outbox.c
        return await self._delete_batch(outbox, o.id, o.sent_at.is_(None), o.dead_at < dead_before, limit=limit)

    @translating
    async def purge_pending_deletions(self, *, ended_before: datetime, limit: int) -> int:
        p = pending_deletions.c
        ended = or_(p.expires_at < ended_before, p.used_at < ended_before)
        return await self._delete_batch(pending_deletions, p.token, ended, limit=limit)

    async def close(self) -> None:
        """Close every pooled connection."""
        if self._sync_reader is not None:
            self._sync_reader.close()
        await self.engine.dispose()


async def open_store(url: str, *, migrate: bool = True) -> SqlStore:
    """A ``SqlStore`` for ``url``, migrated to the newest schema unless ``migrate`` is False."""
    engine = make_engine(url)
    if migrate:
        with translating:
            try:
                await upgrade(engine)
            except Exception:
                await engine.dispose()
                raise
    return SqlStore(engine)


if TYPE_CHECKING:  # mypy proves that SqlStore implements the ports

    def _implements_ports(
        store: SqlStore,
    ) -> tuple["UnitOfWork", "KeyListing", "VerifyReads", "Outbox", "Health", "DeadLetters", "Retention"]:
        return store, store, store, store, store, store, store

"""``SqlStore`` (the unit of work, the hot reads, the outbox, health, dead letters and retention)
and ``open_store``.

The hot reads (``key_listing`` for ``/apikeys list``; ``verify_record`` and ``key_state`` for
verify) run outside any transaction on statements compiled once per store (``storage.fastpath``):
synchronously on SQLite, on asyncpg connections of their own on PostgreSQL (``PgReader``: no
engine checkout, no pre-ping; verify's ``touch_key`` UPDATE shares them). A page of keys is one
statement with the actor's scope and the project's counts. The other one-statement methods skip BEGIN/COMMIT (``storage.engine.single_statement``).
Every entry point translates database errors (``storage.errors``).
"""

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.model import AUDIT_WEBHOOK, KeyRecord, KeyState, Notification, VerifyRecord
from bot.domain.notices import Notice
from bot.ports import KeyListingPage, OutboxEntry
from storage.engine import PG_CONNECT_ARGS, make_engine, reader, single_statement, writer
from storage.errors import translating
from storage.fastpath import DriverStatement, PgReader, Row, SqliteReader, UnchangedReads, record_maker
from storage.migrations import upgrade
from storage.statements import (
    KEY_STATE,
    LISTING_AFTER,
    LISTING_BEFORE,
    LISTING_COLUMNS,
    LISTING_NEWEST,
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
# PostgreSQL connections for the hot reads, besides the engine's pool: one per request of a burst of 32
# (fewer made requests queue for a connection, and p99 at c=32 doubled with 8), opened as load needs
# them and then kept, like the engine's pool_size.
_HOT_POOL_SIZE = 32
_NO_ROW_ABOVE = 2**31 - 1  # above every row id (PostgreSQL's INTEGER)
_key_record = record_maker(KeyRecord, start=LISTING_COLUMNS)  # a row of LISTING_*
KEPT_PAGES = 256  # pages of keys kept between commits on SQLite (~25 KB each at most)


@asynccontextmanager
async def _begin(engine: AsyncEngine, *, audit_webhook: bool = False) -> AsyncIterator[SqlTransaction]:
    with translating:
        async with engine.connect() as conn, conn.begin():
            yield SqlTransaction(conn, audit_webhook=audit_webhook)


class SqlStore:
    """The ports of ``bot.ports`` on an AsyncEngine (SQLite via aiosqlite or PostgreSQL via asyncpg)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.audit_webhook = False  # True: every audit event also queues an audit webhook delivery
        self._writer = writer(engine)
        self._reader = reader(engine)
        self._single = single_statement(engine)
        self._postgres = engine.dialect.name == "postgresql"
        self._verify = DriverStatement(VERIFY, engine.dialect)
        self._verify_retired = DriverStatement(VERIFY_RETIRED, engine.dialect)
        self._key_state = DriverStatement(KEY_STATE, engine.dialect)
        self._touch = DriverStatement(TOUCH, engine.dialect)
        self._listing_newest = DriverStatement(LISTING_NEWEST, engine.dialect)
        self._listing_before = DriverStatement(LISTING_BEFORE, engine.dialect)
        self._listing_after = DriverStatement(LISTING_AFTER, engine.dialect)
        database = engine.url.database
        self._sync_reader = (
            SqliteReader(database) if not self._postgres and database and database != ":memory:" else None
        )
        # Pages of keys read on SQLite, served again until anything commits (``UnchangedReads``): a
        # page's statement was most of a ``list``'s time, and lists far outnumber changes. The benchmark
        # replaces it with one of size 0 to measure pages read anew.
        self.kept_pages = UnchangedReads(size=KEPT_PAGES)
        self._hot_reads = 0  # statements run by _read off the synchronous reader so far
        self._pg_reader = PgReader(_asyncpg_connect_args(engine), size=_HOT_POOL_SIZE) if self._postgres else None

    # -- the unit of work ------------------------------------------------------------------------

    def transaction(self) -> AbstractAsyncContextManager[SqlTransaction]:
        """A write transaction (BEGIN IMMEDIATE on SQLite): commits at the end, rolls back on error."""
        return _begin(self._writer, audit_webhook=self.audit_webhook)

    def read(self) -> AbstractAsyncContextManager[SqlTransaction]:
        """A read transaction: a consistent snapshot without the SQLite write lock."""
        return _begin(self._reader)

    # -- the hot reads -----------------------------------------------------------------------------

    async def _read(self, stmt: DriverStatement, params: dict[str, Any]) -> list[Row]:
        """A hot read: synchronous on SQLite (see ``SqliteReader``), on ``PgReader`` on PostgreSQL."""
        if self._sync_reader is not None:
            rows = self._sync_reader.fetch(stmt, params)
            if rows is not None:
                return rows
        self._hot_reads += 1
        if self._pg_reader is not None:
            return await self._pg_reader.fetch(stmt, params)
        return await self._driver(stmt, params)

    @property
    def hot_reads(self) -> int:
        """Statements the hot reads ran so far, which SQLAlchemy's events do not see."""
        synchronous = self._sync_reader.statements if self._sync_reader is not None else 0
        return self._hot_reads + synchronous

    async def _driver(self, stmt: DriverStatement, params: dict[str, Any]) -> list[Row]:
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
    ) -> KeyListingPage:
        """Scope, one page of keys and the project's counts: one statement (``LISTING_*``), no
        BEGIN/COMMIT, no SQLAlchemy layer, so all of it is one snapshot."""
        params = scope_params(team_id, user_id, project_name)
        params["limit"] = limit
        if before_id is not None:  # newer than the page's first row: the rows from the cursor on
            stmt, cursor, above = self._listing_before, before_id, before_id - 1
        elif after_id is not None:  # the page is the rows just above the cursor
            stmt, cursor, above = self._listing_after, after_id, after_id
        else:
            stmt, cursor, above = self._listing_newest, None, _NO_ROW_ABOVE
        params["cursor"], params["above"] = cursor, above
        version = self._sync_reader.version() if self._sync_reader is not None else None
        kept = (stmt, team_id, user_id, project_name, cursor, limit)
        if version is not None:
            page = self.kept_pages.get(version, kept)
            if page is not None:
                return page  # type: ignore[no-any-return]
        rows = await self._read(stmt, params)
        if not rows:
            page = KeyListingPage(scope=None, keys=[])
        else:
            first = rows[0]
            scope = scope_from_row(first[:LISTING_COLUMNS - 2])
            keys = [_key_record(row) for row in rows if row[LISTING_COLUMNS] is not None]
            newer = first[LISTING_COLUMNS - 1] - (len(keys) if after_id is not None else 0)
            page = KeyListingPage(scope=scope, keys=keys, total=first[LISTING_COLUMNS - 2], newer=newer)
        if version is not None:
            self.kept_pages.put(version, kept, page)
        return page

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
        """``last_used_at``, one autocommitted UPDATE (safe to repeat): on PostgreSQL on ``PgReader``'s
        connections, whose retry after a dropped connection it shares; on SQLite on aiosqlite (the
        synchronous reader is read-only)."""
        params = {"row_id": row_id, "at": at}
        if self._pg_reader is not None:
            await self._pg_reader.fetch(self._touch, params)
        else:
            await self._driver(self._touch, params)

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
    async def waits_behind(self, notification_id: int, *, user_id: str) -> bool:
        o = outbox.c
        stmt = (
            select(o.id)
            .where(o.user_id == user_id, o.id < notification_id, o.sent_at.is_(None), o.dead_at.is_(None))
            .limit(1)
        )
        async with self._single.connect() as conn:
            return (await conn.execute(stmt)).first() is not None

    @translating
    async def hold_notifications(self, *, origin: str, at: datetime, error: str) -> int:
        o = outbox.c
        stmt = (
            update(outbox)
            .where(o.origin == origin, o.sent_at.is_(None), o.dead_at.is_(None), o.next_attempt_at < at)
            .values(next_attempt_at=at, last_error=error[:_ERROR_LIMIT])
        )
        async with self._single.connect() as conn:
            count = (await conn.execute(stmt)).rowcount
            await conn.commit()
        return int(count or 0)

    @translating
    async def bury(self, notification_id: int, *, at: datetime, error: str) -> None:
        await self._update_outbox(
            notification_id, dead_at=at, claimed_until=None, last_error=error[:_ERROR_LIMIT]
        )

    @translating
    async def resume_workspace(self, team_id: str, *, now: datetime) -> int:
        """Make the unsent DMs of a workspace (or Grid org) due now, after keybot was installed there
        again; how many."""
        o = outbox.c
        stmt = (
            update(outbox)
            .where(o.team_id == team_id, o.sent_at.is_(None), o.dead_at.is_(None), o.next_attempt_at > now)
            .values(next_attempt_at=now)
        )
        async with self._single.connect() as conn:
            count = (await conn.execute(stmt)).rowcount
            await conn.commit()
        return int(count or 0)

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

    @translating
    async def oldest_pending_notification(self) -> datetime | None:
        o = outbox.c
        stmt = select(func.min(o.created_at)).where(o.sent_at.is_(None), o.dead_at.is_(None))
        async with self._single.connect() as conn:
            oldest: datetime | None = (await conn.execute(stmt)).scalar_one()
        return oldest

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
                kind=Notice.from_json(row.notice).kind.value if row.notice else _plain_kind(row.user_id),
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
        if self._pg_reader is not None:
            await self._pg_reader.close()
        await self.engine.dispose()


def _plain_kind(recipient: str) -> str | None:
    """What a row without a notice is: an audit webhook delivery, or a DM queued as text (None)."""
    return AUDIT_WEBHOOK if recipient == AUDIT_WEBHOOK else None


def _asyncpg_connect_args(engine: AsyncEngine) -> dict[str, Any]:
    """``asyncpg.connect``'s arguments for the engine's server, as the engine itself connects."""
    _, kwargs = engine.dialect.create_connect_args(engine.url)
    for sqlalchemy_only in ("prepared_statement_cache_size", "prepared_statement_name_func", "async_fallback"):
        kwargs.pop(sqlalchemy_only, None)
    return {**kwargs, **PG_CONNECT_ARGS}


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

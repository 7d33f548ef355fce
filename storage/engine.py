"""Engine factory: SQLite (aiosqlite) tuned for one writer at a time, PostgreSQL (asyncpg) pooled.

Transactions choose their mode through execution options, which ``writer``, ``reader`` and
``single_statement`` apply:

- SQLite: keybot issues BEGIN itself (SQLAlchemy's documented aiosqlite recipe). ``writer`` starts
  with ``BEGIN IMMEDIATE``, taking the write lock before the first read, so a read-then-write
  transaction never fails with SQLITE_BUSY_SNAPSHOT; ``reader`` starts with a deferred ``BEGIN``
  (one snapshot for all its reads); ``single_statement`` issues no BEGIN (one statement is atomic).
  Connections go back to the pool with a ROLLBACK only if a transaction is still open.
- PostgreSQL: connections are AUTOCOMMIT unless asked otherwise, which keeps the pool's pre-ping at
  one round trip; ``writer`` is READ COMMITTED, ``reader`` REPEATABLE READ (one snapshot).
"""

import contextlib
import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, event, make_url
from sqlalchemy.engine.interfaces import AdaptedConnection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState

# busy_timeout comes first so the others wait for a lock instead of failing at once.
_SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=5000",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=NORMAL",
)

# asyncpg's: 5 s to connect, 5 s per statement (also the hot reads' own pool, storage.fastpath.PgReader)
PG_CONNECT_ARGS = {"timeout": 5, "command_timeout": 5}


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An AsyncEngine for a ``sqlite+aiosqlite://`` or ``postgresql+asyncpg://`` URL.

    SQL parameters are hidden from exception messages (``hide_parameters``), so no hash or other
    value bound to a statement ever reaches a log line through an error.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        path = sqlite_file(url)
        if path is not None:
            _create_private(path)
        # A pool big enough for a burst of 32 requests: an overflow connection is closed when it is
        # returned, and on aiosqlite each new one is a new thread plus four PRAGMAs.
        engine = create_async_engine(
            parsed, echo=echo, hide_parameters=True, pool_reset_on_return=None, pool_size=4, max_overflow=4
        )
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        event.listen(engine.sync_engine.pool, "reset", _sqlite_reset)
        return engine
    if backend == "postgresql":
        return create_async_engine(
            parsed,
            echo=echo,
            hide_parameters=True,
            isolation_level="AUTOCOMMIT",
            # Steady pool for a burst of 32 requests: overflow connections are closed on return, and
            # each new one costs a TCP (and TLS) handshake and a server process.
            pool_size=32,
            max_overflow=0,
            pool_pre_ping=True,
            pool_timeout=10,
            connect_args=PG_CONNECT_ARGS,
        )
    raise ValueError(f"unsupported database {backend!r}: use sqlite+aiosqlite:// or postgresql+asyncpg://")


def sqlite_file(url: str) -> Path | None:
    """The database file of an SQLite URL; None for PostgreSQL and in-memory databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only (0600), before SQLite opens it: it holds
    key hashes, and SQLite gives the -wal and -shm files it makes later the main file's mode."""
    with contextlib.suppress(OSError):  # it exists already, or its folder does not: SQLite decides
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def files_open_to_others(url: str) -> list[Path]:
    """The files of an SQLite database (main, -wal, -shm) that its group or other users may read or
    write; empty for PostgreSQL."""
    path = sqlite_file(url)
    if path is None:
        return []
    found = []
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(OSError):
            if stat.S_IMODE(file.stat().st_mode) & 0o077:
                found.append(file)
    return found


def writer(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` for read-write transactions (BEGIN IMMEDIATE on SQLite, READ COMMITTED on PG)."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(keybot_write=True)
    return engine.execution_options(isolation_level="READ COMMITTED")


def reader(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` for read-only transactions that see one snapshot and take no write lock."""
    if engine.dialect.name == "sqlite":
        return engine
    return engine.execution_options(isolation_level="REPEATABLE READ")


def single_statement(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` for one-statement work: no BEGIN/COMMIT round trips around the statement."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(keybot_single_statement=True)
    return engine  # AUTOCOMMIT already


def _sqlite_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    dbapi_connection.isolation_level = None  # the driver no longer emits BEGIN; _sqlite_begin does
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(pragma)
    _use_wal(cursor)
    cursor.close()


def _use_wal(cursor: Any) -> None:
    """Switch a new database to WAL. The switch needs a moment alone with the file, so instances
    starting together on a new database may find it busy: they wait and try again (up to ~5 s)."""
    cursor.execute("PRAGMA journal_mode")
    if str(cursor.fetchone()[0]).lower() == "wal":
        return
    for attempt in range(50):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.1)


def _sqlite_begin(conn: Connection) -> None:
    options = conn.get_execution_options()
    if options.get("keybot_single_statement"):
        return
    begin = "BEGIN IMMEDIATE" if options.get("keybot_write") else "BEGIN"
    adapted = cast(AdaptedConnection, conn.connection.dbapi_connection)
    adapted.run_async(lambda driver: driver.execute_fetchall(begin))  # one trip to the driver thread


def _sqlite_reset(dbapi_connection: Any, record: ConnectionPoolEntry, state: PoolResetState) -> None:
    # replaces the pool's unconditional rollback-on-return, a round trip to the driver's thread
    driver = record.driver_connection
    if (
        state.asyncio_safe
        and not state.transaction_was_reset
        and driver is not None
        and driver.in_transaction
    ):
        dbapi_connection.rollback()

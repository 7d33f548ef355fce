"""Engine factory: SQLite (aiosqlite) tuned for one writer at a time, PostgreSQL (asyncpg) pooled.

On SQLite, keybot issues BEGIN itself (SQLAlchemy's documented aiosqlite recipe): a connection
whose execution options carry ``keybot_write=True`` starts with ``BEGIN IMMEDIATE``, taking the write lock
before its first read, so a read-then-write transaction never fails with SQLITE_BUSY_SNAPSHOT;
``keybot_single_statement=True`` runs without BEGIN (one statement is atomic on its own: the hot verify path);
anything else starts with a plain, deferred ``BEGIN`` (a consistent snapshot for reads).
"""

from typing import Any

from sqlalchemy import Connection, event, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=5000",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=NORMAL",
)


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An AsyncEngine for ``sqlite+aiosqlite://`` or ``postgresql+asyncpg://`` URLs.

    SQL parameters are hidden from exception messages (``hide_parameters``), so no hash or other
    value bound to a statement ever reaches a log line through an error.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = create_async_engine(parsed, echo=echo, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        return create_async_engine(
            parsed,
            echo=echo,
            hide_parameters=True,
            pool_size=10,
            max_overflow=10,
            pool_pre_ping=True,
            pool_timeout=10,
            connect_args={"timeout": 5},
        )
    raise ValueError(f"unsupported database {backend!r}: use sqlite+aiosqlite:// or postgresql+asyncpg://")


def writer(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` whose transactions take the write lock up front (BEGIN IMMEDIATE on SQLite)."""
    return engine.execution_options(keybot_write=True)


def single_statement(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` for one-statement work: no BEGIN/ROLLBACK round trips around the statement."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(keybot_single_statement=True)
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _sqlite_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    dbapi_connection.isolation_level = None  # the driver no longer emits BEGIN; _sqlite_begin does
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    options = conn.get_execution_options()
    if options.get("keybot_write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif not options.get("keybot_single_statement"):
        conn.exec_driver_sql("BEGIN")

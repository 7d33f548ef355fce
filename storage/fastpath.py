"""Statements compiled once per store and run on the raw driver connection: the hot reads' path.

``DriverStatement`` skips SQLAlchemy's execution layer and decodes rows itself; ``SqliteReader`` runs
such statements synchronously on SQLite, ``PgReader`` on asyncpg connections of their own on
PostgreSQL; ``record_maker`` builds frozen records from rows at half the cost of calling the class.
``storage.store.SqlStore`` uses them for ``key_listing``, ``verify_record``, ``key_state`` and
``touch_key``.
"""

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import Dialect, Select
from sqlalchemy.sql.dml import Update
from sqlalchemy.types import TypeEngine

from storage.tables import UTCDateTime

R = TypeVar("R")
Row = Sequence[Any]
Processor = Callable[[Any], Any]


def _result_processor(type_: TypeEngine[Any], dialect: Dialect) -> Processor | None:
    """How a column's raw driver value becomes its Python value.

    ``UTCDateTime`` skips SQLAlchemy's generic processing, most of a page's decoding time: asyncpg
    already returns aware UTC datetimes for ``timestamptz``, and SQLite's text
    (``2026-01-02 03:04:05.678901``, as SQLAlchemy writes it) parses in one ``fromisoformat``."""
    generic = type_.dialect_impl(dialect).result_processor(dialect, None)
    if not isinstance(type_, UTCDateTime):
        return generic
    if dialect.name == "postgresql":
        return None
    assert generic is not None
    fromisoformat = datetime.fromisoformat

    def sqlite_utc(value: Any) -> Any:
        try:
            decoded = fromisoformat(value + "+00:00")
        except (TypeError, ValueError):
            decoded = None
        if decoded is None or decoded.tzinfo is None:  # not the text SQLAlchemy writes: it decides
            return generic(value)
        return decoded

    return sqlite_utc


class DriverStatement:
    """A Core statement compiled once for one dialect and run directly on the driver connection.

    The hot paths take it: one driver call per statement, where SQLAlchemy's cursor adds three
    more trips to aiosqlite's thread, with SQLAlchemy's own type processing for values and rows."""

    def __init__(self, stmt: Select[Any] | Update, dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        self._postgres = dialect.name == "postgresql"
        self._binds = [
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in compiled.positiontup or ()
        ]
        # Values SQLAlchemy fills in itself, such as the OFFSET 0 that SQLite renders with a LIMIT.
        self._defaults = {name: bind.value for name, bind in compiled.binds.items() if bind.value is not None}
        columns = stmt.selected_columns if isinstance(stmt, Select) else ()
        processors = [_result_processor(column.type, dialect) for column in columns]
        self._decode = [(i, p) for i, p in enumerate(processors) if p is not None]

    def args(self, params: dict[str, Any]) -> list[Any]:
        values = {**self._defaults, **params}
        return [values[name] if bind is None else bind(values[name]) for name, bind in self._binds]

    def rows(self, raw: Sequence[Row]) -> list[Row]:
        """Decoded rows (the raw ones themselves when no column needs decoding); NULL stays None."""
        decode = self._decode
        if not decode:
            return list(raw)
        rows: list[Row] = []
        for row in raw:
            values = list(row)
            for i, processor in decode:
                value = values[i]
                if value is not None:
                    values[i] = processor(value)
            rows.append(values)
        return rows

    async def fetch(self, driver: Any, params: dict[str, Any]) -> list[Row]:
        """Run on ``driver`` (an asyncpg or aiosqlite connection) and return the decoded rows."""
        args = self.args(params)
        if self._postgres:
            return self.rows(await driver.fetch(self.sql, *args))
        return self.rows(await driver.execute_fetchall(self.sql, args))


def record_maker(cls: type[R], *, start: int = 0) -> Callable[[Row], R]:
    """A constructor of the frozen, slotted dataclass ``cls`` from the columns of a row that hold its
    fields in order, from ``start`` on.

    Equal to ``cls(*row[start:])`` at half its cost: a frozen dataclass's ``__init__`` sets each field
    through ``object.__setattr__``, while this function (generated once, as ``dataclasses`` generates
    ``__init__``) sets each slot through its descriptor, with no defaults to apply and no
    ``__post_init__`` to call (``cls`` must have none)."""
    names = [field.name for field in fields(cls)]  # type: ignore[arg-type]
    assert not hasattr(cls, "__post_init__"), cls
    setters = {f"set_{i}": getattr(cls, name).__set__ for i, name in enumerate(names)}
    body = "".join(f"    set_{i}(record, row[{start + i}])\n" for i in range(len(names)))
    source = f"def make(row):\n    record = new(cls)\n{body}    return record\n"
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls, **setters}
    exec(source, namespace)  # the source above: only the dataclass's field count goes into it
    make: Callable[[Row], R] = namespace["make"]
    return make


class SqliteReader:
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
        self._opened = 0  # connections opened so far
        self._version: tuple[int, int] | None = None  # read in this turn of the event loop (see ``version``)…
        self._version_loop: asyncio.AbstractEventLoop | None = None  # …of this loop
        self.statements = 0  # run so far

    def fetch(self, stmt: DriverStatement, params: dict[str, Any]) -> list[Row] | None:
        conn = self._conn or self._open()
        self.statements += 1
        try:
            raw = conn.execute(stmt.sql, stmt.args(params)).fetchall()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return None
            self.close()
            raise
        return stmt.rows(raw)

    def version(self) -> tuple[int, int] | None:
        """SQLite's ``PRAGMA data_version`` on this connection, with how many connections this reader has
        opened (a reopened connection counts its versions afresh): it changes whenever another
        connection, of this process or another, has committed since it was last read (this connection
        writes nothing); None when SQLite says busy.

        Read once per turn of the event loop (a burst of requests shares it): every callback that runs
        before the turn ends was scheduled before the version was read, so its request arrived before
        that moment, and a commit it could have seen the end of (its own, or one it was told of) had
        finished by then too."""
        loop = asyncio.get_running_loop()
        if self._version is not None and self._version_loop is loop:
            return self._version
        conn = self._conn or self._open()
        self.statements += 1
        try:
            row = conn.execute("PRAGMA data_version").fetchone()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return None
            self.close()
            raise
        self._version, self._version_loop = (self._opened, int(row[0])), loop
        loop.call_soon(self._turn_ended)
        return self._version

    def _turn_ended(self) -> None:
        self._version = None

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=0")
        conn.execute("PRAGMA query_only=ON")
        self._conn = conn
        self._opened += 1
        return conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class UnchangedReads:
    """Results of reads, kept for as long as the database has not changed since they were read.

    ``version`` is ``SqliteReader.version()`` read *before* the read whose result is kept: a commit
    after that moment changes the version, so a result is never served after any commit, whichever
    connection or process made it. A new version drops every result; beyond ``size`` results the
    oldest goes (with a size of 0, nothing is kept)."""

    def __init__(self, *, size: int) -> None:
        self._size = size
        self._version: Hashable = None
        self._results: dict[Hashable, Any] = {}

    def get(self, version: Hashable, key: Hashable) -> Any:
        """The result kept for ``key`` at ``version``, or None."""
        if version != self._version:
            self._results.clear()
            self._version = version
            return None
        return self._results.get(key)

    def put(self, version: Hashable, key: Hashable, result: Any) -> None:
        if version != self._version or not self._size:  # read before a change another caller has seen since
            return
        if len(self._results) >= self._size:
            del self._results[next(iter(self._results))]
        self._results[key] = result

    def __len__(self) -> int:
        return len(self._results)


# A connection the server or the network dropped: the statement never ran, or ran read-only. The
# client errors are what asyncpg raises on a connection whose server said "terminating" while it was
# idle, before the socket's end arrived ("another operation is in progress", "connection is closed").
_DROPPED = (
    asyncpg.PostgresConnectionError,  # ConnectionDoesNotExistError among them
    asyncpg.exceptions.AdminShutdownError,  # terminated: pg_terminate_backend, a restart
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,  # still starting up
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    ConnectionError,
)


class PgReader:
    """Hot statements on PostgreSQL (the hot reads, and verify's ``last_used_at`` UPDATE, which is as
    safe to repeat) on asyncpg connections of their own: one round trip per statement, autocommitted,
    without the engine's checkout (a greenlet, pool events, a pre-ping round trip) and without
    asyncpg's pool either (its release runs a reset and a task per statement, ~40 µs; nothing here
    changes session state or leaves a transaction open).

    Connections open as load needs them, at most ``size`` at once; an idle one is reused, the most
    recently used first. Instead of pinging before each use, a statement that finds its connection
    dropped (the server restarted, an administrator terminated it, the network cut it) is run once
    more on a new connection, after the idle ones are closed too (a restart drops them all): reads are
    safe to repeat, and a restart costs no user a failed request. A connection that saw any other
    error or a cancellation is closed rather than reused. ``open_connection``: ``asyncpg.connect``, or
    a stand-in taking the same arguments."""

    def __init__(
        self,
        connect: dict[str, Any],
        *,
        size: int,
        open_connection: Callable[..., Awaitable[Any]] = asyncpg.connect,
    ) -> None:
        self._connect = connect
        self._open = open_connection
        self._slots = asyncio.Semaphore(size)
        self._idle: list[Any] = []  # asyncpg connections not in use, the most recently used last
        self._closed = False

    async def fetch(self, stmt: DriverStatement, params: dict[str, Any]) -> list[Row]:
        try:
            return await self._fetch_once(stmt, params)
        except _DROPPED:
            self._close_idle()
            return await self._fetch_once(stmt, params)

    async def _fetch_once(self, stmt: DriverStatement, params: dict[str, Any]) -> list[Row]:
        async with self._slots:
            conn = self._idle_connection() or await self._open(**self._connect)
            try:
                rows = await stmt.fetch(conn, params)
            except BaseException:
                conn.terminate()
                raise
            if self._closed:
                conn.terminate()
            else:
                self._idle.append(conn)
            return rows

    def _idle_connection(self) -> Any:
        while self._idle:
            conn = self._idle.pop()
            if not conn.is_closed():
                return conn
        return None

    def _close_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.terminate()

    async def close(self) -> None:
        """Close the idle connections (each in use is closed when its statement ends)."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            try:
                await asyncio.wait_for(conn.close(), timeout=5)
            except Exception:
                conn.terminate()

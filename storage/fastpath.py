"""Statements compiled once per store and run on the raw driver connection: the hot reads' path.

``DriverStatement`` skips SQLAlchemy's execution layer; ``SqliteReader`` runs such statements
synchronously on SQLite. ``storage.store.SqlStore`` uses both for ``key_listing``, ``verify_record``,
``key_state`` and ``touch_key``.
"""

import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Dialect, Select
from sqlalchemy.sql.dml import Update


class DriverStatement:
    """A Core statement compiled once for one dialect and run directly on the driver connection.

    The verify path takes it: one driver call per statement, where SQLAlchemy's cursor adds three
    more trips to aiosqlite's thread, with SQLAlchemy's own type processing for values and rows.
    """

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

    async def fetch(self, driver: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run on ``driver`` (an asyncpg or aiosqlite connection) and return the processed rows."""
        args = self.args(params)
        if self._postgres:
            return self.rows(await driver.fetch(self.sql, *args))
        return self.rows(await driver.execute_fetchall(self.sql, args))


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

    def fetch(self, stmt: DriverStatement, params: dict[str, Any]) -> list[tuple[Any, ...]] | None:
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

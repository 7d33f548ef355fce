"""``storage.fastpath``: rows decoded without SQLAlchemy's layer, records built without ``__init__``, and
PostgreSQL's hot reads on a pool of their own that survives dropped connections.

The hot reads themselves (pages, counts, verify records) are tested through the store in
test_storage_listing.py, test_storage_key_counts.py and test_storage_errors.py."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.dialects.sqlite.aiosqlite import dialect as aiosqlite_dialect

from bot.domain.model import KeyRecord, KeyState
from storage.fastpath import DriverStatement, PgReader, _result_processor, record_maker
from storage.statements import KEY_STATE
from storage.tables import UTCDateTime
from tests.fakes.pgpool import FakePgServer

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
KEY = KeyRecord(
    id=7,
    project_id=3,
    key_id="AbCdEfGhIj",
    name="deploy",
    masked="kb_AbCdEfGhIj_…wxyz",
    created_by="U1",
    created_at=T0,
    last_used_at=None,
    expires_at=T0 + timedelta(days=30),
    disabled_at=T0,
    note="ci",
    changed_at=T0,
    changed_by="U2",
    retiring_at=None,
)


def test_a_record_maker_builds_the_record_the_class_builds_from_the_same_columns() -> None:
    fields = [getattr(KEY, name) for name in KeyRecord.__dataclass_fields__]
    make = record_maker(KeyRecord, start=2)

    made = make(["scope", 57, *fields])

    assert made == KEY and made is not KEY
    assert type(made) is KeyRecord and hash(made) == hash(KEY)
    with pytest.raises(AttributeError):
        made.name = "other"  # type: ignore[misc]  # still frozen


@pytest.mark.parametrize(
    "stored",
    [
        "2026-01-02 03:04:05.678901",  # as SQLAlchemy writes it
        "2026-01-02 03:04:05.000000",
        "2026-01-02 03:04:05",
        "2026-01-02",
        "2026-01-02T03:04:05.678901",
    ],
)
def test_sqlite_timestamps_decode_as_sqlalchemy_decodes_them_as_aware_utc(stored: str) -> None:
    dialect = aiosqlite_dialect()
    generic = UTCDateTime().dialect_impl(dialect).result_processor(dialect, None)
    fast = _result_processor(UTCDateTime(), dialect)
    assert generic is not None and fast is not None

    decoded = fast(stored)

    assert decoded == generic(stored)
    assert decoded.tzinfo is UTC


def test_postgresql_timestamps_need_no_decoding_and_other_columns_keep_sqlalchemys() -> None:
    """asyncpg hands ``timestamptz`` back as aware UTC datetimes (test_storage_listing.py checks it
    on the server)."""
    dialect = asyncpg_dialect()
    assert _result_processor(UTCDateTime(), dialect) is None
    assert DriverStatement(KEY_STATE, dialect).rows([("K1", None, T0, None)]) == [("K1", None, T0, None)]


def _key_state_reader(server: FakePgServer, *, size: int = 3) -> tuple[PgReader, DriverStatement]:
    reader = PgReader({"host": "db"}, size=size, open_connection=server.connect)
    return reader, DriverStatement(KEY_STATE, asyncpg_dialect())


async def _key_state(reader: PgReader, stmt: DriverStatement) -> list[Any]:
    return [KeyState(*row) for row in await reader.fetch(stmt, {"row_id": 7, "key_id": "K1"})]


ROW = ("K1", None, None, None)


async def test_a_hot_read_on_a_dropped_connection_runs_once_more_on_a_new_one() -> None:
    server = FakePgServer(rows=[ROW], failures=[asyncpg.exceptions.AdminShutdownError()])
    reader, stmt = _key_state_reader(server)

    assert await _key_state(reader, stmt) == [KeyState(*ROW)]

    assert [number for number, _, _ in server.statements] == [1, 2]
    assert [c.terminated for c in server.connections] == [True, False]
    assert server.statements[0][1:] == server.statements[1][1:] == (stmt.sql, ("K1", 7))


async def test_after_a_drop_the_idle_connections_are_replaced_too() -> None:
    """A restart drops them all: none is tried only to fail the next request."""
    server = FakePgServer(rows=[ROW])
    reader, stmt = _key_state_reader(server)
    await asyncio.gather(*(_key_state(reader, stmt) for _ in range(3)))  # three connections, idle now
    assert len(server.connections) == 3
    server.failures = [asyncpg.exceptions.ConnectionDoesNotExistError()]

    assert await _key_state(reader, stmt) == [KeyState(*ROW)]
    assert await _key_state(reader, stmt) == [KeyState(*ROW)]

    assert [c.terminated for c in server.connections] == [True, True, True, False]
    assert [number for number, _, _ in server.statements[3:]] == [3, 4, 4]


@pytest.mark.parametrize(
    "drop",
    [
        asyncpg.exceptions.ConnectionDoesNotExistError(),
        ConnectionResetError(),
        asyncpg.exceptions.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
    ],
)
async def test_a_connection_dropped_twice_in_a_row_is_not_tried_a_third_time(drop: BaseException) -> None:
    server = FakePgServer(failures=[drop, drop])
    reader, stmt = _key_state_reader(server)

    with pytest.raises(type(drop)):
        await _key_state(reader, stmt)

    assert len(server.statements) == 2
    assert all(c.terminated for c in server.connections)


@pytest.mark.parametrize("failure", [TimeoutError(), asyncpg.exceptions.QueryCanceledError()])
async def test_a_read_that_fails_otherwise_is_not_repeated_and_its_connection_is_not_reused(
    failure: BaseException,
) -> None:
    server = FakePgServer(rows=[ROW], failures=[failure])
    reader, stmt = _key_state_reader(server)

    with pytest.raises(type(failure)):
        await _key_state(reader, stmt)
    assert await _key_state(reader, stmt) == [KeyState(*ROW)]

    assert [number for number, _, _ in server.statements] == [1, 2]
    assert [c.terminated for c in server.connections] == [True, False]


async def test_a_connection_the_server_closed_while_idle_is_not_used_again() -> None:
    server = FakePgServer(rows=[ROW])
    reader, stmt = _key_state_reader(server)
    await _key_state(reader, stmt)
    server.restart()

    assert await _key_state(reader, stmt) == [KeyState(*ROW)]

    assert [number for number, _, _ in server.statements] == [1, 2]


async def test_connections_open_as_needed_up_to_the_size_and_are_reused() -> None:
    server = FakePgServer(rows=[ROW])
    reader, stmt = _key_state_reader(server, size=2)
    assert server.connections == []  # nothing opened before the first read

    await asyncio.gather(*(_key_state(reader, stmt) for _ in range(5)))
    await _key_state(reader, stmt)

    assert len(server.connections) == 2 and server.connect_args == {"host": "db"}
    assert len(server.statements) == 6


async def test_closing_the_reader_closes_its_connections() -> None:
    server = FakePgServer(rows=[ROW])
    reader, stmt = _key_state_reader(server)
    await _key_state(reader, stmt)

    await reader.close()

    assert [c.terminated for c in server.connections] == [True]

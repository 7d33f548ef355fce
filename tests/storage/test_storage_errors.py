"""Database failures become the domain's ``Unavailable`` and ``Conflict``, and show no SQL values."""

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from bot.domain.errors import Conflict, Unavailable
from storage import UNAVAILABLE, SqlStore, make_engine, open_store, upgrade
from tests.storage.helpers import T0, TEAM, World, new_key, reset_postgres


async def _assert_every_entry_point_is_unavailable(store: SqlStore) -> None:
    with pytest.raises(Unavailable) as raised:
        async with store.transaction() as tx:
            await tx.scope(team_id=TEAM, user_id="U1", project_name=None)
    assert str(raised.value) == UNAVAILABLE
    with pytest.raises(Unavailable):
        async with store.read():
            pass
    with pytest.raises(Unavailable):
        await store.verify_record("K123")
    with pytest.raises(Unavailable):
        await store.claim_notifications(limit=1, now=T0, lease_seconds=1)


async def test_an_unreachable_postgresql_server_is_unavailable() -> None:
    store = SqlStore(make_engine("postgresql+asyncpg://postgres@127.0.0.1:1/keybot"))
    try:
        await _assert_every_entry_point_is_unavailable(store)
    finally:
        await store.close()
    with pytest.raises(Unavailable):
        await open_store("postgresql+asyncpg://postgres@127.0.0.1:1/keybot")


async def test_an_sqlite_file_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'keybot.db'}"
    store = SqlStore(make_engine(url))
    try:
        await _assert_every_entry_point_is_unavailable(store)
    finally:
        await store.close()
    with pytest.raises(Unavailable):
        await open_store(url)


async def test_a_postgresql_connection_killed_mid_transaction_is_unavailable(pg_url: str) -> None:
    engine = make_engine(pg_url)
    await reset_postgres(engine)
    await upgrade(engine)
    store = SqlStore(engine)
    try:
        with pytest.raises(Unavailable):
            async with store.transaction() as tx:
                await tx.ensure_org(team_id=TEAM, name="Acme", at=T0)
                async with engine.connect() as killer:
                    await killer.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        )
                    )
                await tx.scope(team_id=TEAM, user_id="U1", project_name=None)
        async with engine.connect() as killer:
            await killer.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        assert await store.verify_record("K1") is None  # the pool replaces dead connections
        async with store.read() as tx:
            assert await tx.scope(team_id=TEAM, user_id="U1", project_name=None) is None
    finally:
        await store.close()


async def test_a_conflict_carries_no_sql_and_no_database_error(store: SqlStore, world: World) -> None:
    record = new_key(world.project.id, "deploy")
    async with store.transaction() as tx:
        await tx.add_key(record)
    with pytest.raises(Conflict) as raised:
        async with store.transaction() as tx:
            await tx.add_key(new_key(world.project.id, "DEPLOY"))
    assert str(raised.value) == "a key named `DEPLOY` already exists"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


async def test_database_errors_never_show_the_values_bound_to_a_statement(
    store: SqlStore, world: World
) -> None:
    record = new_key(world.project.id + 1000, "deploy")  # no such project: a foreign key violation
    with pytest.raises(IntegrityError) as raised:
        async with store.transaction() as tx:
            await tx.add_key(record)
    assert record.secret_hash not in str(raised.value)
    assert record.key_id not in str(raised.value)

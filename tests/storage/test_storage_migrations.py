"""Migrations, the engine's connection settings and timestamp handling, on SQLite and PostgreSQL."""

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, func, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import (
    SqlStore,
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    metadata,
    upgrade,
)
from storage.tables import api_keys, orgs, outbox
from tests.storage.helpers import T0, TEAM, World, notice


def _schema_diff(conn: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(conn), metadata))


async def test_a_new_database_has_no_revision(engine: AsyncEngine) -> None:
    assert await current_revision(engine) is None


async def test_migrations_apply_twice_and_leave_the_database_at_head(engine: AsyncEngine) -> None:
    await upgrade(engine)
    await upgrade(engine)
    assert await current_revision(engine) == head_revision() is not None


async def test_instances_migrating_a_new_database_together_all_succeed(engine: AsyncEngine, url: str) -> None:
    others = [make_engine(url) for _ in range(3)]
    try:
        await asyncio.gather(upgrade(engine), *(upgrade(other) for other in others))
    finally:
        for other in others:
            await other.dispose()
    assert await current_revision(engine) == head_revision()


async def test_migrated_schema_matches_the_table_definitions(engine: AsyncEngine) -> None:
    await upgrade(engine)
    async with engine.connect() as conn:
        assert await conn.run_sync(_schema_diff) == []


async def test_downgrade_to_base_removes_everything_and_upgrade_restores_it(
    engine: AsyncEngine,
) -> None:
    await upgrade(engine)
    await downgrade(engine, "base")
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    assert set(tables) <= {"alembic_version"}
    await upgrade(engine)
    assert await current_revision(engine) == head_revision()


_OUTBOX_0001 = {
    "id",
    "user_id",
    "text",
    "created_at",
    "attempts",
    "next_attempt_at",
    "claimed_until",
    "sent_at",
    "last_error",
}


def _outbox_shape(conn: Connection) -> tuple[set[str], set[str]]:
    inspector = inspect(conn)
    columns = {column["name"] for column in inspector.get_columns("outbox")}
    indexes = {str(index["name"]) for index in inspector.get_indexes("outbox")}
    return columns, indexes


async def test_migration_0002_adds_the_notice_columns_and_its_downgrade_removes_them(
    engine: AsyncEngine,
) -> None:
    await upgrade(engine, "0001")
    assert await current_revision(engine) == "0001"
    async with engine.begin() as conn:
        assert await conn.run_sync(_outbox_shape) == (_OUTBOX_0001, {"ix_outbox_sent_at_next_attempt_at"})
        await conn.execute(
            outbox.insert().values(user_id="U1", text="queued as text", created_at=T0, next_attempt_at=T0)
        )

    await upgrade(engine, "0002")
    async with engine.connect() as conn:
        columns_0002, _ = await conn.run_sync(_outbox_shape)
    assert columns_0002 == _OUTBOX_0001 | {"notice", "team_id"}
    await upgrade(engine)
    assert await current_revision(engine) == "0008" == head_revision()
    async with engine.connect() as conn:
        columns, _ = await conn.run_sync(_outbox_shape)
        audit_columns = {c["name"] for c in await conn.run_sync(lambda c: inspect(c).get_columns("audit_events"))}
        assert await conn.run_sync(_schema_diff) == []
    assert columns == columns_0002 | {"enterprise_id", "origin", "dead_at"}
    assert "origin" in audit_columns
    [old] = await SqlStore(engine).claim_notifications(limit=9, now=T0, lease_seconds=1)
    assert (old.user_id, old.notice, old.text, old.attempts) == ("U1", None, "queued as text", 1)

    await downgrade(engine, "0001")
    assert await current_revision(engine) == "0001"
    async with engine.begin() as conn:
        shape = await conn.run_sync(_outbox_shape)
        kept = (await conn.execute(select(outbox.c.user_id, outbox.c.text))).all()
        await conn.execute(
            outbox.insert().values(user_id="U2", text="later", created_at=T0, next_attempt_at=T0)
        )
        new_id = (await conn.execute(select(func.max(outbox.c.id)))).scalar_one()
        if engine.dialect.name == "sqlite":  # batch mode rebuilt the table: AUTOINCREMENT must survive
            ddl = (
                await conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'outbox'")
            ).scalar_one()
            assert "AUTOINCREMENT" in ddl
    assert shape == (_OUTBOX_0001, {"ix_outbox_sent_at_next_attempt_at"})
    assert kept == [("U1", "queued as text")]
    assert new_id == old.id + 1

    await upgrade(engine)
    assert await current_revision(engine) == head_revision()
    async with engine.connect() as conn:
        assert await conn.run_sync(_schema_diff) == []


async def test_timestamps_read_back_as_aware_utc(store: SqlStore) -> None:
    paris = timezone(timedelta(hours=1))
    async with store.transaction() as tx:
        org = await tx.ensure_org(team_id=TEAM, name="Acme", at=T0.astimezone(paris))
        await tx.add_project(org_id=org.id, name="Web", created_by="U1", at=T0.astimezone(paris))
    async with store.engine.connect() as conn:
        created = (await conn.execute(text("SELECT created_at FROM projects"))).scalar_one()
        org_created = (await conn.execute(select(orgs.c.created_at))).scalar_one()
    assert org_created == T0
    assert org_created.tzinfo is not None and org_created.utcoffset() == timedelta(0)
    if isinstance(created, datetime):  # PostgreSQL: a timestamptz; SQLite: UTC text without offset
        assert created == T0
    else:
        assert created.startswith("2025-01-15 12:00:00")


async def test_naive_timestamps_are_refused(store: SqlStore, world: World) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        async with store.transaction() as tx:
            await tx.notify(notice(1, at=datetime(2025, 1, 1)))


async def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path: object) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/pragmas.db")
    try:
        async with engine.connect() as conn:
            pragmas = {
                name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar_one()
                for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
            }
    finally:
        await engine.dispose()
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 5000, "synchronous": 1}


def _shape(table: object) -> dict[str, tuple[str, bool]]:
    columns = table.columns
    return {c.name: (type(c.type).__name__, bool(c.nullable)) for c in columns}


def test_the_slack_tables_are_exactly_those_slack_sdks_stores_use() -> None:
    from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
    from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
    from sqlalchemy import MetaData

    from storage.tables import slack_bots, slack_installations, slack_oauth_states

    theirs = MetaData()
    store = AsyncSQLAlchemyInstallationStore
    assert _shape(slack_installations) == _shape(store.build_installations_table(theirs, "slack_installations"))
    assert _shape(slack_bots) == _shape(store.build_bots_table(theirs, "slack_bots"))
    states = AsyncSQLAlchemyOAuthStateStore.build_oauth_states_table(theirs, "slack_oauth_states")
    assert _shape(slack_oauth_states) == _shape(states)


def _project_columns(conn: Connection) -> set[str]:
    return {column["name"] for column in inspect(conn).get_columns("projects")}


async def test_migration_0008_counts_the_keys_already_there_and_its_downgrade_removes_the_count(
    engine: AsyncEngine,
) -> None:
    await upgrade(engine, "0007")
    key = {"key_id": "K1", "masked": "kb_K1_…0001", "secret_hash": "h", "created_by": "U1", "created_at": T0}
    async with engine.begin() as conn:
        org_id = (await conn.execute(orgs.insert().values(team_id=TEAM, name="Acme", created_at=T0))).inserted_primary_key[0]
        web, api = [
            (await conn.execute(text(
                "INSERT INTO projects (org_id, name, name_lower, created_by, created_at) "
                "VALUES (:org, :name, :name, 'U1', :at) RETURNING id"
            ), {"org": org_id, "name": name, "at": T0})).scalar_one()
            for name in ("web", "api")
        ]
        for n in range(3):
            await conn.execute(api_keys.insert().values(
                project_id=web, name=f"k{n}", name_lower=f"k{n}", **{**key, "key_id": f"K{n}"}
            ))

    await upgrade(engine, "0008")
    async with engine.begin() as conn:
        counts = dict((await conn.execute(text("SELECT name, key_count FROM projects"))).all())
        await conn.execute(api_keys.insert().values(project_id=api, name="a", name_lower="a", **{**key, "key_id": "KA"}))
        after_insert = dict((await conn.execute(text("SELECT name, key_count FROM projects"))).all())
    assert counts == {"web": 3, "api": 0} and after_insert == {"web": 3, "api": 1}

    await downgrade(engine, "0007")
    async with engine.begin() as conn:
        assert "key_count" not in await conn.run_sync(_project_columns)
        await conn.execute(api_keys.insert().values(project_id=api, name="b", name_lower="b", **{**key, "key_id": "KB"}))
    await upgrade(engine)
    async with engine.connect() as conn:
        assert dict((await conn.execute(text("SELECT name, key_count FROM projects"))).all()) == {"web": 3, "api": 2}
        assert await conn.run_sync(_schema_diff) == []

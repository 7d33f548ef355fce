"""Fixtures for the storage contract tests: every test runs on SQLite and on PostgreSQL.

PostgreSQL: one fresh, randomly named database per test module on the server at
``KEYBOT_TEST_PG_URL`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``), with the
schema dropped and migrated again before each test. An unreachable server fails the tests.
"""

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.domain.roles import OrgRole
from storage import SqlStore, make_engine, upgrade
from tests.storage.helpers import OWNER, T0, TEAM, World, reset_postgres

PG_SERVER = os.environ.get("KEYBOT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


async def _admin(sql: str) -> None:
    engine = create_async_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(sql)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test module."""
    name = f"keybot_test_{secrets.token_hex(6)}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.fail(f"PostgreSQL at {PG_SERVER} is needed by the storage tests: {exc!r}")
    yield make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database URL of one backend, with nothing in it."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'keybot.db'}"
    pg: str = request.getfixturevalue("pg_url")
    return pg


@pytest.fixture
async def engine(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty, unmigrated database."""
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        await reset_postgres(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def store(engine: AsyncEngine) -> AsyncIterator[SqlStore]:
    """A store on a freshly migrated database."""
    await upgrade(engine)
    store = SqlStore(engine)
    yield store
    await store.close()


@pytest.fixture
async def world(store: SqlStore) -> World:
    """An org (team ``TEAM``) whose owner is ``OWNER``, with one project named ``Web``."""
    async with store.transaction() as tx:
        org = await tx.ensure_org(team_id=TEAM, name="Acme", at=T0)
        await tx.set_org_role(org_id=org.id, user_id=OWNER, role=OrgRole.OWNER)
        project = await tx.add_project(org_id=org.id, name="Web", created_by=OWNER, at=T0)
    return World(org=org, project=project)

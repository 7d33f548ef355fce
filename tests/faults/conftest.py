"""Fixtures of the fault tests: a Slack stand-in that can go down, HTTP sessions, databases.

PostgreSQL tests get a fresh database each (``tests.procs.fresh_postgres_database``); an unreachable
server fails them, it never skips them.
"""

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.faults.helpers import TEAM, SlackWithOutages
from tests.procs import PostgresUnreachable, fresh_postgres_database


@pytest.fixture
async def slack() -> AsyncIterator[SlackWithOutages]:
    async with SlackWithOutages(team_id=TEAM) as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        yield http


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    try:
        async with fresh_postgres_database() as url:
            yield url
    except PostgresUnreachable as err:
        pytest.fail(str(err))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'keybot.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url

"""A real keybot on a free port, a Slack Web API stand-in, and a driver speaking Slack's wire format."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.domain.hashing import HashParams
from bot.runtime import Runtime, build_runtime, utcnow
from bot.settings import Settings
from bot.shell.driver import Reply, SlackDriver
from bot.shell.fakeslack import FakeSlack

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM = "T0001"
OWNER = "UOWNER01"


class ShiftedClock:
    """The wall clock plus an offset the test sets: ``shift(timedelta(minutes=11))`` is eleven minutes
    from now for every part of keybot (services, verifier, outbox), until ``reset()``."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def shift(self, offset: timedelta) -> None:
        self.offset = offset

    def reset(self) -> None:
        self.offset = timedelta()


@dataclass
class Harness:
    runtime: Runtime
    clock: ShiftedClock
    slack: FakeSlack
    driver: SlackDriver
    base_url: str
    session: aiohttp.ClientSession
    db_path: Path

    async def cmd(self, user: str, text: str, *, team_id: str | None = None) -> Reply:
        return await self.driver.command(user, text, team_id=team_id)

    async def as_owner(self, text: str) -> Reply:
        return await self.cmd(OWNER, text)

    async def outbox_drained(self, timeout: float = 10.0) -> None:
        """Wait until every queued DM is marked sent; fail after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while await self.runtime.store.pending_notifications():
                await asyncio.sleep(0.02)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(team_id=TEAM) as fake:
        yield fake


def e2e_settings(slack: FakeSlack, db_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "slack_bot_token": "xoxb-test-token",
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": slack.api_url,
        "database_url": f"sqlite+aiosqlite:///{db_path}",
        "hash_params": HashParams.cheapest(),
        "dm_merge_seconds": 0,
        "host": "127.0.0.1",
        "port": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def e2e_overrides() -> dict[str, object]:
    """Settings a test module changes for its harness (override this fixture in the module)."""
    return {}


@pytest.fixture
async def harness(tmp_path: Path, slack: FakeSlack, e2e_overrides: dict[str, object]) -> AsyncIterator[Harness]:
    db_path = tmp_path / "keybot.db"
    clock = ShiftedClock()
    runtime = await build_runtime(e2e_settings(slack, db_path, **e2e_overrides), outbox_backoff=0.05, clock=clock)
    runner = web.AppRunner(runtime.web_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base_url = f"http://127.0.0.1:{port}"
    runtime.worker.start()
    await runtime.keybot.operators.bootstrap(team_id=TEAM, owner=OWNER, org_name="Acme")
    async with aiohttp.ClientSession() as session:
        driver = SlackDriver(events_url=f"{base_url}/slack/events", signing_secret=SIGNING_SECRET, slack=slack,
                             team_id=TEAM, session=session)
        yield Harness(runtime=runtime, clock=clock, slack=slack, driver=driver, base_url=base_url, session=session,
                      db_path=db_path)
    await runner.cleanup()
    await runtime.aclose()

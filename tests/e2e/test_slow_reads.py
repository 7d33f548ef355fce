"""Commands that only read are answered inline; one the database cannot answer before the ack budget
still acks in time, privately, and says so — over Slack's wire format."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.ports import Transaction, UnitOfWork
from bot.runtime import build_runtime
from bot.shell.driver import SlackDriver
from bot.shell.fakeslack import FakeSlack
from bot.slack.app import SLOW_READ
from storage import SqlStore
from tests.e2e.conftest import OWNER, SIGNING_SECRET, TEAM, e2e_settings


class GatedReads:
    """The store's unit of work, with reads held behind a gate the test opens."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.gate = asyncio.Event()
        self.gate.set()

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        return self.store.transaction()

    def read(self) -> AbstractAsyncContextManager[Transaction]:
        @asynccontextmanager
        async def held() -> AsyncIterator[Transaction]:
            await self.gate.wait()
            async with self.store.read() as tx:
                yield tx

        return held()


@pytest.fixture
async def gated(tmp_path: Path, slack: FakeSlack) -> AsyncIterator[tuple[SlackDriver, GatedReads]]:
    made: list[GatedReads] = []

    def wrap(store: SqlStore) -> UnitOfWork:
        made.append(GatedReads(store))
        return made[0]

    runtime = await build_runtime(e2e_settings(slack, tmp_path / "kb.db"), ack_budget=0.3, unit_of_work=wrap)
    runner = web.AppRunner(runtime.web_app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    await runtime.keybot.operators.bootstrap(team_id=TEAM, owner=OWNER, org_name="Acme")
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    async with aiohttp.ClientSession() as session:
        yield SlackDriver(events_url=url, signing_secret=SIGNING_SECRET, slack=slack, session=session), made[0]
    made[0].gate.set()
    await runner.cleanup()
    await runtime.aclose()


async def test_a_read_the_database_holds_past_the_budget_acks_in_time_and_says_so(
    gated: tuple[SlackDriver, GatedReads],
) -> None:
    driver, reads = gated
    reads.gate.clear()
    reply = await driver.command(OWNER, "whoami")
    assert reply.status == 200 and reply.message["response_type"] == "ephemeral"
    assert SLOW_READ in reply.text
    reads.gate.set()
    assert "You are <@" in (await driver.command(OWNER, "whoami")).text


async def test_a_read_in_time_is_answered_in_the_ack_itself(gated: tuple[SlackDriver, GatedReads]) -> None:
    driver, _ = gated
    reply = await driver.command(OWNER, "projects")
    assert reply.status == 200 and "no project yet" in reply.text.lower()

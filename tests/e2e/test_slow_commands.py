"""A command that cannot finish before Slack's 3-second ack deadline still answers, privately."""

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.domain.hashing import Hasher, HashParams
from bot.runtime import Runtime, build_runtime
from bot.shell.driver import SlackDriver
from bot.shell.fakeslack import FakeSlack
from tests.e2e.conftest import OWNER, SIGNING_SECRET, TEAM, e2e_settings

KEY_RE = re.compile(r"kb_[A-Za-z0-9]{10}_[A-Za-z0-9]{28}")


class GatedHasher(Hasher):
    """argon2 behind a gate the test opens, as under a burst of key creations: a hash cannot finish
    before ``gate`` is set, so a key creation outlasts any ack budget until then."""

    def __init__(self, params: HashParams) -> None:
        super().__init__(params)
        self.gate = asyncio.Event()

    async def hash(self, plaintext: str) -> str:
        await self.gate.wait()
        return await super().hash(plaintext)


@pytest.fixture
async def slow(tmp_path: Path, slack: FakeSlack) -> AsyncIterator[tuple[Runtime, SlackDriver, GatedHasher]]:
    hasher = GatedHasher(HashParams.cheapest())
    runtime = await build_runtime(e2e_settings(slack, tmp_path / "kb.db"), ack_budget=1.0, hasher=hasher)
    runner = web.AppRunner(runtime.web_app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    await runtime.keybot.operators.bootstrap(team_id=TEAM, owner=OWNER, org_name="Acme")
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    async with aiohttp.ClientSession() as session:
        driver = SlackDriver(events_url=url, signing_secret=SIGNING_SECRET, slack=slack, session=session)
        yield runtime, driver, hasher
    hasher.gate.set()  # let any late reply finish before shutdown
    await runner.cleanup()
    await runtime.aclose()


async def test_a_slow_create_acks_in_time_and_delivers_the_secret_once_through_the_response_url(
    slow: tuple[Runtime, SlackDriver, GatedHasher], slack: FakeSlack
) -> None:
    runtime, driver, hasher = slow
    reply = await driver.command(OWNER, "project create payments")
    assert reply.status == 200
    assert "Working on it" in reply.text
    assert not KEY_RE.search(reply.text)
    assert len(runtime.late_replies) == 1
    name = reply.response_url.rsplit("/", 1)[-1]
    assert slack.responses_to(name) == []
    hasher.gate.set()
    [late] = await slack.wait_for(lambda s: s.responses_to(name))
    assert late.body["response_type"] == "ephemeral"
    assert len(set(KEY_RE.findall(str(late.body)))) == 1
    assert "will not be shown again" in str(late.body)


async def test_a_fast_command_is_answered_in_the_ack_and_nothing_follows(
    slow: tuple[Runtime, SlackDriver, GatedHasher], slack: FakeSlack
) -> None:
    runtime, driver, _ = slow
    reply = await driver.command(OWNER, "whoami")
    assert "*owner* of the organization" in reply.text
    assert runtime.late_replies == set()  # no reply was left to send on the response_url
    assert slack.responses_to(reply.response_url.rsplit("/", 1)[-1]) == []

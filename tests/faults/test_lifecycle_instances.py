"""Two ``keybot serve`` processes on one PostgreSQL database, as behind a load balancer: disable, enable
and roll obey the revocation rule of DESIGN.md §1 in both directions (§5.1) — at once on the instance
that made the change, within 1 second on the other. B has the key cached (valid, or refused) before
each change, so only its re-check can make it see the change."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from bot.shell.driver import Reply, SlackDriver
from tests.faults.helpers import (
    KEY_RE,
    OWNER,
    SlackWithOutages,
    assert_private_and_clean,
    bootstrap,
    eventually,
    is_refusal,
)
from tests.procs import (
    SIGNING_SECRET,
    KeybotProcess,
    PostgresUnreachable,
    fresh_postgres_database,
    start_keybot,
)

pytestmark = [pytest.mark.postgres, pytest.mark.asyncio(loop_scope="module")]
POLL_EVERY = 0.02
TRIALS = 3


@dataclass
class Pair:
    a: KeybotProcess
    b: KeybotProcess
    via_a: SlackDriver
    session: aiohttp.ClientSession


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pair(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pair]:
    logs: Path = tmp_path_factory.mktemp("lifecycle-instances")
    async with contextlib.AsyncExitStack() as stack:
        try:
            url = await stack.enter_async_context(fresh_postgres_database())
        except PostgresUnreachable as err:
            pytest.fail(str(err))
        slack = await stack.enter_async_context(SlackWithOutages())
        session = await stack.enter_async_context(aiohttp.ClientSession())
        a = await start_keybot(database_url=url, slack_api_url=slack.api_url, log_path=logs / "a.log")
        stack.push_async_callback(a.kill)
        b = await start_keybot(database_url=url, slack_api_url=slack.api_url, log_path=logs / "b.log")
        stack.push_async_callback(b.kill)
        await bootstrap(url, owners=[OWNER])
        via_a = SlackDriver(events_url=a.events_url, signing_secret=SIGNING_SECRET, slack=slack, session=session)
        yield Pair(a=a, b=b, via_a=via_a, session=session)
        for proc in (a, b):
            code, log = await proc.stop()
            assert code == 0 and "Traceback" not in log, log


async def ok(reply: Reply) -> Reply:
    assert_private_and_clean(reply)
    assert not is_refusal(reply), reply.text
    return reply


async def new_key(pair: Pair, project: str, name: str) -> str:
    [secret] = set(KEY_RE.findall((await ok(await pair.via_a.command(OWNER, f"create {project} {name}"))).text))
    return secret


def answer_on(proc: KeybotProcess, pair: Pair, key: str, check: Callable[[dict[str, Any]], bool]) -> Callable[[], Awaitable[bool]]:
    async def answered() -> bool:
        return check(await proc.verify(pair.session, key))

    return answered


async def test_a_key_disabled_through_one_instance_is_refused_on_the_other_within_one_second(pair: Pair) -> None:
    await ok(await pair.via_a.command(OWNER, "project create delta"))
    for trial in range(TRIALS):
        key = await new_key(pair, "delta", f"off{trial}")
        assert (await pair.b.verify(pair.session, key))["valid"] is True  # cached on B
        await ok(await pair.via_a.command(OWNER, f"disable delta off{trial}"))
        # B may answer from its cache for a while, never past the bound: a deadline, not a stopwatch
        b_refuses = asyncio.create_task(
            eventually(answer_on(pair.b, pair, key, lambda v: v == {"valid": False, "code": "DISABLED"}), within=1.0, every=POLL_EVERY)
        )
        assert await pair.a.verify(pair.session, key) == {"valid": False, "code": "DISABLED"}  # at once
        await b_refuses


async def test_a_key_enabled_through_one_instance_verifies_on_the_other_within_one_second(pair: Pair) -> None:
    await ok(await pair.via_a.command(OWNER, "project create epsilon"))
    for trial in range(TRIALS):
        key = await new_key(pair, "epsilon", f"on{trial}")
        await ok(await pair.via_a.command(OWNER, f"disable epsilon on{trial}"))
        for _ in range(25):  # B refuses it many times (past any failure budget) and keeps that refusal cached
            assert await pair.b.verify(pair.session, key) == {"valid": False, "code": "DISABLED"}
        await ok(await pair.via_a.command(OWNER, f"enable epsilon on{trial}"))
        b_accepts = asyncio.create_task(
            eventually(answer_on(pair.b, pair, key, lambda v: v["valid"] is True), within=1.0, every=POLL_EVERY)
        )
        assert (await pair.a.verify(pair.session, key))["valid"] is True  # at once
        await b_accepts


async def test_a_key_rolled_through_one_instance_retires_its_old_secret_on_the_other_within_one_second(
    pair: Pair,
) -> None:
    await ok(await pair.via_a.command(OWNER, "project create zeta"))
    for trial in range(TRIALS):
        old = await new_key(pair, "zeta", f"roll{trial}")
        assert "retiring_at" not in await pair.b.verify(pair.session, old)  # cached on B as current
        [new] = set(KEY_RE.findall((await ok(await pair.via_a.command(OWNER, f"roll zeta roll{trial} grace 0"))).text))
        b_expires = asyncio.create_task(
            eventually(answer_on(pair.b, pair, old, lambda v: v == {"valid": False, "code": "EXPIRED"}), within=1.0, every=POLL_EVERY)
        )
        assert await pair.a.verify(pair.session, old) == {"valid": False, "code": "EXPIRED"}  # at once
        await b_expires
        assert (await pair.b.verify(pair.session, new))["valid"] is True

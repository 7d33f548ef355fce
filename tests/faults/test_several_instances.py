"""Two ``keybot serve`` processes on one PostgreSQL database, as behind a load balancer: a delete asked
through one is confirmed through the other, a deletion revokes the key on the other within 1 second
(DESIGN.md §1), and their two outbox workers send every DM exactly once."""

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from bot.shell.driver import Reply, SlackDriver
from bot.slack.codec import ActionId
from tests.faults.helpers import (
    KEY_RE,
    OWNER,
    SlackWithOutages,
    assert_private_and_clean,
    bootstrap,
    db_state,
    eventually,
    incomplete_keys,
    is_refusal,
    notice_lines,
)
from tests.procs import (
    SIGNING_SECRET,
    KeybotProcess,
    PostgresUnreachable,
    fresh_postgres_database,
    start_keybot,
)

pytestmark = [pytest.mark.postgres, pytest.mark.asyncio(loop_scope="module")]
SECOND_OWNER = "UOWNER02"
POLL_EVERY = 0.02


@dataclass
class Pair:
    a: KeybotProcess
    b: KeybotProcess
    via_a: SlackDriver
    via_b: SlackDriver
    slack: SlackWithOutages
    session: aiohttp.ClientSession
    url: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pair(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pair]:
    """Two instances started at the same moment on one fresh database (so they also race to migrate it)."""
    logs: Path = tmp_path_factory.mktemp("instances")
    async with contextlib.AsyncExitStack() as stack:
        try:
            url = await stack.enter_async_context(fresh_postgres_database())
        except PostgresUnreachable as err:
            pytest.fail(str(err))
        slack = await stack.enter_async_context(SlackWithOutages())
        session = await stack.enter_async_context(aiohttp.ClientSession())
        started = await asyncio.gather(
            *(
                start_keybot(
                    database_url=url,
                    slack_api_url=slack.api_url,
                    log_path=logs / f"{name}.log",
                    bot_token=f"xoxb-{name}",
                )
                for name in ("a", "b")
            ),
            return_exceptions=True,
        )
        for proc in started:
            if isinstance(proc, KeybotProcess):
                stack.push_async_callback(proc.kill)
        a, b = started
        assert isinstance(a, KeybotProcess) and isinstance(b, KeybotProcess), started
        await bootstrap(url, owners=[OWNER, SECOND_OWNER])

        def driver(proc: KeybotProcess) -> SlackDriver:
            return SlackDriver(
                events_url=proc.events_url, signing_secret=SIGNING_SECRET, slack=slack, session=session
            )

        yield Pair(a=a, b=b, via_a=driver(a), via_b=driver(b), slack=slack, session=session, url=url)

        for proc in (a, b):
            code, log = await proc.stop()
            assert code == 0 and "Traceback" not in log, log


async def ok(reply: Reply) -> Reply:
    assert_private_and_clean(reply)
    assert not is_refusal(reply), reply.text
    return reply


async def new_key(driver: SlackDriver, project: str, name: str) -> str:
    [secret] = set(KEY_RE.findall((await ok(await driver.command(OWNER, f"create {project} {name}"))).text))
    return secret


async def test_a_delete_requested_through_one_instance_can_be_confirmed_through_the_other(pair: Pair) -> None:
    await ok(await pair.via_a.command(OWNER, "project create alpha"))
    secret = await new_key(pair.via_a, "alpha", "deploy")
    assert (await pair.b.verify(pair.session, secret))["valid"] is True

    ask = await ok(await pair.via_a.command(OWNER, "delete alpha deploy"))
    stranger = await pair.via_b.click(SECOND_OWNER, ask.button(ActionId.DELETE_CONFIRM))
    done = await pair.via_b.click(OWNER, ask.button(ActionId.DELETE_CONFIRM))
    again = await pair.via_a.click(OWNER, ask.button(ActionId.DELETE_CONFIRM))

    assert is_refusal(stranger) and f"Only <@{OWNER}>" in stranger.text, stranger.text
    assert "Deleted key `deploy`" in (await ok(done)).text
    assert is_refusal(again) and "already used" in again.text, again.text
    for proc in (pair.a, pair.b):
        assert await proc.verify(pair.session, secret) == {"valid": False, "code": "NOT_FOUND"}
    state = await db_state(pair.url)
    assert "deploy" not in state.key_names("alpha")
    assert [a.action for a in state.audit if a.key_name == "deploy"] == ["key created", "key deleted"]


async def test_a_key_deleted_through_one_instance_stops_verifying_on_the_other_within_one_second(
    pair: Pair,
) -> None:
    await ok(await pair.via_a.command(OWNER, "project create beta"))
    for trial in range(5):
        secret = await new_key(pair.via_a, "beta", f"probe{trial}")
        assert (await pair.b.verify(pair.session, secret))["valid"] is True  # now cached on B
        ask = await ok(await pair.via_a.command(OWNER, f"delete beta probe{trial}"))

        async def b_refuses(secret: str = secret) -> bool:
            return (await pair.b.verify(pair.session, secret))["valid"] is False

        await ok(await pair.via_a.click(OWNER, ask.button(ActionId.DELETE_CONFIRM)))
        # B may answer from its cache for a while, never past the bound: a deadline, not a stopwatch
        b_revoked = asyncio.create_task(eventually(b_refuses, within=1.0, every=POLL_EVERY))
        assert await pair.a.verify(pair.session, secret) == {"valid": False, "code": "NOT_FOUND"}  # at once
        await b_revoked


async def test_two_instances_drain_the_outbox_without_sending_any_dm_twice(pair: Pair) -> None:
    await ok(await pair.via_b.command(OWNER, "project create gamma"))
    replies = await asyncio.gather(
        *(
            driver.ask(OWNER, f"create gamma k{n:02d}")
            for n in range(20)
            for driver in (pair.via_a, pair.via_b)
        )
    )
    created = [reply for reply in replies if KEY_RE.search(reply.text)]
    assert len(created) == 20  # each name once, through whichever instance won

    async def drained() -> bool:
        return (await pair.a.healthz(pair.session))[1]["outbox_pending"] == 0

    await eventually(drained, within=60, every=0.05)

    state = await db_state(pair.url)
    rows = [row for row in state.outbox if "`gamma`" in row.text]
    assert len(rows) == 21  # one per key, to the owner who did not create it
    assert {row.user_id for row in rows} == {SECOND_OWNER}
    assert all(row.sent_at is not None and row.attempts == 1 for row in rows)  # each row claimed once
    calls = [c for c in pair.slack.dm_calls() if "`gamma`" in str(c.args.get("text"))]
    sent = Counter(  # a DM may carry several notices: count each notice it delivered
        (str(c.args["channel"]), line)
        for c in calls
        if c.delivered
        for line in notice_lines(str(c.args["text"]))
        if "`gamma`" in line
    )
    assert sent == Counter((row.user_id, row.text) for row in rows)
    assert set(sent.values()) == {1}
    by_instance = Counter(c.token for c in calls)
    print(f"\nDMs sent by instance: {dict(by_instance)}")
    assert incomplete_keys(state, owners=[OWNER, SECOND_OWNER]) == []

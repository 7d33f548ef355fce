"""Slack's Web API failing — timeouts, 429 with Retry-After, 5xx, ``ok: false`` — never fails a key
operation, and every DM still arrives once Slack recovers, also when keybot restarts in between."""

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from bot.shell.driver import SlackDriver
from bot.shell.fakeslack import Hang, RateLimited, ServerError, SlackError
from bot.slack.codec import ActionId
from bot.slack.outbox import slack_client
from tests.faults.helpers import (
    KEY_RE,
    OWNER,
    SettableClock,
    SlackWithOutages,
    assert_private_and_clean,
    bootstrap,
    db_state,
    eventually,
    in_process_keybot,
    incomplete_keys,
    is_refusal,
    notice_lines,
)
from tests.procs import SIGNING_SECRET, start_keybot

SECOND_OWNER = "UOWNER02"
MEMBER = "UMEMBER1"


async def test_key_operations_succeed_while_slack_fails_and_every_dm_arrives_once_it_recovers(
    tmp_path: Path, slack: SlackWithOutages, session: aiohttp.ClientSession
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keybot.db'}"
    await bootstrap(url, owners=[OWNER, SECOND_OWNER])  # OWNER acts; SECOND_OWNER and MEMBER get DMs
    slack.fail_next(
        "chat.postMessage",
        Hang(3.0),  # longer than the client's 1 s timeout
        RateLimited(retry_after=1),
        RateLimited(retry_after=1),  # slack-sdk retries a 429 once; the second reaches the outbox
        ServerError(500),
        ServerError(503),
        ServerError(503),
        SlackError("internal_error"),
        Hang(3.0),
        SlackError("fatal_error"),
    )
    client = slack_client(token="xoxb-in-process", base_url=slack.api_url, timeout=1)
    async with in_process_keybot(url=url, slack=slack, session=session, client=client) as kb:
        replies = [await kb.cmd(OWNER, "project create web")]
        replies += await asyncio.gather(*(kb.cmd(OWNER, f"create web k{n}") for n in range(5)))
        replies.append(await kb.cmd(OWNER, f"grant <@{MEMBER}> read-only web"))
        ask = await kb.cmd(OWNER, "delete web k0")
        replies.append(await kb.driver.click(OWNER, ask.button(ActionId.DELETE_CONFIRM)))
        for reply in replies:
            assert_private_and_clean(reply)
            assert not is_refusal(reply), reply.text
        assert len({*KEY_RE.findall(" ".join(r.text for r in replies))}) == 6

        await kb.outbox_drained(within=60)

    state = await db_state(url)
    calls = slack.dm_calls()
    assert {"hang", "ratelimited", "server_error", "slack_error"} <= {c.outcome for c in calls}
    expected = Counter((row.user_id, row.text) for row in state.outbox)
    assert {user for user, _ in expected} == {SECOND_OWNER, MEMBER}  # not OWNER, who saw the replies
    assert all(row.sent_at is not None for row in state.outbox)
    delivered = slack.delivered_notices()  # a DM may carry several notices: each counts
    assert set(delivered) == set(expected)
    # At least once: a notice is sent again only when an earlier attempt timed out on our side (Slack may
    # have posted it anyway); a 429, a 5xx or ok:false is never counted as delivered.
    hung = [c for c in calls if c.outcome == "hang"]
    timed_out = {(c.args["channel"], line) for c in hung for line in notice_lines(c.args["text"])}
    assert {notice for notice, n in delivered.items() if n > 1} <= timed_out
    for i, call in enumerate(calls):  # a rate-limited notice is tried again (when: the test below)
        if call.outcome == "ratelimited":
            for line in notice_lines(call.args["text"]):
                later = [c for c in calls[i + 1 :] if c.args["channel"] == call.args["channel"]]
                assert [c for c in later if line in notice_lines(c.args["text"])], (call, line)
    assert incomplete_keys(state, owners=[OWNER, SECOND_OWNER]) == []


async def test_a_dm_still_rate_limited_after_slack_sdks_own_retry_waits_out_retry_after_in_the_outbox(
    tmp_path: Path, slack: SlackWithOutages, session: aiohttp.ClientSession
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keybot.db'}"
    await bootstrap(url, owners=[OWNER, SECOND_OWNER])
    clock = SettableClock(datetime(2025, 3, 1, 12, 0, tzinfo=UTC))  # keybot's time moves only when told
    slack.fail_next("chat.postMessage", RateLimited(retry_after=1), RateLimited(retry_after=1))
    client = slack_client(token="xoxb-in-process", base_url=slack.api_url)
    async with in_process_keybot(url=url, slack=slack, session=session, client=client, clock=clock) as kb:
        assert KEY_RE.search((await kb.cmd(OWNER, "project create web")).text)  # one DM, to SECOND_OWNER

        async def rescheduled() -> bool:
            return any(row.last_error for row in (await db_state(url)).outbox)

        await eventually(rescheduled, within=30)  # slack-sdk waited and retried once; the outbox took over
        [row] = (await db_state(url)).outbox
        assert row.last_error == "429 ratelimited" and row.sent_at is None
        assert row.next_attempt_at == clock() + timedelta(seconds=1)
        clock.advance(timedelta(seconds=0.9))
        assert await kb.runtime.worker.drain_once() == 0  # not due yet: nothing is sent
        assert [c.outcome for c in slack.dm_calls()] == ["ratelimited", "ratelimited"]
        clock.advance(timedelta(seconds=0.1))
        await slack.wait_for(lambda s: s.dms_to(SECOND_OWNER), timeout=30)
    assert [c.outcome for c in slack.dm_calls()] == ["ratelimited", "ratelimited", "ok"]
    assert not slack.dms_to(OWNER)


async def test_dms_queued_while_slack_is_down_survive_a_restart_and_each_arrives_exactly_once(
    tmp_path: Path, slack: SlackWithOutages, session: aiohttp.ClientSession
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keybot.db'}"
    await bootstrap(url, owners=[OWNER, SECOND_OWNER])
    slack.go_down(ServerError(503), RateLimited(retry_after=1), SlackError("internal_error"))

    first = await start_keybot(database_url=url, slack_api_url=slack.api_url, log_path=tmp_path / "first.log")
    try:
        driver = SlackDriver(
            events_url=first.events_url, signing_secret=SIGNING_SECRET, slack=slack, session=session
        )
        replies = [await driver.command(OWNER, "project create web")]
        replies += await asyncio.gather(*(driver.command(OWNER, f"create web k{n}") for n in range(8)))
        replies.append(await driver.command(OWNER, f"grant <@{MEMBER}> read-only web"))
        for reply in replies:
            assert_private_and_clean(reply)
            assert not is_refusal(reply), reply.text
        await slack.wait_for(lambda s: len(s.dm_calls()) >= 3, timeout=60)  # the worker is trying
        started = asyncio.get_running_loop().time()
        code, log = await first.stop()
        print(
            f"\nkeybot exited {asyncio.get_running_loop().time() - started:.2f}s after SIGTERM with DMs pending"
        )
    finally:
        await first.kill()
    assert code == 0, log
    assert "keybot stopped" in log and "Traceback" not in log
    queued = await db_state(url)
    assert len(queued.outbox) == 9 + 1  # each key to SECOND_OWNER (OWNER made them), the grant to MEMBER
    assert {row.user_id for row in queued.outbox} == {SECOND_OWNER, MEMBER}
    assert all(row.sent_at is None for row in queued.outbox)
    assert not slack.delivered_dms()

    slack.recover()
    second = await start_keybot(
        database_url=url, slack_api_url=slack.api_url, log_path=tmp_path / "second.log"
    )
    try:

        async def drained() -> bool:
            return (await second.healthz(session))[1]["outbox_pending"] == 0

        await eventually(drained, within=90, every=0.1)  # rows first wait out the backoff they were given
        code, log = await second.stop()
    finally:
        await second.kill()
    assert code == 0, log

    state = await db_state(url)
    assert all(row.sent_at is not None for row in state.outbox)
    expected = Counter((row.user_id, row.text) for row in state.outbox)
    assert slack.delivered_notices() == expected  # DMs may merge several notices: each counts
    assert set(expected.values()) == {1}
    assert incomplete_keys(state, owners=[OWNER, SECOND_OWNER]) == []

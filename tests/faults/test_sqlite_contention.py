"""SQLite allows one writer at a time. Two keybots writing one file, or an outside writer holding the
lock, must never show a user "database is locked": each create succeeds or is refused politely."""

import asyncio
import sqlite3
from collections import defaultdict
from pathlib import Path

import aiohttp

from bot.shell.driver import Reply, SlackDriver
from tests.faults.helpers import (
    KEY_RE,
    OWNER,
    SlackWithOutages,
    assert_private_and_clean,
    bootstrap,
    db_state,
    in_process_keybot,
    incomplete_keys,
    is_refusal,
)
from tests.procs import SIGNING_SECRET, start_keybot

TRY_AGAIN = "temporarily unavailable"
SECOND_OWNER = "UOWNER02"  # an owner besides the one who acts, so that every key queues a DM
OWNERS = (OWNER, SECOND_OWNER)


async def test_two_keybots_creating_keys_in_one_sqlite_file_never_tell_a_user_it_is_locked(
    tmp_path: Path, slack: SlackWithOutages, session: aiohttp.ClientSession
) -> None:
    path = tmp_path / "keybot.db"
    url = f"sqlite+aiosqlite:///{path}"
    await bootstrap(url, owners=OWNERS)
    other = await start_keybot(database_url=url, slack_api_url=slack.api_url, log_path=tmp_path / "kb.log")
    try:
        remote = SlackDriver(
            events_url=other.events_url, signing_secret=SIGNING_SECRET, slack=slack, session=session
        )
        async with in_process_keybot(url=url, slack=slack, session=session) as local:
            assert KEY_RE.search((await local.cmd(OWNER, "project create web")).text)
            names = [f"k{n:02d}" for n in range(30)]
            # each name is asked of both instances at once: 60 concurrent write transactions
            replies: list[Reply] = await asyncio.gather(
                *(
                    driver.ask(OWNER, f"create web {name}")
                    for name in names
                    for driver in (local.driver, remote)
                )
            )
        code, log = await other.stop()
    finally:
        await other.kill()

    assert code == 0 and "Traceback" not in log and "database is locked" not in log, log
    by_name: defaultdict[str, list[Reply]] = defaultdict(list)
    for name, reply in zip([n for n in names for _ in range(2)], replies, strict=True):
        assert_private_and_clean(reply)
        by_name[name].append(reply)
    created = {name for name, pair in by_name.items() if any(KEY_RE.search(r.text) for r in pair)}
    try_again = sum(TRY_AGAIN in r.text for r in replies)
    print(f"\n{len(created)} of {len(names)} names created; {try_again} polite 'try again' refusals")
    for name, pair in by_name.items():
        successes = [r for r in pair if KEY_RE.search(r.text)]
        refusals = [r for r in pair if is_refusal(r)]
        assert len(successes) + len(refusals) == 2
        assert len(successes) <= 1, name
        assert all("already exists" in r.text or TRY_AGAIN in r.text for r in refusals), [
            r.text for r in refusals
        ]
        if not successes:
            assert all(TRY_AGAIN in r.text for r in refusals), name
    assert len(created) >= len(names) // 2, "most creates must get through"
    state = await db_state(url)
    assert state.key_names() == created | {"default"}
    assert incomplete_keys(state, owners=OWNERS) == []


async def test_a_create_that_waits_for_the_sqlite_lock_past_the_busy_timeout_gets_a_polite_try_again(
    tmp_path: Path, slack: SlackWithOutages, session: aiohttp.ClientSession
) -> None:
    path = tmp_path / "keybot.db"
    url = f"sqlite+aiosqlite:///{path}"
    await bootstrap(url, owners=OWNERS)
    async with in_process_keybot(url=url, slack=slack, session=session) as kb:
        assert KEY_RE.search((await kb.cmd(OWNER, "project create web")).text)
        await kb.outbox_drained()
        blocker = sqlite3.connect(path, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock for longer than 5 s
            reply = await kb.driver.command(OWNER, "create web checkout")
            assert "Working on it" in reply.text  # acked within Slack's 3 s; the answer follows
            name = reply.response_url.rsplit("/", 1)[-1]
            [late] = await slack.wait_for(lambda s: s.responses_to(name), timeout=15)
            reply = Reply(status=reply.status, message=late.body, response_url=reply.response_url)
            listing = await kb.cmd(OWNER, "list web")  # readers are not blocked by a writer (WAL)
            health = await kb.healthz()
        finally:
            blocker.rollback()
            blocker.close()

        assert_private_and_clean(reply)
        assert is_refusal(reply) and TRY_AGAIN in reply.text, reply.text
        assert "default" in listing.text and not is_refusal(listing), listing.text
        assert health[0] == 200
        assert KEY_RE.search((await kb.cmd(OWNER, "create web checkout")).text)
    state = await db_state(url)
    assert state.key_names() == {"default", "checkout"}
    assert incomplete_keys(state, owners=OWNERS) == []

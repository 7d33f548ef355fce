"""A real ``keybot serve`` killed in the middle of its work: SIGKILL leaves every key whole or absent,
SIGTERM finishes what it accepted — requests and DM sends — before exiting 0."""

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable
from pathlib import Path

import aiohttp
import asyncpg
from sqlalchemy import make_url

from bot.shell.driver import Reply, SlackDriver
from bot.shell.fakeslack import Hang
from tests.faults.helpers import (
    KEY_RE,
    OWNER,
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

PROJECT_OWNER = "UPOWNER1"
SECOND_OWNER = "UOWNER02"


async def logged(pending: Awaitable[Reply], events: list[str], name: str) -> Reply:
    """``pending``, noting ``name`` in ``events`` once it is answered (events keep their order)."""
    reply = await pending
    events.append(name)
    return reply


async def open_write_transactions(url: str) -> bool:
    """Whether a session of this PostgreSQL database has written in a transaction not yet committed."""
    conn = await asyncpg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        return bool(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await conn.close()


async def test_sigkill_in_the_middle_of_key_creation_leaves_every_key_complete_or_absent(
    db_url: str, tmp_path: Path, slack: SlackWithOutages, session: aiohttp.ClientSession
) -> None:
    await bootstrap(db_url)
    kb = await start_keybot(database_url=db_url, slack_api_url=slack.api_url, log_path=tmp_path / "kb.log")
    try:
        driver = SlackDriver(
            events_url=kb.events_url, signing_secret=SIGNING_SECRET, slack=slack, session=session
        )
        assert KEY_RE.search((await driver.command(OWNER, "project create web")).text)
        assert not is_refusal(await driver.command(OWNER, f"grant <@{PROJECT_OWNER}> owner web"))
        tasks = [asyncio.create_task(driver.command(OWNER, f"create web k{n:02d}")) for n in range(40)]
        await eventually(lambda: sum(task.done() for task in tasks) >= 3, every=0.005)
        if db_url.startswith("postgresql"):  # better: strike while a write transaction is open
            await eventually(lambda: open_write_transactions(db_url), every=0.001, within=30)
        assert await kb.kill() == -9
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await kb.kill()

    answered = {f"k{n:02d}" for n, r in enumerate(results) if isinstance(r, Reply) and KEY_RE.search(r.text)}
    cut_off = [r for r in results if isinstance(r, BaseException)]
    assert cut_off, "every create was answered before the kill: nothing was mid-flight"
    assert all(isinstance(err, aiohttp.ClientError) for err in cut_off), cut_off

    # restart: the same startup path as `keybot serve` (open, migrate, serve), in this process
    async with in_process_keybot(url=db_url, slack=slack, session=session) as restarted:
        assert (await restarted.healthz())[0] == 200
        state = await db_state(db_url)
        assert answered <= state.key_names()  # an answered create is durable
        unanswered = state.key_names() - answered - {"default"}
        print(
            f"\n{len(answered)} creates answered, {len(cut_off)} cut off ({len(unanswered)} of them committed)"
        )
        assert incomplete_keys(state, owners=[OWNER, PROJECT_OWNER], skip=["default"]) == []
        assert KEY_RE.search((await restarted.cmd(OWNER, "create web after-the-crash")).text)
    if db_url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(make_url(db_url).database or "")) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


async def test_sigterm_finishes_in_flight_requests_and_dm_sends_before_exiting(
    tmp_path: Path, slack: SlackWithOutages, session: aiohttp.ClientSession
) -> None:
    path = tmp_path / "keybot.db"
    url = f"sqlite+aiosqlite:///{path}"
    await bootstrap(url, owners=(OWNER, SECOND_OWNER))  # OWNER acts; SECOND_OWNER is told by DM
    kb = await start_keybot(database_url=url, slack_api_url=slack.api_url, log_path=tmp_path / "kb.log")
    blocker = sqlite3.connect(path, isolation_level=None, timeout=10)
    try:
        driver = SlackDriver(
            events_url=kb.events_url, signing_secret=SIGNING_SECRET, slack=slack, session=session
        )
        assert KEY_RE.search((await driver.command(OWNER, "project create web")).text)
        await slack.wait_for(lambda s: s.dms_to(SECOND_OWNER))
        slack.fail_next("chat.postMessage", *[Hang(1.0)] * 3)  # slow, but Slack does answer ok
        for n in range(3):
            assert KEY_RE.search((await driver.command(OWNER, f"create web early{n}")).text)
        await slack.wait_for(lambda s: [c for c in s.dm_calls() if c.outcome == "hang"])  # DMs in flight

        blocker.execute("BEGIN IMMEDIATE")  # hold the write lock: every create below waits inside keybot
        names = [f"k{n:02d}" for n in range(20)]
        events: list[str] = []
        tasks = [
            asyncio.create_task(logged(driver.command(OWNER, f"create web {name}"), events, name))
            for name in names
        ]
        await asyncio.sleep(0.5)  # let the requests reach keybot (any that do not are refused at the door)
        assert not events  # none can finish while the write lock is held
        events.append("SIGTERM")
        stopping = asyncio.create_task(kb.stop())
        await asyncio.sleep(0.3)
        blocker.rollback()  # well inside keybot's 5 s busy timeout
        code, log = await stopping
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        blocker.close()
        await kb.kill()

    assert code == 0, log
    assert "keybot stopped" in log and "Traceback" not in log
    answered = {name for name, r in zip(names, results, strict=True) if isinstance(r, Reply)}
    refused_at_the_door = [r for r in results if isinstance(r, BaseException)]
    # only a connection never accepted may fail; an accepted request that loses its connection fails the test
    assert all(isinstance(err, aiohttp.ClientConnectorError) for err in refused_at_the_door), (
        refused_at_the_door
    )
    assert answered and events[0] == "SIGTERM" and set(events[1:]) == answered  # each answered after SIGTERM
    print(
        f"\n{len(answered)} requests in flight at SIGTERM answered, {len(refused_at_the_door)} refused at the door"
    )
    for reply in results:  # every accepted request got its whole answer
        if isinstance(reply, Reply):
            assert_private_and_clean(reply)
            assert KEY_RE.search(reply.text), reply.text
    state = await db_state(url)
    assert state.key_names() == {"default", "early0", "early1", "early2"} | answered
    assert incomplete_keys(state, owners=[OWNER, SECOND_OWNER]) == []
    assert not slack.dms_to(OWNER)  # the one who acted saw the replies
    delivered = slack.delivered_notices()
    for row in state.outbox:  # marked sent exactly when Slack carried it out; the rest wait in the outbox
        assert delivered[(row.user_id, row.text)] == (1 if row.sent_at is not None else 0), row
    hung = {
        line for c in slack.dm_calls() if c.outcome == "hang" for line in notice_lines(str(c.args["text"]))
    }
    assert hung and all(row.sent_at is not None for row in state.outbox if row.text in hung)
    print(f"{sum(r.sent_at is not None for r in state.outbox)} of {len(state.outbox)} DMs sent before exit")

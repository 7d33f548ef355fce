"""Reminders with several ``keybot serve`` processes on one PostgreSQL database (DESIGN.md §5.1): a
reminder that falls due while two instances run is sent exactly once (both job runners claim from the
jobs table with ``FOR UPDATE SKIP LOCKED``), its buttons work through either instance and every copy is
updated once; a reminder that fell due while every instance was down is sent once after a restart.

The processes run on the wall clock, so "time passes" by moving the reminders' due moment in the
database, as if their day had come."""

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from sqlalchemy import func, select, update

from bot.shell.driver import SlackDriver
from bot.shell.fakeslack import Call
from bot.slack.codec import ActionId
from storage import make_engine
from storage.tables import api_keys, jobs, outbox
from tests.faults.helpers import (
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
SECOND_OWNER = "UOWNER02"
OWNERS = (OWNER, SECOND_OWNER)
KEYS = 12


@dataclass
class World:
    url: str
    slack: SlackWithOutages
    session: aiohttp.ClientSession
    logs: Path

    async def start(self, name: str) -> KeybotProcess:
        return await start_keybot(database_url=self.url, slack_api_url=self.slack.api_url, log_path=self.logs / f"{name}.log")

    def driver(self, kb: KeybotProcess) -> SlackDriver:
        return SlackDriver(events_url=kb.events_url, signing_secret=SIGNING_SECRET, slack=self.slack, session=self.session)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with contextlib.AsyncExitStack() as stack:
        try:
            url = await stack.enter_async_context(fresh_postgres_database())
        except PostgresUnreachable as err:
            pytest.fail(str(err))
        slack = await stack.enter_async_context(SlackWithOutages())
        session = await stack.enter_async_context(aiohttp.ClientSession())
        await bootstrap(url, owners=OWNERS)
        yield World(url=url, slack=slack, session=session, logs=tmp_path_factory.mktemp("nudges"))


async def fall_due(url: str, names: list[str]) -> list[int]:
    """Make the 7-day reminder of each named key due now, as if its day had come; their job ids."""
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            first = (
                select(jobs.c.key_row_id, func.min(jobs.c.due_at).label("due"))
                .join(api_keys, api_keys.c.id == jobs.c.key_row_id)
                .where(api_keys.c.name.in_(names), jobs.c.kind == "expiry nudge", jobs.c.done_at.is_(None))
                .group_by(jobs.c.key_row_id)
                .subquery()
            )
            ids = list(
                (
                    await conn.execute(
                        select(jobs.c.id).join(first, (first.c.key_row_id == jobs.c.key_row_id) & (first.c.due == jobs.c.due_at))
                    )
                ).scalars()
            )
            await conn.execute(update(jobs).where(jobs.c.id.in_(ids)).values(due_at=datetime.now(UTC) - timedelta(seconds=1)))
    finally:
        await engine.dispose()
    assert len(ids) == len(names)
    return ids


async def settled(url: str, ids: list[int]) -> bool:
    """Whether the jobs ``ids`` are done and no DM waits in the outbox."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            undone = (await conn.execute(select(func.count()).where(jobs.c.id.in_(ids), jobs.c.done_at.is_(None)))).scalar_one()
            unsent = (await conn.execute(select(func.count()).where(outbox.c.sent_at.is_(None), outbox.c.dead_at.is_(None)))).scalar_one()
    finally:
        await engine.dispose()
    return undone == 0 and unsent == 0


def reminder_dms(slack: SlackWithOutages) -> list[Call]:
    return [
        c
        for c in slack.dm_calls()
        if c.delivered and any(b.get("type") == "actions" for b in c.args.get("blocks") or []) and "expires" in str(c.args["text"])
    ]


def per_user_and_key(calls: list[Call]) -> Counter[tuple[str, str]]:
    found: Counter[tuple[str, str]] = Counter()
    for call in calls:
        key = str(call.args["text"]).split("`")[1]  # "… Key `name` (`masked`) …"
        found[(str(call.args["channel"]), key)] += 1
    return found


def button(call: Call, action: ActionId) -> dict[str, Any]:
    return next(e for b in call.args["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == action.value)


async def test_a_reminder_due_while_two_instances_run_is_sent_once_and_either_takes_its_buttons(world: World) -> None:
    a, b = await world.start("a"), await world.start("b")
    try:
        via_a, via_b = world.driver(a), world.driver(b)
        assert_private_and_clean(await via_a.command(OWNER, "project create alpha"))
        names = [f"k{n}" for n in range(KEYS)]
        for n, name in enumerate(names):
            reply = await (via_a if n % 2 else via_b).command(OWNER, f"create alpha {name} expires 30d")
            assert_private_and_clean(reply)
            assert not is_refusal(reply), reply.text
        ids = await fall_due(world.url, names)
        await eventually(lambda: settled(world.url, ids), within=60)
        sent = per_user_and_key(reminder_dms(world.slack))
        assert sent == Counter({(user, name): 1 for user in OWNERS for name in names})

        dm = next(c for c in reminder_dms(world.slack) if c.args["channel"] == SECOND_OWNER and "`k3`" in str(c.args["text"]))
        message = {"type": "message", "ts": dm.answer["ts"], "text": dm.args["text"], "blocks": dm.args["blocks"]}
        reply = await via_b.click(SECOND_OWNER, button(dm, ActionId.NUDGE_EXTEND), dm=(dm.answer["channel"], message))
        assert_private_and_clean(reply)
        assert "now expires" in reply.text, reply.text
        copies = [c for c in reminder_dms(world.slack) if "`k3`" in str(c.args["text"])]

        def updated() -> list[int]:
            return [len(world.slack.updates_of(c.answer["channel"], c.answer["ts"])) for c in copies]

        await eventually(lambda: updated() == [1, 1], within=30)
        again = await via_a.click(OWNER, button(dm, ActionId.NUDGE_LET_EXPIRE), dm=(dm.answer["channel"], message))
        assert is_refusal(again) and "already answered" in again.text
    finally:
        for proc in (a, b):
            code, log = await proc.stop()
            assert code == 0 and "Traceback" not in log, log
    assert updated() == [1, 1]


async def test_a_reminder_due_while_every_instance_was_down_is_sent_once_after_a_restart(world: World) -> None:
    a = await world.start("c")
    try:
        via_a = world.driver(a)
        assert_private_and_clean(await via_a.command(OWNER, "project create beta"))
        assert not is_refusal(await via_a.command(OWNER, "create beta late expires 30d"))
    finally:
        code, log = await a.stop()
        assert code == 0, log
    before = len(reminder_dms(world.slack))
    ids = await fall_due(world.url, ["late"])  # its day came while nothing ran
    a, b = await world.start("d"), await world.start("e")
    try:
        await eventually(lambda: settled(world.url, ids), within=60)
    finally:
        for proc in (a, b):
            code, log = await proc.stop()
            assert code == 0 and "Traceback" not in log, log
    late = [c for c in reminder_dms(world.slack)[before:] if "`late`" in str(c.args["text"])]
    assert sorted(str(c.args["channel"]) for c in late) == sorted(OWNERS)

"""Access requests decided at the same moment on two keybot instances sharing one PostgreSQL database
(DESIGN.md §5.4): exactly one decision stands. An owner's *Approve* on instance A held right before it
changes the request (after it read the request still pending), while another owner's *Deny* on instance
B commits, is refused when it resumes — the request stays denied, one decision is audited, the requester
gets no Reveal key button. Then several rounds of both clicks at once, and two duplicate requests at
once: one pending request. Over Slack's wire format, against the in-process instances of
tests/faults/helpers.py."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.shell.driver import Reply
from bot.shell.fakeslack import Call
from bot.slack.codec import ActionId
from storage import make_engine
from storage.store import SqlStore
from storage.tables import access_requests, audit_events
from tests.faults.helpers import (
    OWNER,
    Instance,
    SlackWithOutages,
    assert_private_and_clean,
    bootstrap,
    eventually,
    in_process_keybot,
    is_refusal,
)

pytestmark = pytest.mark.postgres

SECOND_OWNER = "UOWNER02"
WRITER = "UWRITER1"
WITHIN = 60.0  # a deadline for a step that should take milliseconds, not a measure


class _PausingMoves:
    """A transaction that stops once, just before it moves a request to its next state."""

    def __init__(self, tx: Any, pause: Any) -> None:
        self._tx = tx
        self._pause = pause

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._tx, name)
        if name != "move_request":
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            await self._pause()
            return await method(*args, **kwargs)

        return call


class PauseBeforeDecision:
    """The real SqlStore, except that the first write transaction opened after ``arm()`` waits before
    it changes a request's state until ``resume()``; ``paused`` is set while it waits."""

    def __init__(self) -> None:
        self._store: SqlStore | None = None
        self._armed = False
        self.paused = asyncio.Event()
        self._resume = asyncio.Event()

    def around(self, store: SqlStore) -> "PauseBeforeDecision":
        self._store = store
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def arm(self) -> None:
        self._armed, self._resume = True, asyncio.Event()
        self.paused.clear()

    def resume(self) -> None:
        self._resume.set()

    async def _pause(self) -> None:
        self.paused.set()
        await self._resume.wait()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        assert self._store is not None
        armed, self._armed = self._armed, False
        async with self._store.transaction() as tx:
            yield _PausingMoves(tx, self._pause) if armed else tx


@pytest.fixture
def pausing() -> PauseBeforeDecision:
    return PauseBeforeDecision()


@pytest.fixture
async def two(
    pg_url: str, slack: SlackWithOutages, session: aiohttp.ClientSession, pausing: PauseBeforeDecision
) -> AsyncIterator[tuple[Instance, Instance]]:
    """Instances A (whose decisions can be held) and B on one fresh database: two org owners, project
    ``web`` with a ``read-write`` member."""
    await bootstrap(pg_url, owners=(OWNER, SECOND_OWNER))
    async with (
        in_process_keybot(url=pg_url, slack=slack, session=session, unit_of_work=pausing.around, ack_budget=WITHIN) as a,
        in_process_keybot(url=pg_url, slack=slack, session=session, ack_budget=WITHIN) as b,
    ):
        for text in ("project create web", f"grant <@{WRITER}> read-write web"):
            assert not is_refusal(await a.cmd(OWNER, text)), text
        yield a, b


def request_dms(slack: SlackWithOutages, user: str) -> list[Call]:
    return [
        c
        for c in slack.dms_to(user)
        if any(e.get("action_id") == ActionId.REQUEST_APPROVE.value for b in c.args.get("blocks") or [] if b["type"] == "actions" for e in b["elements"])
    ]


def reveal_dms(slack: SlackWithOutages) -> list[Call]:
    return [c for c in slack.dms_to(WRITER) if ActionId.REQUEST_REVEAL.value in str(c.args.get("blocks"))]


async def click(instance: Instance, user: str, dm: Call, action: ActionId) -> Reply:
    element = next(e for b in dm.args["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == action.value)
    message = {"type": "message", "ts": dm.answer["ts"], "text": dm.args["text"], "blocks": dm.args["blocks"]}
    reply = await instance.driver.click(user, element, dm=(dm.answer["channel"], message))
    assert_private_and_clean(reply)
    return reply


async def ask(a: Instance, slack: SlackWithOutages) -> dict[str, Call]:
    """WRITER asks for a key of ``web``; each owner's new request DM."""
    before = {u: len(request_dms(slack, u)) for u in (OWNER, SECOND_OWNER)}
    reply = await a.cmd(WRITER, "request web for the importer")
    assert not is_refusal(reply), reply.text
    await eventually(lambda: all(len(request_dms(slack, u)) > before[u] for u in before), within=WITHIN)
    return {u: request_dms(slack, u)[-1] for u in before}


async def decisions(url: str) -> list[tuple[str, str | None, int]]:
    """Each request's state, who decided it, and how many decisions its project's audit log holds."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(access_requests.c.state, access_requests.c.decided_by).order_by(access_requests.c.id))).all()
            audited = (
                await conn.execute(select(func.count()).where(audit_events.c.action.in_(["access approved", "access denied"])))
            ).scalar_one()
    finally:
        await engine.dispose()
    return [(state, by, audited) for state, by in rows]


async def test_an_approval_held_while_another_owner_denies_on_another_instance_is_refused(
    two: tuple[Instance, Instance], slack: SlackWithOutages, pausing: PauseBeforeDecision, pg_url: str
) -> None:
    a, b = two
    dms = await ask(a, slack)
    pausing.arm()
    approving = asyncio.create_task(click(a, OWNER, dms[OWNER], ActionId.REQUEST_APPROVE))
    await asyncio.wait_for(pausing.paused.wait(), WITHIN)  # A read the request pending, and waits
    denied = await click(b, SECOND_OWNER, dms[SECOND_OWNER], ActionId.REQUEST_DENY)
    assert denied.text.startswith(":no_entry_sign: Denied"), denied.text
    pausing.resume()
    approved = await asyncio.wait_for(approving, WITHIN)
    assert is_refusal(approved) and f"already denied by <@{SECOND_OWNER}>" in approved.text
    assert await decisions(pg_url) == [("denied", SECOND_OWNER, 1)]
    await a.outbox_drained()
    await b.outbox_drained()
    assert reveal_dms(slack) == []
    for dm in dms.values():  # every copy says the one decision that stands
        await eventually(lambda dm=dm: bool(slack.updates_of(dm.answer["channel"], dm.answer["ts"])), within=WITHIN)
        assert f"<@{SECOND_OWNER}> denied" in slack.message(dm.answer["channel"], dm.answer["ts"])["text"]


async def test_approve_and_deny_clicked_at_once_on_two_instances_leave_exactly_one_decision(
    two: tuple[Instance, Instance], slack: SlackWithOutages, pg_url: str
) -> None:
    a, b = two
    rounds = 6
    for n in range(rounds):
        dms = await ask(a if n % 2 else b, slack)
        first, second = (a, b) if n % 2 else (b, a)
        replies = await asyncio.gather(
            click(first, OWNER, dms[OWNER], ActionId.REQUEST_APPROVE),
            click(second, SECOND_OWNER, dms[SECOND_OWNER], ActionId.REQUEST_DENY),
        )
        assert sorted(is_refusal(r) for r in replies) == [False, True], [r.text for r in replies]
        assert "already" in next(r for r in replies if is_refusal(r)).text
    found = await decisions(pg_url)
    assert len(found) == rounds and all(audited == rounds for _, _, audited in found)
    for (state, by, _), n in zip(found, range(rounds), strict=True):
        assert (state, by) in {("approved", OWNER), ("denied", SECOND_OWNER)}, n
    await a.outbox_drained()
    await b.outbox_drained()
    assert len(reveal_dms(slack)) == sum(state == "approved" for state, _, _ in found)


async def test_two_identical_requests_at_once_on_two_instances_make_one_pending_request(
    two: tuple[Instance, Instance], pg_url: str
) -> None:
    a, b = two
    replies = await asyncio.gather(a.cmd(WRITER, "request web"), b.cmd(WRITER, "request web"))
    for reply in replies:
        assert_private_and_clean(reply)
    assert sorted(is_refusal(r) for r in replies) == [False, True], [r.text for r in replies]
    assert "already asked" in next(r for r in replies if is_refusal(r)).text
    assert [state for state, _, _ in await decisions(pg_url)] == ["pending"]


async def test_reveal_clicked_at_once_on_two_instances_shows_one_key_and_says_already_revealed_to_the_other(
    two: tuple[Instance, Instance], slack: SlackWithOutages, pg_url: str
) -> None:
    """Both clicks may pass the first checks before either inserts `request-<n>`: the loser's insert
    meets the winner's key and is answered like any late click ("already revealed"), not "pick another
    name" (the requester picked none)."""
    a, b = two
    rounds = 4
    for n in range(rounds):
        dms = await ask(a, slack)
        assert not is_refusal(await click(a, OWNER, dms[OWNER], ActionId.REQUEST_APPROVE))
        await eventually(lambda n=n: len(reveal_dms(slack)) > n, within=WITHIN)
        dm = reveal_dms(slack)[-1]
        replies = await asyncio.gather(click(a, WRITER, dm, ActionId.REQUEST_REVEAL), click(b, WRITER, dm, ActionId.REQUEST_REVEAL))
        texts = [r.text for r in replies]
        assert sum("kb_" in t for t in texts) == 1, texts
        assert "already revealed" in next(t for t in texts if "kb_" not in t), texts
    engine = make_engine(pg_url)
    try:
        async with engine.connect() as conn:
            revealed = (await conn.execute(select(func.count()).where(audit_events.c.action == "access revealed"))).scalar_one()
            states = (await conn.execute(select(access_requests.c.state))).scalars().all()
    finally:
        await engine.dispose()
    assert revealed == rounds and states == ["revealed"] * rounds

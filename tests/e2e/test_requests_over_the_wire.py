"""Access requests over Slack's wire format (DESIGN.md §5.4): a member asks with ``/apikeys request``,
every approver gets a DM with Approve and Deny (clicked in the DM, as Slack sends it), the first decision
updates every approver's copy (``chat.update``), the requester reveals the key once from a DM, and every
wrong step gets a private refusal that changes nothing. Time travel (the harness's ``ShiftedClock``) runs
the 72-hour request expiry and the 24-hour reveal expiry through the job runner."""

import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from bot.shell.driver import Reply
from bot.shell.fakeslack import Call
from bot.slack.codec import ActionId
from tests.e2e.conftest import OWNER, Harness

KEY_RE = re.compile(r"kb_[A-Za-z0-9]{10}_[A-Za-z0-9]{28}")
SECOND_OWNER = "UOWNER02"  # an organization owner
PROJECT_OWNER = "UPOWNER1"
WRITER = "UWRITER1"
ADMIN = "UADMIN01"
READER = "UREADER1"
APPROVERS = [OWNER, SECOND_OWNER, PROJECT_OWNER]
REQUEST_BUTTONS = {ActionId.REQUEST_APPROVE.value, ActionId.REQUEST_DENY.value}


@pytest.fixture
async def h(harness: Harness) -> AsyncIterator[Harness]:
    """The harness with its job runner started and project `payments` with a member of each role."""
    for text in (
        "project create payments",
        f"grant <@{SECOND_OWNER}> owner",
        f"grant <@{PROJECT_OWNER}> owner payments",
        f"grant <@{WRITER}> read-write payments",
        f"grant <@{ADMIN}> admin payments",
        f"grant <@{READER}> read-only payments",
    ):
        assert not (await harness.as_owner(text)).text.startswith(":warning:"), text
    harness.runtime.jobs.start()
    yield harness


def buttons(call: Call | dict[str, Any]) -> dict[str, dict[str, Any]]:
    blocks = call.args.get("blocks") if isinstance(call, Call) else call.get("blocks")
    return {
        element["action_id"]: element
        for block in blocks or []
        if block.get("type") == "actions"
        for element in block["elements"]
    }


def asks(h: Harness, user: str) -> list[Call]:
    """The request DMs (with Approve and Deny) ``user`` got."""
    return [c for c in h.slack.dms_to(user) if REQUEST_BUTTONS & buttons(c).keys()]


def reveals(h: Harness, user: str) -> list[Call]:
    return [c for c in h.slack.dms_to(user) if ActionId.REQUEST_REVEAL.value in buttons(c)]


def current(h: Harness, dm: Call) -> dict[str, Any]:
    return h.slack.message(dm.answer["channel"], dm.answer["ts"])


async def click(h: Harness, user: str, dm: Call, action: ActionId) -> Reply:
    """``user`` presses ``action`` on the DM ``dm``, in the DM, as Slack sends it."""
    message = {"type": "message", "ts": dm.answer["ts"], "text": dm.args["text"], "blocks": dm.args["blocks"]}
    reply = await h.driver.click(user, buttons(dm)[action.value], dm=(dm.answer["channel"], message))
    assert reply.status == 200 and reply.message.get("response_type") == "ephemeral", reply
    assert not reply.message.get("replace_original"), "a request DM is updated for everyone, not replaced"
    return reply


async def travel(h: Harness, by: timedelta) -> None:
    h.clock.shift(h.clock.offset + by)
    h.runtime.jobs.wake()


async def asked(h: Harness, user: str = WRITER, text: str = "request payments for the nightly export") -> list[Call]:
    """``user`` asks; every approver's DM, once each arrived."""
    before = {u: len(asks(h, u)) for u in APPROVERS}
    reply = await h.cmd(user, text)
    assert reply.text.startswith(":outbox_tray:"), reply.text
    await h.slack.wait_for(lambda s: all(len(asks(h, u)) > before[u] for u in APPROVERS))
    return [asks(h, u)[-1] for u in APPROVERS]


async def approved(h: Harness, approver: str = PROJECT_OWNER) -> Call:
    """The request is approved by ``approver``; the requester's Reveal key DM."""
    dms = dict(zip(APPROVERS, await asked(h), strict=True))
    reply = await click(h, approver, dms[approver], ActionId.REQUEST_APPROVE)
    assert reply.text.startswith(":white_check_mark: Approved"), reply.text
    await h.slack.wait_for(lambda s: reveals(h, WRITER))
    return reveals(h, WRITER)[-1]


async def verify(h: Harness, key: str) -> dict[str, Any]:
    async with h.session.post(f"{h.base_url}/v1/keys/verify", json={"key": key}) as response:
        answer: dict[str, Any] = await response.json()
        return answer


async def test_a_member_asks_an_owner_approves_and_the_requester_reveals_the_key_once(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    reply = await h.cmd(WRITER, "request payments expires 30d for the <!channel> nightly   export")
    assert all(f"<@{u}>" in reply.text for u in APPROVERS) and "expires <!date^" in reply.text
    await h.slack.wait_for(lambda s: all(asks(h, u) for u in APPROVERS))
    dms = {u: asks(h, u)[0] for u in APPROVERS}
    text = dms[OWNER].args["text"]
    assert f"<@{WRITER}> asks for a key of project `payments`" in text and "expiry `30d`" in text
    assert "&lt;!channel&gt; nightly export" in text and "<!channel>" not in text  # the reason, escaped
    assert set(buttons(dms[OWNER])) == REQUEST_BUTTONS
    assert not asks(h, WRITER) and not asks(h, READER)

    decided = await click(h, PROJECT_OWNER, dms[PROJECT_OWNER], ActionId.REQUEST_APPROVE)
    assert f"Approved <@{WRITER}>'s request" in decided.text
    for user, dm in dms.items():
        await h.slack.wait_for(lambda s, dm=dm: s.updates_of(dm.answer["channel"], dm.answer["ts"]))
        now = current(h, dm)
        assert f"<@{PROJECT_OWNER}> approved <@{WRITER}>'s request" in now["text"], user
        assert not buttons(now), "the buttons are gone"
    await h.slack.wait_for(lambda s: reveals(h, WRITER))
    [reveal_dm] = reveals(h, WRITER)
    assert f"<@{PROJECT_OWNER}> approved your request" in reveal_dm.args["text"]

    revealed = await click(h, WRITER, reveal_dm, ActionId.REQUEST_REVEAL)
    [secret] = set(KEY_RE.findall(revealed.text))
    assert revealed.text.count(secret) == 1 and "request-1" in revealed.text
    answer = await verify(h, secret)
    assert answer["valid"] is True and answer["expires_at"] is not None
    again = await click(h, WRITER, reveal_dm, ActionId.REQUEST_REVEAL)
    assert again.text.startswith(":warning:") and "already revealed" in again.text and secret not in again.text
    await h.slack.wait_for(lambda s: s.updates_of(reveal_dm.answer["channel"], reveal_dm.answer["ts"]))
    assert "You revealed your key" in current(h, reveal_dm)["text"] and not buttons(current(h, reveal_dm))

    show = (await h.as_owner("show payments request-1")).text
    assert f"*Created* by <@{WRITER}>" in show and f"approved by <@{PROJECT_OWNER}>" in show
    audit = (await h.as_owner("audit payments")).text
    assert f"<@{WRITER}> asked for a key" in audit and f"<@{PROJECT_OWNER}> approved <@{WRITER}>'s request" in audit
    assert f"<@{WRITER}> revealed key `request-1`" in audit and f"approved by <@{PROJECT_OWNER}>" in audit
    mine = (await h.cmd(WRITER, "requests")).text
    assert "revealed as key `request-1`" in mine

    await h.outbox_drained()
    slack_saw = json.dumps([c.args for c in h.slack.calls])
    others = json.dumps([r.body for r in h.slack.responses if r.body != revealed.message])
    assert "asks for a key" in slack_saw and "You revealed your key" in slack_saw  # the DMs were scanned
    for where, blob in {"web api": slack_saw, "other messages": others, "logs": caplog.text}.items():
        assert secret not in blob and secret[-28:] not in blob, f"the secret in {where}"


async def test_a_denial_updates_every_approver_and_tells_the_requester_and_a_late_click_changes_nothing(
    h: Harness,
) -> None:
    dms = dict(zip(APPROVERS, await asked(h), strict=True))
    denied = await click(h, SECOND_OWNER, dms[SECOND_OWNER], ActionId.REQUEST_DENY)
    assert f"Denied <@{WRITER}>'s request" in denied.text
    await h.slack.wait_for(lambda s: any("denied your request" in c.args["text"] for c in s.dms_to(WRITER)))
    late = await click(h, OWNER, dms[OWNER], ActionId.REQUEST_APPROVE)
    assert late.text.startswith(":warning:") and f"already denied by <@{SECOND_OWNER}>" in late.text
    for dm in dms.values():
        await h.slack.wait_for(lambda s, dm=dm: s.updates_of(dm.answer["channel"], dm.answer["ts"]))
        assert f"<@{SECOND_OWNER}> denied" in current(h, dm)["text"]
    await h.outbox_drained()
    assert not reveals(h, WRITER)
    assert "denied <@UWRITER1>'s request" in (await h.as_owner("audit payments")).text
    assert "request-1" not in (await h.as_owner("list payments")).text


async def test_nobody_approves_their_own_request_nor_clicks_buttons_sent_to_others(h: Harness) -> None:
    dms = dict(zip(APPROVERS, await asked(h, ADMIN), strict=True))
    own = await click(h, ADMIN, dms[OWNER], ActionId.REQUEST_APPROVE)
    assert own.text.startswith(":warning:") and "Nobody approves their own request" in own.text
    other = await click(h, READER, dms[OWNER], ActionId.REQUEST_DENY)
    assert other.text.startswith(":warning:") and "not to you" in other.text
    forged = await h.driver.click(
        OWNER, {**buttons(dms[OWNER])[ActionId.REQUEST_APPROVE.value], "value": "r1.AAAAAAAAAAAAAAAAAAAA"}
    )
    assert forged.text.startswith(":warning:") and "out of date" in forged.text
    garbage = await h.driver.click(OWNER, {**buttons(dms[OWNER])[ActionId.REQUEST_APPROVE.value], "value": "r1'; --"})
    assert garbage.status == 200 and garbage.text.startswith(":warning:")
    pending = (await h.cmd(PROJECT_OWNER, "requests payments")).text
    assert f"<@{ADMIN}> asks for a key of `payments`" in pending  # still pending: nothing changed
    reply = await click(h, OWNER, dms[OWNER], ActionId.REQUEST_APPROVE)
    assert reply.text.startswith(":white_check_mark:")
    await h.slack.wait_for(lambda s: reveals(h, ADMIN))
    stolen = await click(h, WRITER, reveals(h, ADMIN)[0], ActionId.REQUEST_REVEAL)
    assert stolen.text.startswith(":warning:") and f"Only <@{ADMIN}> can reveal" in stolen.text
    assert not KEY_RE.search(stolen.text)


async def test_wrong_requests_get_private_explanations_and_send_nothing(h: Harness) -> None:
    cases = {
        (READER, "request payments"): "Only `admin` and `read-write` members",
        (WRITER, "request nowhere"): "No project named `nowhere`",
        (WRITER, "request payments for " + "x" * 501): "at most 500 characters",
        (WRITER, "request payments for"): "needs a reason",
        (WRITER, "request payments expires 400x"): "",
        (WRITER, "request payments soon"): "I don't understand",
        (WRITER, "request payments expires"): "`expires` needs one time",
        (WRITER, "request"): "Usage",
        (PROJECT_OWNER, "request payments"): "you need no approval",
    }
    for (user, text), words in cases.items():
        reply = await h.cmd(user, text)
        assert reply.message.get("response_type") == "ephemeral" and reply.text.startswith(":warning:"), text
        assert words in reply.text, (text, reply.text)
    refused = (await h.cmd(READER, "request payments")).text
    assert f"<@{PROJECT_OWNER}>" in refused and f"<@{OWNER}>" in refused  # who can grant a role
    await asked(h)
    duplicate = await h.cmd(WRITER, "request payments for again")
    assert duplicate.text.startswith(":warning:") and "already asked" in duplicate.text
    await h.as_owner("policy max-lifetime 30d")
    too_long = await h.cmd(ADMIN, "request payments expires 90d")
    assert too_long.text.startswith(":warning:") and "at most 30d" in too_long.text
    await h.as_owner("policy requests off")
    off = await h.cmd(ADMIN, "request payments")
    assert off.text.startswith(":warning:") and "turned access requests off" in off.text
    await h.outbox_drained()
    assert [len(asks(h, u)) for u in APPROVERS] == [1, 1, 1]  # only the one good request was sent


async def test_an_unanswered_request_expires_after_72_hours_and_the_requester_is_told(h: Harness) -> None:
    dms = await asked(h)
    await travel(h, timedelta(hours=71))
    await h.runtime.jobs.run_once()
    assert (await h.cmd(WRITER, "requests")).text.count("waiting for an owner") == 1
    await travel(h, timedelta(hours=1, seconds=5))
    await h.slack.wait_for(lambda s: any("expired: no owner answered" in c.args["text"] for c in s.dms_to(WRITER)))
    for dm in dms:
        await h.slack.wait_for(lambda s, dm=dm: s.updates_of(dm.answer["channel"], dm.answer["ts"]))
        assert "expired unanswered" in current(h, dm)["text"]
    late = await click(h, OWNER, dms[0], ActionId.REQUEST_APPROVE)
    assert late.text.startswith(":warning:") and "expired" in late.text
    assert "keybot" in (await h.as_owner("audit payments")).text
    again = await h.cmd(WRITER, "request payments")  # a new request may be made
    assert again.text.startswith(":outbox_tray:")


async def test_the_reveal_button_works_for_24_hours_only(h: Harness) -> None:
    reveal_dm = await approved(h)
    await travel(h, timedelta(hours=24, seconds=5))
    await h.slack.wait_for(lambda s: s.updates_of(reveal_dm.answer["channel"], reveal_dm.answer["ts"]))
    assert "expired unrevealed" in current(h, reveal_dm)["text"]
    late = await click(h, WRITER, reveal_dm, ActionId.REQUEST_REVEAL)
    assert late.text.startswith(":warning:") and "expired" in late.text and not KEY_RE.search(late.text)
    assert "request-1" not in (await h.as_owner("list payments")).text


async def test_a_requester_who_lost_the_role_cannot_reveal_and_an_ex_owner_cannot_approve(h: Harness) -> None:
    reveal_dm = await approved(h)
    await h.as_owner(f"revoke <@{WRITER}> payments")
    refused = await click(h, WRITER, reveal_dm, ActionId.REQUEST_REVEAL)
    assert refused.text.startswith(":warning:") and "no longer hold a role" in refused.text
    assert "request-1" not in (await h.as_owner("list payments")).text
    await h.as_owner(f"grant <@{WRITER}> read-write payments")  # back: the button works again, once
    revealed = await click(h, WRITER, reveal_dm, ActionId.REQUEST_REVEAL)
    assert len(set(KEY_RE.findall(revealed.text))) == 1

    dms = dict(zip(APPROVERS, await asked(h, ADMIN), strict=True))
    await h.as_owner(f"revoke <@{PROJECT_OWNER}> payments")
    ex = await click(h, PROJECT_OWNER, dms[PROJECT_OWNER], ActionId.REQUEST_APPROVE)
    assert ex.text.startswith(":warning:") and "no longer an owner" in ex.text
    assert (await h.cmd(SECOND_OWNER, "requests")).text.count("asks for a key") == 1  # still pending


async def test_requests_lists_what_waits_for_you_with_buttons_and_your_own_with_their_state(h: Harness) -> None:
    await asked(h)
    listing = await h.cmd(PROJECT_OWNER, "requests")
    assert f"<@{WRITER}> asks for a key of `payments`" in listing.text
    decide = await h.driver.click(PROJECT_OWNER, listing.button(ActionId.REQUEST_APPROVE), response_url=listing.response_url)
    assert decide.text.startswith(":white_check_mark: Approved")
    mine = await h.cmd(WRITER, "requests payments")
    assert f"approved by <@{PROJECT_OWNER}>" in mine.text
    revealed = await h.driver.click(WRITER, mine.button(ActionId.REQUEST_REVEAL), response_url=mine.response_url)
    assert len(set(KEY_RE.findall(revealed.text))) == 1
    nothing = await h.cmd(READER, "requests")
    assert "No access requests" in nothing.text
    hidden = await h.cmd(READER, "requests nowhere")
    assert hidden.text.startswith(":warning:") and "No project named" in hidden.text

"""Reminders over Slack's wire format (DESIGN.md §5.1): time travel with the harness's ``ShiftedClock``
through the 7-day and 1-day expiry reminders, the end of a grace period and a stale key; the reminders'
buttons clicked from the DM (a ``block_actions`` with the DM's channel and message, as Slack sends it);
every owner's copy of a reminder updated (``chat.update``) after a decision; refused clicks answered
privately; and a Roll click that opens the roll modal, whose submission shows the new secret once, in
the modal, and nowhere else."""

import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.shell.driver import Reply
from bot.shell.fakeslack import Call
from bot.slack import modals
from bot.slack.codec import ActionId
from tests.e2e.conftest import OWNER, Harness
from tests.e2e.test_home_and_modals import checked, submit

KEY_RE = re.compile(r"kb_[A-Za-z0-9]{10}_[A-Za-z0-9]{28}")
SECOND_OWNER = "UOWNER02"
PROJECT_OWNER = "UPOWNER1"
READER = "UREADER1"
OWNERS = [OWNER, SECOND_OWNER, PROJECT_OWNER]
DAY = timedelta(days=1)
NUDGE_BUTTONS = {a.value for a in ActionId if a.value.startswith("nudge_")}


@pytest.fixture
async def h(harness: Harness) -> AsyncIterator[Harness]:
    """The harness with its job runner started, as ``keybot serve`` starts it, and project `payments`."""
    for text in (
        "project create payments",
        f"grant <@{SECOND_OWNER}> owner",
        f"grant <@{PROJECT_OWNER}> owner payments",
        f"grant <@{READER}> read-only payments",
    ):
        assert not (await harness.as_owner(text)).text.startswith(":warning:"), text
    harness.runtime.jobs.start()
    yield harness


def buttons(call: Call) -> dict[str, dict[str, Any]]:
    return {
        element["action_id"]: element
        for block in call.args.get("blocks") or []
        if block.get("type") == "actions"
        for element in block["elements"]
    }


def reminders(h: Harness, user: str, words: str) -> list[Call]:
    """The DMs to ``user`` with reminder buttons whose text has ``words``."""
    return [c for c in h.slack.dms_to(user) if NUDGE_BUTTONS & buttons(c).keys() and words in str(c.args["text"])]


async def travel(h: Harness, to: datetime) -> None:
    h.clock.shift(to - datetime.now(UTC))
    h.runtime.jobs.wake()


async def click(h: Harness, user: str, dm: Call, action: ActionId) -> Reply:
    """``user`` presses ``action`` on the DM ``dm``, in the DM, as Slack sends it (channel and message)."""
    message = {"type": "message", "ts": dm.answer["ts"], "text": dm.args["text"], "blocks": dm.args["blocks"]}
    reply = await h.driver.click(user, buttons(dm)[action.value], dm=(dm.answer["channel"], message))
    assert reply.status == 200 and reply.message.get("response_type") == "ephemeral", reply
    assert not reply.message.get("replace_original"), "a reminder is updated for everyone, not replaced by a reply"
    return reply


def current(h: Harness, dm: Call) -> dict[str, Any]:
    return h.slack.message(dm.answer["channel"], dm.answer["ts"])


async def expiring_key(h: Harness, name: str = "ci", when: str = "30d") -> datetime:
    reply = await h.as_owner(f"create payments {name} expires {when}")
    [secret] = set(KEY_RE.findall(reply.text))
    async with h.session.post(f"{h.base_url}/v1/keys/verify", json={"key": secret}) as response:
        return datetime.fromisoformat((await response.json())["expires_at"])


async def settled(h: Harness) -> None:
    """One more pass of due jobs at the current time, and every DM sent."""
    await h.runtime.jobs.run_once()
    await h.outbox_drained()


async def verify(h: Harness, key: str) -> dict[str, Any]:
    async with h.session.post(f"{h.base_url}/v1/keys/verify", json={"key": key}) as response:
        answer: dict[str, Any] = await response.json()
        return answer


async def test_time_travel_through_the_seven_and_one_day_reminders(h: Harness) -> None:
    expires_at = await expiring_key(h)
    await travel(h, expires_at - 7 * DAY + timedelta(seconds=1))
    await h.slack.wait_for(lambda s: all(reminders(h, u, "in 6 days") for u in OWNERS))
    dm = reminders(h, SECOND_OWNER, "expires")[0]
    assert set(buttons(dm)) == {"nudge_roll", "nudge_extend", "nudge_let_expire"}
    assert "Key `ci` (`kb_" in dm.args["text"] and "in project `payments`" in dm.args["text"]

    await travel(h, expires_at - DAY + timedelta(seconds=1))
    await h.slack.wait_for(lambda s: all(reminders(h, u, "in 23 hours") for u in OWNERS))
    await h.outbox_drained()
    assert [len(reminders(h, u, "expires")) for u in OWNERS] == [2, 2, 2]  # each reminder once
    assert reminders(h, READER, "") == []  # owners only


async def test_extend_from_the_dm_updates_every_owners_copy_and_a_second_click_changes_nothing(h: Harness) -> None:
    expires_at = await expiring_key(h)
    await travel(h, expires_at - 7 * DAY + timedelta(seconds=1))
    await h.slack.wait_for(lambda s: all(reminders(h, u, "expires") for u in OWNERS))
    copies = {u: reminders(h, u, "expires")[0] for u in OWNERS}

    reply = await click(h, PROJECT_OWNER, copies[PROJECT_OWNER], ActionId.NUDGE_EXTEND)
    assert "now expires <!date^" in reply.text
    for user, dm in copies.items():
        await h.slack.wait_for(lambda s, dm=dm: s.updates_of(dm.answer["channel"], dm.answer["ts"]))
        now = current(h, dm)
        assert f"<@{PROJECT_OWNER}> extended key `ci`" in now["text"] and "by 30 days" in now["text"], user
        assert not [b for b in now["blocks"] if b["type"] == "actions"], "the buttons are gone"
    audit = (await h.as_owner("audit payments")).text
    assert f"<@{PROJECT_OWNER}> set key `ci`" in audit

    again = await click(h, OWNER, copies[OWNER], ActionId.NUDGE_LET_EXPIRE)
    assert again.text.startswith(":warning:") and f"already answered: <@{PROJECT_OWNER}> extended" in again.text
    forged = await click(h, READER, copies[OWNER], ActionId.NUDGE_EXTEND)  # a copy READER never got
    assert forged.text.startswith(":warning:") and "not to you" in forged.text
    await h.outbox_drained()
    assert [len(h.slack.updates_of(d.answer["channel"], d.answer["ts"])) for d in copies.values()] == [1, 1, 1]


async def test_roll_from_the_dm_shows_the_new_secret_once_privately_and_the_grace_end_is_dmed(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    reply = await h.as_owner("create payments ci expires 5d")
    [old] = set(KEY_RE.findall(reply.text))
    expires_at = datetime.fromisoformat((await verify(h, old))["expires_at"])
    await travel(h, expires_at - DAY + timedelta(seconds=1))
    await h.slack.wait_for(lambda s: reminders(h, SECOND_OWNER, "expires"))
    dm = reminders(h, SECOND_OWNER, "expires")[0]
    message = {"type": "message", "ts": dm.answer["ts"], "text": dm.args["text"], "blocks": dm.args["blocks"]}
    opened = len(h.slack.calls_to("views.open"))
    pressed = await h.driver.click(SECOND_OWNER, buttons(dm)[ActionId.NUDGE_ROLL.value], dm=(dm.answer["channel"], message))
    assert pressed.status == 200 and pressed.message == {}  # no message: a modal
    modal = checked((await h.slack.wait_for(lambda s: s.calls_to("views.open")[opened:]))[0].args["view"])
    assert "Give key `ci` (`kb_" in json.dumps(modal) and "in `payments`" in json.dumps(modal)
    assert "fresh lifetime" in json.dumps(modal)
    grace = {modals.GRACE: {modals.GRACE: {"type": "static_select", "selected_option": {"value": "24h"}}}}
    answer = await submit(h, SECOND_OWNER, modal, grace)
    assert answer["response_action"] == "update"
    rolled = json.dumps(checked(answer["view"]))
    [new] = set(KEY_RE.findall(rolled))
    assert rolled.count(new) == 1 and "Copy it now" in rolled and "It now expires on" in rolled
    again = await submit(h, SECOND_OWNER, modal, grace)  # the same modal submitted twice: the reminder is answered
    assert again["response_action"] == "errors" and "already answered" in again["errors"][modals.GRACE]
    answer = await verify(h, new)
    assert answer["valid"] is True and datetime.fromisoformat(answer["expires_at"]) > expires_at  # a fresh lifetime
    assert (await verify(h, old))["valid"] is True  # the old secret works through its grace

    await travel(h, h.clock() + DAY + timedelta(seconds=1))
    await h.slack.wait_for(lambda s: all("stopped working" in json.dumps([c.args for c in s.dms_to(u)]) for u in OWNERS))
    assert await verify(h, old) == {"valid": False, "code": "EXPIRED"}
    await h.outbox_drained()
    slack_saw = json.dumps([c.args for c in h.slack.calls])
    others = json.dumps([r.body for r in h.slack.responses])
    assert "rolled key `ci`" in slack_saw and "stopped working" in slack_saw  # the DMs really were scanned
    for where, blob in {"web api": slack_saw, "other messages": others, "logs": caplog.text}.items():
        assert new not in blob and new[-28:] not in blob, f"the new secret in {where}"


async def test_a_stale_key_is_reminded_of_once_and_delete_goes_through_the_usual_confirmation(h: Harness) -> None:
    await h.as_owner("create payments ci")
    await h.as_owner("create payments cd")
    await travel(h, datetime.now(UTC) + 91 * DAY)
    await h.slack.wait_for(lambda s: all(reminders(h, u, "`ci`") and reminders(h, u, "`cd`") for u in OWNERS))
    dm = reminders(h, OWNER, "`ci`")[0]
    assert set(buttons(dm)) == {"nudge_delete", "nudge_keep"} and "has not been used since" in dm.args["text"]

    ask = await click(h, OWNER, dm, ActionId.NUDGE_DELETE)
    assert "Delete key `ci`" in ask.text and ask.button(ActionId.DELETE_CONFIRM)["style"] == "danger"
    assert not h.slack.updates_of(dm.answer["channel"], dm.answer["ts"])  # nothing decided before the confirmation
    done = await h.driver.click(OWNER, ask.button(ActionId.DELETE_CONFIRM), response_url=ask.response_url)
    assert "Deleted key `ci`" in done.text and done.message.get("replace_original") is True
    for user in OWNERS:
        copy = reminders(h, user, "`ci`")[0]
        await h.slack.wait_for(lambda s, c=copy: s.updates_of(c.answer["channel"], c.answer["ts"]))
        assert f"<@{OWNER}> deleted key `ci`" in current(h, copy)["text"]

    kept = await click(h, PROJECT_OWNER, reminders(h, PROJECT_OWNER, "`cd`")[0], ActionId.NUDGE_KEEP)
    assert "Kept key `cd`" in kept.text
    copy = reminders(h, SECOND_OWNER, "`cd`")[0]
    await h.slack.wait_for(lambda s: s.updates_of(copy.answer["channel"], copy.answer["ts"]))
    assert f"<@{PROJECT_OWNER}> kept key `cd`" in current(h, copy)["text"]
    stale = await click(h, OWNER, reminders(h, OWNER, "`ci`")[0], ActionId.NUDGE_KEEP)
    assert stale.text.startswith(":warning:") and "out of date" in stale.text  # its key is gone

    for _ in range(3):  # daily sweeps within the same unused period: no second reminder
        await travel(h, h.clock() + 2 * DAY)
        await settled(h)
    assert [len(reminders(h, u, "`cd`")) for u in OWNERS] == [1, 1, 1]


async def test_let_it_expire_changes_nothing_and_the_one_day_reminder_never_comes(h: Harness) -> None:
    expires_at = await expiring_key(h)
    await travel(h, expires_at - 7 * DAY + timedelta(seconds=1))
    await h.slack.wait_for(lambda s: reminders(h, OWNER, "expires"))
    reply = await click(h, OWNER, reminders(h, OWNER, "expires")[0], ActionId.NUDGE_LET_EXPIRE)
    assert "will expire <!date^" in reply.text
    await travel(h, expires_at - DAY + timedelta(seconds=1))
    await h.slack.wait_for(lambda s: all(s.updates_of(d.answer["channel"], d.answer["ts"]) for u in OWNERS for d in reminders(h, u, "expires")))
    await settled(h)
    assert [len(reminders(h, u, "expires")) for u in OWNERS] == [1, 1, 1]
    assert "chose to let key `ci`" in (await h.as_owner("audit payments")).text

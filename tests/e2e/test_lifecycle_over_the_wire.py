"""The key lifecycle over Slack's wire format and the verify API (DESIGN.md §5.1): create with an expiry
and a note, show, expiry, disable, enable, roll with a grace period, the org policy — with time travel
through an expiry and the end of a grace period (the harness's ``ShiftedClock``), the verify codes
``EXPIRED`` / ``DISABLED`` and ``retiring_at``, the DMs to the other owners, the audit sentences, and a
private message that says what to type for every refused line."""

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.shell.driver import Reply
from tests.e2e.conftest import OWNER, Harness

KEY_RE = re.compile(r"kb_[A-Za-z0-9]{10}_[A-Za-z0-9]{28}")
SECOND_OWNER = "UOWNER02"
PROJECT_OWNER = "UPOWNER1"
READER = "UREADER1"


async def _world(h: Harness) -> None:
    """Project `payments` with a second org owner, a project owner and a read-only member."""
    for text in (
        "project create payments",
        f"grant <@{SECOND_OWNER}> owner",
        f"grant <@{PROJECT_OWNER}> owner payments",
        f"grant <@{READER}> read-only payments",
    ):
        assert not _refused(await h.as_owner(text)), text


def _refused(reply: Reply) -> bool:
    return reply.text.startswith(":warning:")


def _private(reply: Reply) -> Reply:
    assert reply.status == 200 and reply.message["response_type"] == "ephemeral", reply
    return reply


async def _secret(h: Harness, text: str, user: str = OWNER) -> str:
    reply = _private(await h.cmd(user, text))
    [secret] = set(KEY_RE.findall(reply.text))
    assert reply.text.count(secret) == 1, reply.text
    return secret


async def _verify(h: Harness, key: str) -> dict[str, Any]:
    async with h.session.post(f"{h.base_url}/v1/keys/verify", json={"key": key}) as response:
        assert response.status == 200
        answer: dict[str, Any] = json.loads(await response.read())
        return answer


def _at(answer: dict[str, Any], field: str) -> datetime:
    return datetime.fromisoformat(answer[field])


async def test_a_key_created_with_an_expiry_and_a_note_shows_both_and_verifies_with_its_expiry(
    harness: Harness,
) -> None:
    await _world(harness)
    key = await _secret(harness, "create payments ci expires 2030-06-30 note deploys   <!channel> `web` & more")
    answer = await _verify(harness, key)
    assert answer["valid"] is True and answer["expires_at"] == "2030-06-30T23:59:59+00:00"
    assert "retiring_at" not in answer

    show = _private(await harness.cmd(PROJECT_OWNER, "show payments ci"))
    assert "*Note:* deploys ‹!channel› 'web' & more" in show.text and "<!channel>" not in show.text
    assert "*Status:* active, expires <!date^" in show.text and f"*Created* by <@{OWNER}>" in show.text
    assert f"{key[:14]}…{key[-4:]}" in show.text and key not in show.text
    await harness.outbox_drained()
    assert any("created key `ci`" in str(c.args["text"]) for c in harness.slack.dms_to(SECOND_OWNER))


async def test_time_travel_through_an_expiry_then_a_new_expiry_brings_the_key_back(harness: Harness) -> None:
    await _world(harness)
    key = await _secret(harness, "create payments ci expires 1d")
    expires_at = _at(await _verify(harness, key), "expires_at")
    assert (await _verify(harness, key))["valid"] is True

    harness.clock.shift(expires_at - datetime.now(UTC) + timedelta(seconds=1))
    assert await _verify(harness, key) == {"valid": False, "code": "EXPIRED"}
    assert ":x: *expired*" in (await harness.as_owner("show payments ci")).text
    refused = _private(await harness.as_owner("enable payments ci"))
    assert _refused(refused) and "`/apikeys expiry payments ci 30d`" in refused.text
    refused = _private(await harness.as_owner("roll payments ci"))
    assert _refused(refused) and "expired" in refused.text

    changed = _private(await harness.cmd(PROJECT_OWNER, "expiry payments ci 30d"))
    assert "now expires <!date^" in changed.text and "other owners get a DM" in changed.text
    answer = await _verify(harness, key)
    assert answer["valid"] is True and _at(answer, "expires_at") > harness.clock()
    audit = (await harness.as_owner("audit payments")).text
    assert f"<@{PROJECT_OWNER}> set key `ci`" in audit and "to expire <!date^" in audit


async def test_disable_refuses_the_key_at_once_and_enable_brings_it_back_at_once(harness: Harness) -> None:
    await _world(harness)
    key = await _secret(harness, "create payments ci")
    assert (await _verify(harness, key))["valid"] is True

    disabled = _private(await harness.as_owner("disable payments ci"))
    assert "Disabled key `ci`" in disabled.text
    assert await _verify(harness, key) == {"valid": False, "code": "DISABLED"}
    listing = (await harness.as_owner("list payments")).text
    assert re.search(r"\*ci\*   `kb_\w+_…\w{4}`\ncreated by [^\n]+\n:no_entry: \*disabled\*", listing), listing
    assert "*default*" in listing  # the others are still listed, unmarked
    again = _private(await harness.as_owner("disable payments ci"))
    assert "already disabled. Nothing changed." in again.text
    refused = _private(await harness.as_owner("roll payments ci"))
    assert _refused(refused) and "`/apikeys enable payments ci`" in refused.text

    enabled = _private(await harness.cmd(SECOND_OWNER, "enable payments ci"))
    assert "Enabled key `ci`" in enabled.text
    assert (await _verify(harness, key))["valid"] is True
    await harness.outbox_drained()
    dms = [str(c.args["text"]) for c in harness.slack.dms_to(PROJECT_OWNER)]
    assert any(f"<@{OWNER}> disabled key `ci`" in dm for dm in dms)
    assert any(f"<@{SECOND_OWNER}> enabled key `ci`" in dm for dm in dms)
    assert not any("disabled key" in str(c.args["text"]) for c in harness.slack.dms_to(OWNER))  # the actor
    audit = (await harness.as_owner("audit payments")).text
    assert f"<@{OWNER}> disabled key `ci`" in audit and f"<@{SECOND_OWNER}> enabled key `ci`" in audit


async def test_a_roll_shows_the_new_secret_once_and_the_old_one_works_until_the_grace_ends(harness: Harness) -> None:
    await _world(harness)
    old = await _secret(harness, "create payments ci")
    new = await _secret(harness, "roll payments ci grace 2h", user=PROJECT_OWNER)
    assert new != old and new[:14] != old[:14]  # a new key id too

    old_answer, new_answer = await _verify(harness, old), await _verify(harness, new)
    assert old_answer["valid"] is True and new_answer["valid"] is True and "retiring_at" not in new_answer
    retiring_at = _at(old_answer, "retiring_at")
    assert timedelta(hours=1, minutes=59) < retiring_at - harness.clock() <= timedelta(hours=2)

    again = _private(await harness.as_owner("roll payments ci"))
    assert _refused(again) and f"until {retiring_at:%Y-%m-%d %H:%M} UTC" in again.text
    show = (await harness.as_owner("show payments ci")).text
    assert f"{new[:14]}…{new[-4:]}" in show and "old secret retiring until <!date^" in show

    harness.clock.shift(retiring_at - datetime.now(UTC) + timedelta(seconds=1))
    assert await _verify(harness, old) == {"valid": False, "code": "EXPIRED"}
    assert (await _verify(harness, new))["valid"] is True
    assert "retiring" not in (await harness.as_owner("show payments ci")).text
    newest = await _secret(harness, "roll payments ci grace 0")
    assert await _verify(harness, new) == {"valid": False, "code": "EXPIRED"}  # no grace: at once
    assert (await _verify(harness, newest))["valid"] is True
    await harness.outbox_drained()
    assert any(
        f"<@{PROJECT_OWNER}> rolled key `ci`" in str(c.args["text"]) and "old secret works until" in str(c.args["text"])
        for c in harness.slack.dms_to(OWNER)
    )
    audit = (await harness.as_owner("audit payments")).text
    assert "rolled key `ci`" in audit and "the old secret stopped working at once" in audit


async def test_the_policy_is_seen_by_owners_set_by_org_owners_and_bounds_new_keys(harness: Harness) -> None:
    await _world(harness)
    shown = _private(await harness.cmd(PROJECT_OWNER, "policy"))
    assert "`stale-after` *90d*" in shown.text and "Only organization owners can change it." in shown.text
    assert _refused(await harness.cmd(READER, "policy"))
    refused = _private(await harness.cmd(PROJECT_OWNER, "policy max-lifetime 30d"))
    assert _refused(refused) and "organization owners" in refused.text

    changed = _private(await harness.as_owner("policy max-lifetime 30d"))
    assert "Changed `max-lifetime`" in changed.text and "`max-lifetime` *30d*" in changed.text
    too_long = _private(await harness.as_owner("create payments ci"))
    assert _refused(too_long) and "at most 30d" in too_long.text and "`expires 30d`" in too_long.text
    key = await _secret(harness, "create payments ci expires 2w")
    assert (await _verify(harness, key))["valid"] is True
    assert _refused(await harness.as_owner("expiry payments ci never"))
    await harness.outbox_drained()
    assert any(
        "changed the key policy" in str(c.args["text"]) and "`max-lifetime` is now `30d`" in str(c.args["text"])
        for c in harness.slack.dms_to(SECOND_OWNER)
    )
    assert not any("changed the key policy" in str(c.args["text"]) for c in harness.slack.dms_to(PROJECT_OWNER))


async def test_members_below_owner_cannot_touch_the_lifecycle_and_nothing_changes(harness: Harness) -> None:
    await _world(harness)
    key = await _secret(harness, "create payments ci")
    for text in ("show payments ci", "disable payments ci", "enable payments ci", "roll payments ci",
                 "expiry payments ci 1d", "create payments other expires 1d", "policy leak-action alert"):
        reply = _private(await harness.cmd(READER, text))
        assert _refused(reply) and "owner" in reply.text, (text, reply.text)
    answer = await _verify(harness, key)
    assert answer["valid"] is True and answer["expires_at"] is None
    listing = (await harness.as_owner("list payments")).text
    assert "*ci*   `kb_" in listing and "\nactive\n" in listing and "other" not in listing


async def test_every_wrong_lifecycle_line_gets_a_private_message_saying_what_to_type(harness: Harness) -> None:
    await _world(harness)
    await _secret(harness, "create payments ci")
    cases = {
        "create payments x expires yesterday": "`30d`",
        "create payments x expires 2001-01-01": "in the past",
        f"create payments x note {'n' * 201}": "at most 200 characters",
        "expiry payments ci 2027-02-30": "not a real date",
        "expiry payments ci 5x": "`never`",
        "roll payments ci grace 8d": "at most 7 days (`7d`)",
        "roll payments ci grace soon": "`12h`",
        "roll payments ci later": "`grace 2h`",
        "policy lifetime 30d": "`/apikeys policy max-lifetime 90d`",
        "policy leak-action panic": "`disable` (switch a leaked key off) or `alert`",
        "policy stale-after none": "`/apikeys policy stale-after 90d`",
        "policy max-lifetime": "needs a value",
        "show payments nope": "No key named `nope` in `payments`",
        "disable payments": "Usage: `/apikeys disable <project> <key-name>`",
    }
    before = (await harness.as_owner("list payments")).text
    for text, says in cases.items():
        reply = _private(await harness.as_owner(text))
        assert _refused(reply) and says in reply.text, (text, reply.text)
    assert (await harness.as_owner("list payments")).text == before
    assert "*Status:* active" in (await harness.as_owner("show payments ci")).text

"""A key pasted in Slack, over the wire: signed ``message`` events (a channel, a thread, an edit, a code
block, an attachment) posted to ``/slack/events`` against a real keybot; the key is disabled (or only
alerted on), its owners DMed with the channel, poster, permalink and buttons, the poster warned privately.
Near-misses, split keys, another workspace's keys and keybot's own messages change nothing."""

import json
import logging
from datetime import timedelta
from typing import Any

import pytest

from bot.domain.keys import CHECKSUM_LEN, checksum
from bot.shell.wire import APP_ID, event_body, post_signed
from bot.slack.codec import ActionId
from tests.e2e.conftest import OWNER, SIGNING_SECRET, TEAM, Harness
from tests.e2e.test_secret_never_leaks import KEY_RE, leaks

SECOND_OWNER = "UOWNER02"
POSTER = "UPOSTER1"
CHANNEL = "C0GENERAL"
TS = "1700000000.000100"


async def send(harness: Harness, event: dict[str, Any], *, team: str = TEAM) -> None:
    """Post one message event as Slack does, and wait until keybot handled it and sent its DMs."""
    body = event_body(event=event, team_id=team)
    status, _ = await post_signed(
        harness.session, harness.driver.events_url, body, signing_secret=SIGNING_SECRET, content_type="application/json"
    )
    assert status == 200
    assert harness.runtime.watch is not None
    await harness.runtime.watch.idle()
    await harness.outbox_drained()


def message(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "message", "channel": CHANNEL, "user": POSTER, "text": text, "ts": TS, **extra}


async def new_key(harness: Harness) -> str:
    await harness.as_owner(f"grant <@{SECOND_OWNER}> owner")
    await harness.as_owner("project create payments")
    reply = await harness.as_owner("create payments ci")
    [secret] = set(KEY_RE.findall(reply.text))
    await harness.outbox_drained()
    return secret


async def verify(harness: Harness, key: str) -> dict[str, object]:
    async with harness.session.post(f"{harness.base_url}/v1/keys/verify", json={"key": key}) as response:
        answer: dict[str, object] = await response.json()
        return answer


def leak_dms(harness: Harness, user: str) -> list[dict[str, Any]]:
    return [c.args for c in harness.slack.dms_to(user) if "posted key" in str(c.args.get("text"))]


def warnings(harness: Harness) -> list[dict[str, Any]]:
    return [c.args for c in harness.slack.calls_to("chat.postEphemeral")]


def buttons(dm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["action_id"]: e for b in dm["blocks"] if b["type"] == "actions" for e in b["elements"]}


async def test_a_live_key_pasted_in_a_channel_is_disabled_its_owners_dmed_and_the_poster_warned(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = await new_key(harness)
    assert (await verify(harness, secret))["valid"] is True  # cached as valid: the disable must still win
    await send(harness, message(f"here is the prod key {secret} use it"))
    assert await verify(harness, secret) == {"valid": False, "code": "DISABLED"}
    for owner in (OWNER, SECOND_OWNER):
        [dm] = leak_dms(harness, owner)
        assert f"<@{POSTER}>" in dm["text"] and f"<#{CHANNEL}>" in dm["text"]
        assert "`ci`" in dm["text"] and "`payments`" in dm["text"] and "keybot disabled it" in dm["text"]
        assert f"https://fake.slack.com/archives/{CHANNEL}/p" in dm["text"]
        assert set(buttons(dm)) == {ActionId.LEAK_ROLL, ActionId.LEAK_ENABLE, ActionId.LEAK_DELETE}
    [warning] = warnings(harness)
    assert warning["channel"] == CHANNEL and warning["user"] == POSTER and "delete the message" in warning["text"]
    assert "thread_ts" not in warning
    audit = await harness.as_owner("audit payments")
    assert "keybot disabled key `ci`" in audit.text

    stored = b"".join(p.read_bytes() for p in harness.db_path.parent.iterdir() if p.name.startswith("keybot.db"))
    calls = json.dumps([c.args for c in harness.slack.calls])
    places = {"database": stored.decode("latin-1"), "logs": caplog.text, "web api": calls}
    assert leaks(places, secrets=[secret]) == []


async def test_a_key_pasted_in_a_thread_is_found_and_the_warning_goes_to_that_thread(harness: Harness) -> None:
    secret = await new_key(harness)
    await send(harness, message(secret, ts="1700000001.000200", thread_ts=TS))
    assert (await verify(harness, secret))["code"] == "DISABLED"
    [warning] = warnings(harness)
    assert warning["thread_ts"] == TS


async def test_a_key_added_by_an_edit_is_found_once(harness: Harness) -> None:
    secret = await new_key(harness)
    await send(harness, message("the key is coming"))
    assert leak_dms(harness, OWNER) == []
    edited = {
        "type": "message",
        "subtype": "message_changed",
        "channel": CHANNEL,
        "hidden": True,
        "ts": "1700000002.000300",
        "message": {"type": "message", "user": POSTER, "text": f"the key is {secret}", "ts": TS, "edited": {"user": POSTER, "ts": "1700000002.000300"}},
        "previous_message": {"type": "message", "user": POSTER, "text": "the key is coming", "ts": TS},
    }
    await send(harness, edited)
    assert (await verify(harness, secret))["code"] == "DISABLED"
    assert len(leak_dms(harness, OWNER)) == 1
    await send(harness, edited)  # edited again, or Slack sends the event again: handled already
    assert len(leak_dms(harness, OWNER)) == 1 and len(warnings(harness)) == 1


@pytest.mark.parametrize("where", ["code block", "rich text only", "attachment"])
async def test_a_key_in_a_code_block_or_an_attachment_is_found(harness: Harness, where: str) -> None:
    secret = await new_key(harness)
    if where == "code block":
        event = message(f"```{secret}```")
    elif where == "rich text only":
        code = {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": f"KEY={secret}"}]}
        event = message("", blocks=[{"type": "rich_text", "block_id": "b1", "elements": [code]}])
    else:
        event = message("see attached", attachments=[{"fallback": "config", "text": f"export KEY={secret}"}])
    await send(harness, event)
    assert (await verify(harness, secret))["code"] == "DISABLED"
    assert len(leak_dms(harness, OWNER)) == 1


async def test_a_key_split_across_lines_is_not_detected(harness: Harness) -> None:
    secret = await new_key(harness)
    await send(harness, message(f"{secret[:20]}\n{secret[20:]}"))
    assert (await verify(harness, secret))["valid"] is True
    assert leak_dms(harness, OWNER) == [] and warnings(harness) == []


async def test_a_key_at_the_end_of_a_message_as_long_as_slack_allows_is_found(harness: Harness) -> None:
    """Slack takes 40,000 characters of text and sends them again as rich text in ``blocks``: an event of
    ~80 KB, over the 64 KiB other routes take, is read whole."""
    secret = await new_key(harness)
    text = "log line " * 4400 + f"KEY={secret}"
    assert len(text) < 40_000
    rich = {"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}]}
    assert len(event_body(event=message(text, blocks=[rich]), team_id=TEAM)) > 64 * 1024
    await send(harness, message(text, blocks=[rich]))
    assert (await verify(harness, secret)) == {"valid": False, "code": "DISABLED"}
    assert len(leak_dms(harness, OWNER)) == 1


async def test_an_event_over_a_mebibyte_is_refused_413_unread(harness: Harness) -> None:
    body = event_body(event=message("x" * (1024 * 1024)), team_id=TEAM)
    status, _ = await post_signed(
        harness.session, harness.driver.events_url, body, signing_secret=SIGNING_SECRET, content_type="application/json"
    )
    assert status == 413


def wrong_secrets(secret: str, count: int, salt: int) -> list[str]:
    """Strings of ``secret``'s key id with other secrets and valid checksums: guesses, for keybot's eyes."""
    body = secret[:-CHECKSUM_LEN]
    guesses = [f"{body[:-3]}{salt:x}{i:02d}"[: len(body)] for i in range(count)]
    return [guess + checksum(guess) for guess in guesses]


async def test_wrong_secrets_pasted_in_slack_cost_argon2_within_the_key_ids_failure_budget(harness: Harness) -> None:
    """Anyone in a channel can paste strings: five messages of 20 wrong secrets for one real key id cost
    argon2 at most the verify API's budget (20 per key id per minute, SECURITY.md), and a real key
    verified lately is still found after them (no argon2: the verifier knows it)."""
    secret = await new_key(harness)
    assert (await verify(harness, secret))["valid"] is True
    lane = harness.runtime.verify_hasher
    before = lane.completed
    for n in range(5):
        await send(harness, message(" ".join(wrong_secrets(secret, 20, n)), ts=f"17000000{n:02d}.000100"))
    assert lane.completed - before <= 20
    assert (await verify(harness, secret))["valid"] is True and leak_dms(harness, OWNER) == []
    await send(harness, message(f"oops {secret}", ts="1700000099.000100"))
    assert len(leak_dms(harness, OWNER)) == 1
    assert "keybot disabled key `ci`" in (await harness.as_owner("audit payments")).text
    assert lane.completed - before <= 20
    # its key id over budget, the disabled key's next first-time check answers without argon2 (NOT_FOUND)
    assert (await verify(harness, secret))["valid"] is False


async def test_near_misses_change_nothing_and_dm_nobody(harness: Harness) -> None:
    secret = await new_key(harness)
    body = secret[:-CHECKSUM_LEN]
    bad_checksum = body + ("A" * CHECKSUM_LEN if not secret.endswith("A" * CHECKSUM_LEN) else "B" * CHECKSUM_LEN)
    wrong_secret = body[:-1] + ("x" if body[-1] != "x" else "y")
    wrong_secret += checksum(wrong_secret)
    await send(harness, message(f"{bad_checksum} and {wrong_secret}"))
    assert (await verify(harness, secret))["valid"] is True
    assert leak_dms(harness, OWNER) == [] and warnings(harness) == []
    assert harness.slack.calls_to("chat.getPermalink") == []


async def test_a_key_pasted_in_another_workspace_is_ignored(harness: Harness) -> None:
    secret = await new_key(harness)
    await send(harness, message(secret), team="T0OTHER")
    assert (await verify(harness, secret))["valid"] is True
    assert leak_dms(harness, OWNER) == [] and warnings(harness) == []


async def test_keybots_own_messages_are_ignored(harness: Harness) -> None:
    secret = await new_key(harness)
    await send(harness, message(secret, user="UKEYBOT", bot_id="BKEYBOT"))
    bot_message = {k: v for k, v in message(secret).items() if k != "user"}
    await send(harness, {**bot_message, "bot_id": "BKEYBOT", "app_id": APP_ID, "subtype": "bot_message"})
    assert (await verify(harness, secret))["valid"] is True
    assert leak_dms(harness, OWNER) == []


async def test_with_leak_action_alert_the_key_keeps_working_and_the_dm_offers_no_enable(harness: Harness) -> None:
    secret = await new_key(harness)
    await harness.as_owner("policy leak-action alert")
    await send(harness, message(secret))
    assert (await verify(harness, secret))["valid"] is True
    [dm] = leak_dms(harness, SECOND_OWNER)
    assert "It still works" in dm["text"]
    assert set(buttons(dm)) == {ActionId.LEAK_ROLL, ActionId.LEAK_DELETE}
    assert len(warnings(harness)) == 1


async def test_the_dm_buttons_recheck_the_clickers_role_at_click_time(harness: Harness) -> None:
    secret = await new_key(harness)
    await send(harness, message(secret))
    [dm] = leak_dms(harness, SECOND_OWNER)
    await harness.as_owner(f"revoke <@{SECOND_OWNER}>")
    refused = await harness.driver.click(SECOND_OWNER, buttons(dm)[ActionId.LEAK_ENABLE])
    assert "Only" in refused.text or "No project" in refused.text
    assert (await verify(harness, secret))["code"] == "DISABLED"
    [owner_dm] = leak_dms(harness, OWNER)
    enabled = await harness.driver.click(OWNER, buttons(owner_dm)[ActionId.LEAK_ENABLE])
    assert "enabled" in enabled.text.lower()
    assert (await verify(harness, secret))["valid"] is True
    rolled = await harness.driver.click(OWNER, buttons(owner_dm)[ActionId.LEAK_ROLL])
    [new_secret] = set(KEY_RE.findall(rolled.text))
    assert new_secret != secret
    asked = await harness.driver.click(OWNER, buttons(owner_dm)[ActionId.LEAK_DELETE])
    assert asked.button(ActionId.DELETE_CONFIRM.value)


async def test_a_secret_leaked_during_an_earlier_rolls_grace_is_rolled_away_at_once(harness: Harness) -> None:
    """Rolled with a week's grace, then a secret of it is pasted (leak-action alert: it keeps working):
    the DM's Roll (no grace) stops both the leaked secret and every older one at once; a roll with a
    grace during the running one is refused with how to roll at once."""
    await harness.as_owner("policy leak-action alert")
    old = await new_key(harness)
    [current] = set(KEY_RE.findall((await harness.as_owner("roll payments ci grace 7d")).text))
    await send(harness, message(f"oops {current}"))
    [dm] = leak_dms(harness, SECOND_OWNER)
    assert "grace 0" in dm["text"]
    refused = await harness.as_owner("roll payments ci")
    assert "`/apikeys roll payments ci grace 0`" in refused.text and not KEY_RE.search(refused.text)
    rolled = await harness.driver.click(SECOND_OWNER, buttons(dm)[ActionId.LEAK_ROLL])
    [newest] = set(KEY_RE.findall(rolled.text))
    assert (await verify(harness, current))["valid"] is False
    assert (await verify(harness, old))["valid"] is False
    assert (await verify(harness, newest))["valid"] is True


async def test_with_leak_action_disable_enable_again_then_roll_retires_the_leaked_old_secret(harness: Harness) -> None:
    old = await new_key(harness)
    [current] = set(KEY_RE.findall((await harness.as_owner("roll payments ci grace 7d")).text))
    await send(harness, message(f"oops {old}"))  # the old secret, still in its grace
    assert await verify(harness, current) == {"valid": False, "code": "DISABLED"}
    [dm] = leak_dms(harness, SECOND_OWNER)
    await harness.driver.click(SECOND_OWNER, buttons(dm)[ActionId.LEAK_ENABLE])
    rolled = await harness.driver.click(SECOND_OWNER, buttons(dm)[ActionId.LEAK_ROLL])
    [newest] = set(KEY_RE.findall(rolled.text))
    assert (await verify(harness, old))["valid"] is False and (await verify(harness, current))["valid"] is False
    assert (await verify(harness, newest))["valid"] is True


async def test_the_audit_log_says_where_a_key_leaked_and_what_keybot_did(harness: Harness) -> None:
    await harness.as_owner("policy leak-action alert")
    secret = await new_key(harness)
    await send(harness, message(f"oops {secret}"))
    [line] = [ln for ln in (await harness.as_owner("audit payments")).text.splitlines() if "leaked" in ln]
    assert "found key `ci`" in line and f"in {CHANNEL}" in line and "it still works (leak-action `alert`)" in line
    assert "key leaked `ci`" not in line and "(alerted)" not in line
    await harness.as_owner("policy leak-action disable")
    await harness.as_owner("create payments web")
    [web] = set(KEY_RE.findall((await harness.as_owner("roll payments web grace 0")).text))
    await send(harness, message(f"again {web}", ts="1700000001.000100"))
    [line] = [ln for ln in (await harness.as_owner("audit payments")).text.splitlines() if "disabled key `web`" in ln]
    assert f"leaked in Slack by {POSTER} in {CHANNEL}" in line


async def test_an_old_leak_dms_buttons_never_act_on_a_new_key_made_with_the_leaked_ones_name(harness: Harness) -> None:
    secret = await new_key(harness)
    await send(harness, message(f"oops {secret}"))
    [dm] = leak_dms(harness, SECOND_OWNER)
    asked = await harness.as_owner("delete payments ci")
    await harness.driver.click(OWNER, asked.button(ActionId.DELETE_CONFIRM.value), response_url=asked.response_url)
    harness.clock.shift(timedelta(seconds=5))
    [fresh] = set(KEY_RE.findall((await harness.as_owner("create payments ci")).text))
    for action in (ActionId.LEAK_ROLL, ActionId.LEAK_ENABLE, ActionId.LEAK_DELETE):
        refused = await harness.driver.click(SECOND_OWNER, buttons(dm)[action])
        assert "is another key now" in refused.text and not KEY_RE.search(refused.text), refused.text
    assert (await verify(harness, fresh))["valid"] is True

"""The App Home over the wire: keys unused for the stale period with a Disable… button that re-checks the
clicker's role, and the Home of a user who opened it refreshed after someone else's change that concerns
them (and no one else's)."""

import json
from datetime import timedelta
from typing import Any

from bot.shell.fakeslack import Call
from bot.shell.wire import block_actions_body, event_body
from bot.slack import home, modals
from tests.e2e.conftest import OWNER, TEAM, Harness
from tests.e2e.test_home_and_modals import KEY_RE, checked, post, submit, view_calls

PROJECT_OWNER = "UPOWNER1"
READER = "UREADER1"


async def open_home(h: Harness, user: str) -> dict[str, Any]:
    before = len(publishes_to(h, user))
    event = event_body(event={"type": "app_home_opened", "user": user, "tab": "home"}, team_id=TEAM)
    assert (await post(h, event, json_body=True))[0] == 200
    calls = await h.slack.wait_for(lambda s: publishes_to(h, user)[before:], timeout=10)
    return checked(calls[-1].args["view"])


def publishes_to(h: Harness, user: str) -> list[Call]:
    return [c for c in view_calls(h, "views.publish") if c.args.get("user_id") == user]


async def click_on_home(h: Harness, user: str, action_id: str, value: str) -> None:
    body = block_actions_body(
        user_id=user, team_id=TEAM, action_id=action_id, value=value, response_url="",
        container={"type": "view", "view_id": f"VHOME{user}"},
    )
    assert (await post(h, body))[0] == 200


def text_of(view: dict[str, Any]) -> str:
    return json.dumps(view, ensure_ascii=False)


async def test_keys_unused_for_the_stale_period_are_on_the_home_with_a_disable_button(harness: Harness) -> None:
    await harness.as_owner("project create payments")
    await harness.as_owner("create payments fresh")
    fresh_home = await open_home(harness, OWNER)
    assert "Keys unused for 90 days or more:* none." in text_of(fresh_home)
    harness.clock.shift(timedelta(days=91))
    stale_home = await open_home(harness, OWNER)
    text = text_of(stale_home)
    assert "Keys unused for 90 days or more* (2)" in text and "`default` in `payments`" in text
    assert "never used since" in text
    buttons = [b["accessory"] for b in stale_home["blocks"] if b.get("accessory", {}).get("action_id") == home.HOME_DISABLE]
    assert [json.loads(b["value"])[:2] for b in buttons] == [["payments", "default"], ["payments", "fresh"]]
    await click_on_home(harness, OWNER, home.HOME_DISABLE, buttons[0]["value"])
    refreshed = await harness.slack.wait_for(
        lambda s: [c for c in publishes_to(harness, OWNER) if "is disabled" in text_of(c.args["view"])], timeout=10
    )
    after = checked(refreshed[-1].args["view"])
    assert "Keys unused for 90 days or more* (1)" in text_of(after) and "`fresh` in `payments`" in text_of(after)
    assert "disabled" in (await harness.as_owner("show payments default")).text


async def test_a_disable_click_from_someone_who_is_no_longer_an_owner_is_refused_on_their_home(harness: Harness) -> None:
    await harness.as_owner("project create payments")
    await harness.as_owner(f"grant <@{READER}> read-only payments")
    harness.clock.shift(timedelta(days=91))
    await click_on_home(harness, READER, home.HOME_DISABLE, home.key_value("payments", "default"))
    [call] = await harness.slack.wait_for(lambda s: publishes_to(harness, READER), timeout=10)
    assert "Only" in text_of(call.args["view"]) and ":warning:" in text_of(call.args["view"])
    assert "active" in (await harness.as_owner("show payments default")).text


async def test_another_owners_change_refreshes_the_home_of_an_owner_who_opened_it(harness: Harness) -> None:
    await harness.as_owner("project create payments")
    await harness.as_owner(f"grant <@{PROJECT_OWNER}> owner payments")
    await harness.as_owner(f"grant <@{READER}> read-only payments")
    opened = await open_home(harness, OWNER)
    assert "`payments` — 1 key" in text_of(opened)
    await harness.cmd(PROJECT_OWNER, "create payments theirs")
    refreshed = await harness.slack.wait_for(
        lambda s: [c for c in publishes_to(harness, OWNER) if "2 keys" in text_of(c.args["view"])], timeout=15
    )
    assert "theirs" not in json.dumps([c.args for c in refreshed])  # counts only: no key details needed
    await harness.outbox_drained()
    assert not publishes_to(harness, PROJECT_OWNER)  # never opened the Home
    assert not publishes_to(harness, READER)  # not concerned, and never opened it



async def test_an_owner_who_loses_the_role_between_opening_and_submitting_a_roll_is_refused(harness: Harness) -> None:
    await harness.as_owner("project create payments")
    await harness.as_owner(f"grant <@{PROJECT_OWNER}> owner payments")
    before = len(view_calls(harness, "views.open"))
    await click_on_home(harness, PROJECT_OWNER, home.HOME_ROLL, home.key_value("payments", "default"))
    view = checked((await harness.slack.wait_for(lambda s: view_calls(harness, "views.open")[before:]))[0].args["view"])
    shown = (await harness.as_owner("show payments default")).text
    await harness.as_owner(f"revoke <@{PROJECT_OWNER}> payments")
    grace = {modals.GRACE: {modals.GRACE: {"type": "static_select", "selected_option": {"value": "0"}}}}
    answer = await submit(harness, PROJECT_OWNER, view, grace)
    assert answer["response_action"] == "errors" and "payments" in answer["errors"][modals.GRACE]
    assert not KEY_RE.search(json.dumps(answer))
    assert (await harness.as_owner("show payments default")).text == shown  # the same secret, untouched


async def test_an_access_request_waits_on_the_owners_home_and_approve_there_refreshes_it(harness: Harness) -> None:
    writer = "UWRITER1"
    await harness.as_owner("project create payments")
    await harness.as_owner(f"grant <@{writer}> read-write payments")
    assert "Asked for a key" in (await harness.cmd(writer, "request payments for the nightly export")).text
    await harness.outbox_drained()
    owner_home = await open_home(harness, OWNER)
    text = text_of(owner_home)
    assert "Requests waiting for your decision* (1)" in text and "the nightly export" in text
    [approve] = [e for b in owner_home["blocks"] if b["type"] == "actions" for e in b["elements"]
                 if e["action_id"] == "request_approve"]
    assert "Requests waiting" not in text_of(await open_home(harness, writer))  # nobody approves their own
    await click_on_home(harness, OWNER, approve["action_id"], approve["value"])
    refreshed = await harness.slack.wait_for(
        lambda s: [c for c in publishes_to(harness, OWNER) if "Approved" in text_of(c.args["view"])], timeout=10
    )
    assert "Requests waiting" not in text_of(checked(refreshed[-1].args["view"]))
    await harness.outbox_drained()
    reveal = [c for c in harness.slack.dms_to(writer) if "Reveal" in json.dumps(c.args.get("blocks"))]
    assert len(reveal) == 1 and "kb_" not in json.dumps(reveal[0].args)


def home_buttons(view: dict[str, Any], action_id: str) -> list[dict[str, Any]]:
    found = [b["accessory"] for b in view["blocks"] if b.get("accessory", {}).get("action_id") == action_id]
    found += [e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == action_id]
    return found


async def verdict(h: Harness, key: str) -> dict[str, Any]:
    async with h.session.post(f"{h.base_url}/v1/keys/verify", json={"key": key}) as response:
        answer: dict[str, Any] = await response.json()
        return answer


async def test_a_stale_homes_disable_never_touches_a_new_key_made_with_the_old_ones_name(harness: Harness) -> None:
    await harness.as_owner("project create payments")
    await harness.as_owner("create payments ci")
    harness.clock.shift(timedelta(days=91))
    [button] = [b for b in home_buttons(await open_home(harness, OWNER), home.HOME_DISABLE) if '"ci"' in b["value"]]
    asked = await harness.as_owner("delete payments ci")
    await harness.driver.click(OWNER, asked.button("delete_confirm"), response_url=asked.response_url)
    [fresh] = set(KEY_RE.findall((await harness.as_owner("create payments ci")).text))
    await click_on_home(harness, OWNER, home.HOME_DISABLE, button["value"])
    await harness.slack.wait_for(
        lambda s: [c for c in publishes_to(harness, OWNER) if "is another key now" in text_of(c.args["view"])], timeout=10
    )
    assert (await verdict(harness, fresh))["valid"] is True


async def test_a_stale_homes_extend_leaves_a_key_made_permanent_meanwhile_permanent(harness: Harness) -> None:
    await harness.as_owner("project create payments")
    [key] = set(KEY_RE.findall((await harness.as_owner("create payments ci expires 5d")).text))
    [button] = home_buttons(await open_home(harness, OWNER), home.HOME_EXTEND)
    await harness.as_owner("expiry payments ci never")
    await click_on_home(harness, OWNER, home.HOME_EXTEND, button["value"])
    await harness.slack.wait_for(
        lambda s: [c for c in publishes_to(harness, OWNER) if "nothing to extend" in text_of(c.args["view"])], timeout=10
    )
    assert (await verdict(harness, key))["expires_at"] is None

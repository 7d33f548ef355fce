"""The App Home, the create and roll modals and the "Create API key" shortcut, over Slack's wire format:
events, shortcuts, view submissions and menu suggestions posted signed to the real app, the views it
sends checked with slack-sdk's models and against the 100-block limit, and the secret found only in
the one ``response_action: update`` that answers its submission."""

import json
import re
from typing import Any

from slack_sdk.models.views import View

from bot.shell.fakeslack import Call
from bot.shell.wire import (
    block_actions_body,
    block_suggestion_body,
    event_body,
    post_signed,
    shortcut_body,
    slash_command_body,
    view_body,
)
from bot.slack import home, modals
from tests.e2e.conftest import OWNER, SIGNING_SECRET, TEAM, Harness

KEY_RE = re.compile(r"kb_[A-Za-z0-9]{10}_[A-Za-z0-9]{28}")
PROJECT_OWNER = "UPOWNER1"


async def post(h: Harness, body: bytes, *, json_body: bool = False) -> tuple[int, dict[str, Any]]:
    status, raw = await post_signed(
        h.session,
        f"{h.base_url}/slack/events",
        body,
        signing_secret=SIGNING_SECRET,
        content_type="application/json" if json_body else "application/x-www-form-urlencoded",
    )
    return status, json.loads(raw) if raw.strip() else {}


def checked(view: dict[str, Any]) -> dict[str, Any]:
    """``view``, after slack-sdk parsed and validated it and its blocks, within Slack's 100 blocks."""
    assert len(view["blocks"]) <= 100
    parsed = View(**view)
    parsed.validate_json()
    assert len(parsed.blocks) == len(view["blocks"])
    return view


def view_calls(h: Harness, method: str) -> list[Call]:
    return [c for c in h.slack.calls_to(method) if c.delivered]


async def opened_view(h: Harness, before: int) -> dict[str, Any]:
    calls = await h.slack.wait_for(lambda s: view_calls(h, "views.open")[before:])
    return checked(calls[0].args["view"])


def values(*, project: str | None, name: str, expiry: str | None = "30d", note: str | None = None) -> dict[str, Any]:
    chosen = {"type": "static_select", "selected_option": {"value": project} if project else None}
    return {
        modals.PROJECT: {modals.PROJECT: chosen},
        modals.NAME: {modals.NAME: {"type": "plain_text_input", "value": name}},
        modals.EXPIRY: {modals.EXPIRY: {"type": "static_select", "selected_option": {"value": expiry} if expiry else None}},
        modals.NOTE: {modals.NOTE: {"type": "plain_text_input", "value": note}},
    }


async def submit(h: Harness, user: str, view: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    status, answer = await post(h, view_body(kind="view_submission", user_id=user, team_id=TEAM, view=view, values=state))
    assert status == 200
    return answer


async def shortcut_modal(h: Harness, user: str = OWNER) -> dict[str, Any]:
    before = len(view_calls(h, "views.open"))
    status, _ = await post(h, shortcut_body(user_id=user, team_id=TEAM, callback_id=modals.CREATE_CALLBACK))
    assert status == 200
    return await opened_view(h, before)


def text_of(view: dict[str, Any]) -> str:
    return json.dumps(view, ensure_ascii=False)


async def test_the_shortcut_opens_a_create_modal_whose_submit_shows_the_secret_once(harness: Harness) -> None:
    await harness.as_owner("project create payments")
    view = await shortcut_modal(harness)
    assert "payments" in text_of(view) and view["callback_id"] == modals.CREATE_CALLBACK
    answer = await submit(harness, OWNER, view, values(project="payments", name="ci-deploy", note="for CI"))
    assert answer["response_action"] == "update"
    shown = checked(answer["view"])
    [secret] = KEY_RE.findall(text_of(shown))
    assert "will not be shown again" in text_of(shown)
    verdict = await harness.session.post(f"{harness.base_url}/v1/keys/verify", json={"key": secret})
    assert (await verdict.json())["valid"] is True
    listing = await harness.as_owner("list payments")
    assert "ci-deploy" in listing.text and secret not in listing.text
    await harness.runtime.home.settle()
    assert not view_calls(harness, "views.publish")  # no Home published to someone who never opened it
    surfaces = [c.args for m in ("views.open", "views.update", "views.publish") for c in view_calls(harness, m)]
    assert surfaces and secret not in json.dumps(surfaces) and secret[-28:] not in json.dumps(surfaces)
    assert secret not in json.dumps([c.args for c in harness.slack.calls])


async def test_a_taken_name_bad_characters_and_a_missing_project_are_shown_inline(harness: Harness) -> None:
    await harness.as_owner("project create payments")
    view = await shortcut_modal(harness)
    taken = await submit(harness, OWNER, view, values(project="payments", name="default"))
    assert taken["response_action"] == "errors" and "already exists" in taken["errors"][modals.NAME]
    bad = await submit(harness, OWNER, view, values(project=None, name="no spaces!", note=" "))
    assert bad["response_action"] == "errors"
    assert set(bad["errors"]) == {modals.PROJECT, modals.NAME}
    listing = await harness.as_owner("list payments")
    assert "1 key" in listing.text or listing.text.count("kb_") == 1


async def test_an_expiry_beyond_the_policy_is_not_offered_and_refused_inline(harness: Harness) -> None:
    await harness.as_owner("project create payments")
    await harness.as_owner("policy max-lifetime 30d")
    view = await shortcut_modal(harness)
    offered = [o["value"] for b in view["blocks"] if b.get("block_id") == modals.EXPIRY for o in b["element"]["options"]]
    assert offered == ["1w", "30d"]
    answer = await submit(harness, OWNER, view, values(project="payments", name="k1", expiry="never"))
    assert answer["response_action"] == "errors" and modals.EXPIRY in answer["errors"]


async def test_an_owner_who_loses_the_role_between_opening_and_submitting_is_refused(harness: Harness) -> None:
    await harness.as_owner("project create payments")
    await harness.as_owner(f"grant <@{PROJECT_OWNER}> owner payments")
    before = len(view_calls(harness, "views.open"))
    body = slash_command_body(text="create", user_id=PROJECT_OWNER, team_id=TEAM, response_url=harness.slack.response_url("c"))
    status, ack = await post(harness, body)
    assert status == 200 and ack == {}
    view = await opened_view(harness, before)
    await harness.as_owner(f"revoke <@{PROJECT_OWNER}> payments")
    answer = await submit(harness, PROJECT_OWNER, view, values(project="payments", name="mine"))
    assert answer["response_action"] == "errors" and modals.PROJECT in answer["errors"]
    assert "mine" not in (await harness.as_owner("list payments")).text


async def test_create_with_no_arguments_from_a_non_owner_says_why_privately(harness: Harness) -> None:
    body = slash_command_body(text="create", user_id="USTRANGE1", team_id=TEAM, response_url=harness.slack.response_url("c"))
    status, ack = await post(harness, body)
    assert status == 200 and ack["response_type"] == "ephemeral" and "own no project" in ack["text"]
    assert not view_calls(harness, "views.open")


async def test_the_home_shows_roles_owned_projects_and_expiring_keys_with_buttons(harness: Harness) -> None:
    await harness.as_owner("project create payments")
    created = await harness.as_owner("create payments soon expires 5d")
    [secret] = KEY_RE.findall(created.text)
    status, _ = await post(harness, event_body(event={"type": "app_home_opened", "user": OWNER, "tab": "home"}, team_id=TEAM), json_body=True)
    assert status == 200
    [call] = await harness.slack.wait_for(lambda s: view_calls(harness, "views.publish"))
    assert call.args["user_id"] == OWNER
    view = checked(call.args["view"])
    text = text_of(view)
    assert "organization owner" in text and "`payments` — 2 keys" in text and "`soon` in `payments`" in text
    buttons = [e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert {b["action_id"] for b in buttons} == {home.HOME_CREATE, home.HOME_ROLL, home.HOME_EXTEND}
    assert secret not in text and secret[-28:] not in text


async def test_roll_and_extend_from_the_home(harness: Harness) -> None:
    await harness.as_owner("project create payments")
    old = KEY_RE.findall((await harness.as_owner("create payments soon expires 5d")).text)[0]
    value = home.key_value("payments", "soon")
    click = block_actions_body(
        user_id=OWNER, team_id=TEAM, action_id=home.HOME_ROLL, value=value, response_url="",
        container={"type": "view", "view_id": "VHOME"},
    )
    assert (await post(harness, click))[0] == 200
    view = await opened_view(harness, 0)
    grace = {modals.GRACE: {modals.GRACE: {"type": "static_select", "selected_option": {"value": "0"}}}}
    answer = await submit(harness, OWNER, view, grace)
    assert answer["response_action"] == "update"
    [new] = KEY_RE.findall(text_of(checked(answer["view"])))
    assert new != old
    gone = await harness.session.post(f"{harness.base_url}/v1/keys/verify", json={"key": old})
    assert (await gone.json())["valid"] is False
    extend = block_actions_body(
        user_id=OWNER, team_id=TEAM, action_id=home.HOME_EXTEND, value=value, response_url="",
        container={"type": "view", "view_id": "VHOME"},
    )
    assert (await post(harness, extend))[0] == 200
    published = await harness.slack.wait_for(
        lambda s: [c for c in view_calls(harness, "views.publish") if "now expires" in text_of(c.args["view"])], timeout=10
    )
    assert "`soon`" in text_of(published[0].args["view"])
    shown = (await harness.as_owner("show payments soon")).text
    assert "expires" in shown
    assert new not in json.dumps([c.args for c in harness.slack.calls])


async def test_project_suggestions_list_only_the_projects_the_user_owns(harness: Harness) -> None:
    for name in ("payments", "payroll", "search"):
        await harness.as_owner(f"project create {name}")
    await harness.as_owner(f"grant <@{PROJECT_OWNER}> owner payroll")
    await harness.as_owner(f"grant <@{PROJECT_OWNER}> read-only payments")
    status, answer = await post(harness, block_suggestion_body(user_id=PROJECT_OWNER, team_id=TEAM, action_id=modals.PROJECT, value="pay"))
    assert status == 200
    assert [o["value"] for o in answer["options"]] == ["payroll"]
    status, answer = await post(harness, block_suggestion_body(user_id=OWNER, team_id=TEAM, action_id=modals.PROJECT, value="PAY"))
    assert [o["value"] for o in answer["options"]] == ["payments", "payroll"]


async def test_closing_a_modal_is_acknowledged(harness: Harness) -> None:
    view = {"type": "modal", "callback_id": modals.CREATE_CALLBACK, "blocks": []}
    status, _ = await post(harness, view_body(kind="view_closed", user_id=OWNER, team_id=TEAM, view=view))
    assert status == 200


async def test_malformed_home_and_modal_payloads_are_400_not_500(harness: Harness) -> None:
    bodies = [
        (b'{"type":"event_callback","event":"app_home_opened"}', True),
        (b'{"type":"event_callback","team_id":"T0001","event":{"type":"app_home_opened","user":7}}', True),
        (b'payload={"type":"shortcut","user":{"id":"U1"},"callback_id":3}', False),
        (b'payload={"type":"view_submission","user":{"id":"U1"},"view":[]}', False),
        (b'payload={"type":"view_submission","user":"U1","view":{"callback_id":"create_key"}}', False),
        (b'payload={"type":"view_closed","user":{"id":"U1"},"view":{"callback_id":"create_key","state":[]}}', False),
        (b'payload={"type":"block_suggestion","user":{"id":"U1"},"value":"x"}', False),
    ]
    for body, is_json in bodies:
        status, _ = await post(harness, body, json_body=is_json)
        assert status == 400, body
    assert (await post(harness, b'{"type":["view_submission"],"user":{"id":"U1"}}', json_body=True))[0] == 404
    other = b'{"type":"event_callback","team_id":"T0001","event":{"type":"reaction_added","user":"U1"}}'
    assert (await post(harness, other, json_body=True))[0] == 404

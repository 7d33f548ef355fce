"""Hypothesis fuzzing of the App Home and modal payloads (the fuzz targets of test_fuzz.py, for the
payload types issue 12 added): ``view_submission``, ``block_suggestion``, ``shortcut`` and
``app_home_opened``, well-formed and mutated, from every kind of user, on test_fuzz.py's populated org.

Properties: never a 5xx; never a public message (no ``chat.postMessage`` but DMs to a user id, no
``response_url`` post); never a traceback or an unexpected-error ref; every view keybot sends parses
with slack-sdk within 100 blocks; a view is published only to the asker or to a user who opened their Home; menu
suggestions only name projects the asker owns; and a submission that does not answer with a new
secret changes nothing, while one that does shows that secret only in its answer.
"""

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from slack_sdk.models.views import View

from bot.shell.wire import block_suggestion_body, event_body, post_signed, shortcut_body, view_body
from bot.slack import modals
from tests.e2e.conftest import OWNER, SIGNING_SECRET, TEAM
from tests.e2e.test_fuzz import (
    DROP,
    FUZZ,
    JSON,
    OTHER_TEAM,
    PROJECT_OWNER,
    TRACEBACK_MARKERS,
    USERS,
    World,
    set_path,
    world,
)

__all__ = ["world"]  # test_fuzz.py's populated org, as a fixture of this module too

KEY_RE = re.compile(r"kb_[A-Za-z0-9]{10}_[A-Za-z0-9]{28}")
OWNED = {OWNER: {"payments", "search"}, PROJECT_OWNER: {"payments"}}
VIEW_METHODS = ("views.open", "views.update", "views.publish")


def interaction(body: bytes) -> dict[str, Any]:
    return dict(json.loads(parse_qs(body.decode())["payload"][0]))


def mutated(payload: dict[str, Any], mutations: list[tuple[tuple[str | int, ...], Any]]) -> dict[str, Any]:
    for path, value in mutations:
        set_path(payload, path, value)
    return payload


async def send(world: World, payload: dict[str, Any] | str, *, json_body: bool = False) -> tuple[int, str]:
    h = world.h
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    body = raw.encode() if json_body else urlencode({"payload": raw}).encode()
    kind = "application/json" if json_body else "application/x-www-form-urlencoded"
    status, answer = await post_signed(h.session, h.driver.events_url, body, signing_secret=SIGNING_SECRET, content_type=kind)
    await h.runtime.home.settle()  # refreshes the request asked for have been published (or given up)
    return status, answer


def clean_calls(world: World, since: int, *, publish_to: set[str] | None = None) -> None:
    """Since call ``since``: DMs only to user ids, views only as keybot's own modals or to the Homes of
    ``publish_to`` and of users who opened theirs (a change refreshes every viewer it concerns), each parsed by slack-sdk within 100 blocks, and never a response_url post."""
    for call in world.h.slack.calls[since:]:
        if call.method == "chat.postMessage":
            assert re.fullmatch(r"[UW][A-Z0-9]{2,20}", str(call.args.get("channel", ""))), call.args
            continue
        assert call.method in VIEW_METHODS, call
        view = call.args["view"]
        assert len(view["blocks"]) <= 100
        View(**view).validate_json()
        done = call.method == "views.update" and str(view.get("callback_id", "")).endswith("_done")
        assert done or not KEY_RE.search(json.dumps(view)), "a secret in a view sent through the Web API"
        if call.method == "views.publish":  # the asker's Home, or the Home of a viewer the change concerns
            viewer = str(call.args.get("user_id"))
            watching = any(world.h.runtime.home.watching(team, viewer) for team in (TEAM, OTHER_TEAM))
            assert viewer in (publish_to or set()) or watching, call.args


def user_of(payload: dict[str, Any]) -> str:
    """The user id keybot reads from an interaction payload (``""`` when there is none)."""
    user = payload.get("user")
    return str(user.get("id")) if isinstance(user, dict) else ""


def assert_no_traceback(text: str) -> None:
    for marker in TRACEBACK_MARKERS:
        assert marker not in text, text


def tune(world: World) -> None:
    """No waiting between two publishes of one user's Home, and no workspace budget, for many examples."""
    world.h.runtime.home.interval, world.h.runtime.home.budget = 0.0, 10**9


MUTATION_PATHS = [
    ("type",), ("user",), ("user", "id"), ("user", "team_id"), ("team",), ("team", "id"), ("view",),
    ("view", "callback_id"), ("view", "state"), ("view", "state", "values"), ("view", "private_metadata"),
    ("view", "id"), ("view", "blocks"), ("trigger_id",), ("callback_id",), ("action_id",), ("value",),
    ("block_id",), ("enterprise",), ("is_enterprise_install",), ("container",), ("api_app_id",), ("token",),
]
MUTATIONS = st.lists(st.tuples(st.sampled_from(MUTATION_PATHS), st.one_of(st.just(DROP), JSON)), max_size=2)
USERS_AND_TEAMS = st.tuples(st.sampled_from(USERS), st.sampled_from([TEAM, TEAM, TEAM, OTHER_TEAM]))
PROJECTS = st.sampled_from(["payments", "search", "PAYMENTS", "nosuch", "", "../payments", "p" * 70])
NAMES = st.one_of(st.sampled_from(["default", "checkout", "k05", "new-key", "no spaces!", "", " " * 3]), st.text(max_size=70))
EXPIRIES = st.one_of(st.sampled_from(["1w", "30d", "90d", "never", "0", "-1d", "9999d", ""]), st.text(max_size=10))
GRACES = st.one_of(st.sampled_from(["24h", "1h", "7d", "0", "8d", "-1h", "never"]), st.text(max_size=10))


def chosen(value: str | None) -> dict[str, Any]:
    return {"type": "static_select", "selected_option": None if value is None else {"value": value}}


def typed(value: str | None) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


CREATE_VALUES = st.builds(
    lambda project, name, expiry, note: {
        modals.PROJECT: {modals.PROJECT: chosen(project)},
        modals.NAME: {modals.NAME: typed(name)},
        modals.EXPIRY: {modals.EXPIRY: chosen(expiry)},
        modals.NOTE: {modals.NOTE: typed(note)},
    },
    st.none() | PROJECTS, st.none() | NAMES, st.none() | EXPIRIES, st.none() | st.text(max_size=600),
)
ROLL_VALUES = st.builds(lambda grace: {modals.GRACE: {modals.GRACE: chosen(grace)}}, st.none() | GRACES)
METADATA = st.one_of(
    st.builds(lambda p, n: modals.metadata(project=p, name=n, origin="home"), PROJECTS, NAMES),
    st.sampled_from(["", "{}", "null", "[]", "{", '{"project": 1, "name": []}']),
    st.text(max_size=40),
)


@dataclass(frozen=True)
class Submission:
    user: str
    team: str
    callback: str
    values: Any
    metadata: str
    mutations: list[tuple[tuple[str | int, ...], Any]]


SUBMISSIONS = st.builds(
    Submission,
    user=st.sampled_from([OWNER, OWNER, PROJECT_OWNER, *USERS]),
    team=st.sampled_from([TEAM, TEAM, TEAM, OTHER_TEAM]),
    callback=st.sampled_from([modals.CREATE_CALLBACK, modals.ROLL_CALLBACK, modals.CREATE_CALLBACK + "_done", "", "x"]),
    values=st.one_of(CREATE_VALUES, CREATE_VALUES, ROLL_VALUES, ROLL_VALUES, JSON),
    metadata=METADATA,
    mutations=MUTATIONS,
)

# Submissions keybot accepts (a new key, or a roll): the properties must hold when a secret is shown too.
WELL_FORMED = st.builds(
    Submission,
    user=st.sampled_from([OWNER, PROJECT_OWNER]),
    team=st.just(TEAM),
    callback=st.just(modals.CREATE_CALLBACK),
    values=st.builds(
        lambda name, expiry: {
            modals.PROJECT: {modals.PROJECT: chosen("payments")},
            modals.NAME: {modals.NAME: typed(name)},
            modals.EXPIRY: {modals.EXPIRY: chosen(expiry)},
            modals.NOTE: {modals.NOTE: typed(None)},
        },
        st.from_regex(r"[a-z][a-z0-9-]{2,20}", fullmatch=True),
        st.sampled_from(["1w", "30d", "90d", "never"]),
    ),
    metadata=st.just(""),
    mutations=st.just([]),
) | st.builds(
    Submission,
    user=st.just(OWNER),
    team=st.just(TEAM),
    callback=st.just(modals.ROLL_CALLBACK),
    values=st.builds(lambda grace: {modals.GRACE: {modals.GRACE: chosen(grace)}}, st.sampled_from(["0", "1h"])),
    metadata=st.builds(lambda n: modals.metadata(project="payments", name=f"k{n:02d}"), st.integers(2, 21)),
    mutations=st.just([]),
)


@FUZZ
@given(request=st.one_of(WELL_FORMED, SUBMISSIONS, SUBMISSIONS), kind=st.sampled_from(["view_submission", "view_submission", "view_closed"]))
async def test_no_view_submission_gets_a_5xx_a_public_message_or_a_change_without_showing_its_secret(
    world: World, request: Submission, kind: str
) -> None:
    tune(world)
    h = world.h
    view = {"type": "modal", "callback_id": request.callback, "private_metadata": request.metadata, "blocks": []}
    values = request.values if isinstance(request.values, dict) else {}
    payload = mutated(interaction(view_body(kind=kind, user_id=request.user, team_id=request.team, view=view, values=values)), request.mutations)
    if not isinstance(request.values, dict):
        set_path(payload, ("view", "state", "values"), request.values)
    before, calls_before = world.state(), len(h.slack.calls)
    status, raw = await send(world, payload)
    assert status < 500, (status, raw)
    assert_no_traceback(raw)
    answer = json.loads(raw) if raw.strip().startswith("{") else {}
    secrets_shown = KEY_RE.findall(raw)
    event(f"HTTP {status}, {answer.get('response_action', 'no action')}{', a secret' if secrets_shown else ''}")
    if answer.get("response_action") == "update":
        View(**answer["view"]).validate_json()
    if not secrets_shown:
        assert world.state() == before
    for secret in secrets_shown:
        assert secret not in json.dumps([c.args for c in h.slack.calls])
    clean_calls(world, calls_before, publish_to={user_of(payload)})
    assert not h.slack.responses or all(r.body.get("response_type") != "in_channel" for r in h.slack.responses)


@FUZZ
@given(sender=USERS_AND_TEAMS, typed_text=st.one_of(PROJECTS, st.text(max_size=40)), action_id=st.sampled_from([modals.PROJECT, modals.PROJECT, "x", ""]), mutations=MUTATIONS)
async def test_no_block_suggestion_gets_a_5xx_or_offers_a_project_the_asker_does_not_own(
    world: World, sender: tuple[str, str], typed_text: str, action_id: str, mutations: list[tuple[tuple[str | int, ...], Any]]
) -> None:
    h = world.h
    user, team = sender
    payload = mutated(interaction(block_suggestion_body(user_id=user, team_id=team, action_id=action_id, value=typed_text)), mutations)
    before, calls_before = world.state(), len(h.slack.calls)
    status, raw = await send(world, payload)
    assert status < 500, (status, raw)
    assert_no_traceback(raw)
    answer = json.loads(raw) if raw.strip().startswith("{") else {}
    offered = {o.get("value") for o in answer.get("options", [])} if isinstance(answer.get("options"), list) else set()
    event(f"HTTP {status}, {len(offered)} options")
    assert offered <= OWNED.get(user_of(payload), set())
    assert world.state() == before
    assert h.slack.calls[calls_before:] == []


@FUZZ
@given(
    sender=USERS_AND_TEAMS,
    callback=st.sampled_from([modals.CREATE_CALLBACK, modals.CREATE_CALLBACK, "roll_key", "", "x"]),
    mutations=MUTATIONS,
)
async def test_no_shortcut_gets_a_5xx_a_message_or_a_change(
    world: World, sender: tuple[str, str], callback: str, mutations: list[tuple[tuple[str | int, ...], Any]]
) -> None:
    h = world.h
    payload = mutated(interaction(shortcut_body(user_id=sender[0], team_id=sender[1], callback_id=callback)), mutations)
    before, calls_before = world.state(), len(h.slack.calls)
    status, raw = await send(world, payload)
    assert status < 500, (status, raw)
    assert_no_traceback(raw)
    opened = [c for c in h.slack.calls[calls_before:] if c.method == "views.open"]
    event(f"HTTP {status}, {len(opened)} modal")
    assert world.state() == before
    assert all(c.method == "views.open" for c in h.slack.calls[calls_before:])
    clean_calls(world, calls_before)


HOME_EVENTS = st.fixed_dictionaries(
    {"type": st.just("app_home_opened"), "user": st.sampled_from(USERS), "tab": st.sampled_from(["home", "messages"])},
    optional={"channel": st.text(max_size=12), "view": JSON},
)


@FUZZ
@given(
    home_event=HOME_EVENTS,
    team=st.sampled_from([TEAM, TEAM, OTHER_TEAM, ""]),
    mutations=st.lists(st.tuples(st.sampled_from([("event", "user"), ("event", "tab"), ("event",), ("team_id",), ("type",), ("authorizations",), ("event", "type")]), st.one_of(st.just(DROP), JSON)), max_size=2),
)
async def test_no_app_home_opened_event_gets_a_5xx_or_publishes_to_anyone_but_its_user(
    world: World, home_event: dict[str, Any], team: str, mutations: list[tuple[tuple[str | int, ...], Any]]
) -> None:
    tune(world)
    h = world.h
    payload = mutated(json.loads(event_body(event=home_event, team_id=team)), mutations)
    before, calls_before = world.state(), len(h.slack.calls)
    status, raw = await send(world, payload, json_body=True)
    assert status < 500, (status, raw)
    assert_no_traceback(raw)
    published = [c for c in h.slack.calls[calls_before:] if c.method == "views.publish"]
    event(f"HTTP {status}, {len(published)} published")
    assert world.state() == before
    assert all(c.method == "views.publish" for c in h.slack.calls[calls_before:])
    user = payload.get("event", {}).get("user") if isinstance(payload.get("event"), dict) else None
    clean_calls(world, calls_before, publish_to={user} if isinstance(user, str) else set())


async def test_a_well_formed_create_submission_is_answered_with_its_secret(world: World) -> None:
    """Guards the fuzz above against testing nothing: an owner's valid submission does create a key."""
    values = {
        modals.PROJECT: {modals.PROJECT: chosen("payments")},
        modals.NAME: {modals.NAME: typed("guard")},
        modals.EXPIRY: {modals.EXPIRY: chosen("30d")},
    }
    view = {"type": "modal", "callback_id": modals.CREATE_CALLBACK, "blocks": []}
    status, raw = await send(world, interaction(view_body(kind="view_submission", user_id=OWNER, team_id=TEAM, view=view, values=values)))
    assert status == 200 and json.loads(raw)["response_action"] == "update" and len(KEY_RE.findall(raw)) == 1


@pytest.mark.parametrize("view", [[], ["id"], True, "x", 0])
@pytest.mark.parametrize("action_id", [modals.PROJECT, "x"])
async def test_an_interaction_whose_view_is_not_an_object_is_refused_not_a_5xx(world: World, view: Any, action_id: str) -> None:
    """Found by the fuzz above: Bolt's log line for an unhandled request reads ``view.get``, a 500 when
    ``view`` is a list or a boolean. keybot refuses such a body as malformed, before Bolt."""
    payload = interaction(block_suggestion_body(user_id=OWNER, team_id=TEAM, action_id=action_id, value="pay"))
    payload["view"] = view
    calls_before = len(world.h.slack.calls)
    status, raw = await send(world, payload)
    assert status == 400, (status, raw)
    assert world.h.slack.calls[calls_before:] == []

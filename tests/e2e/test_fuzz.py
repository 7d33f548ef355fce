"""Hypothesis fuzzing over Slack's wire format: slash texts, interaction payloads and raw bodies.

Properties, for every generated request: never a 5xx (and never a 404 for ``/apikeys``), never a
public reply, never a traceback or an unexpected-error ref shown to the user, never a Web API call
other than a DM to a user id, and never a state change from a refused request (the database is
compared row by row before and after). ``KEYBOT_FUZZ_EXAMPLES`` sets the number of examples per
target (60 by default; ``make fuzz`` runs 5,000).

The harness fixture (one keybot, one database) is shared by all examples of a test, so the
properties are stated about the change one request makes, not about an absolute state.
"""

import hashlib
import hmac
import json
import os
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from bot.domain.names import NAME_RE
from bot.shell.driver import message_text
from bot.shell.fakeslack import FakeSlack
from bot.shell.wire import block_actions_body, post_signed
from bot.slack.codec import ActionId
from bot.slack.commands import COMMANDS
from bot.slack.parsing import words
from tests.e2e.conftest import OWNER, SIGNING_SECRET, TEAM, Harness, e2e_settings
from tests.e2e.rawhttp import raw_post, serving

EXAMPLES = int(os.environ.get("KEYBOT_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

OTHER_TEAM = "TOTHER01"
PROJECT_OWNER = "UPOWNER1"
READER = "UREADER1"
BILLING = "UBILLING1"
STRANGER = "USTRANGE1"
USERS = [OWNER, PROJECT_OWNER, READER, BILLING, STRANGER]
FORM = "application/x-www-form-urlencoded"

# --- database snapshots ------------------------------------------------------------------------

# Every column a request may change. Left out: what the outbox worker and the verify path update
# on their own (outbox delivery bookkeeping, api_keys.last_used_at).
SNAPSHOT_COLUMNS = {
    "orgs": "*",
    "org_roles": "*",
    "projects": "*",
    "project_roles": "*",
    "api_keys": "id, project_id, key_id, name, name_lower, masked, secret_hash, created_by, created_at",
    "pending_deletions": "*",
    "audit_events": "*",
    "outbox": "id, user_id, text, created_at",
}


class DbSnapshots:
    """Every row of every table keybot writes, read through a read-only SQLite connection of its own."""

    def __init__(self, db_path: Path) -> None:
        self._conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, isolation_level=None)

    def __call__(self) -> dict[str, list[tuple[Any, ...]]]:
        self._conn.execute("BEGIN")  # one consistent snapshot of all tables
        try:
            return {
                table: self._conn.execute(f"SELECT {columns} FROM {table} ORDER BY rowid").fetchall()
                for table, columns in SNAPSHOT_COLUMNS.items()
            }
        finally:
            self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()


def db_state(db_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """One snapshot (see DbSnapshots)."""
    snapshots = DbSnapshots(db_path)
    try:
        return snapshots()
    finally:
        snapshots.close()


# --- reply checks ------------------------------------------------------------------------------

TRACEBACK_MARKERS = ("Traceback", 'File "', "Something went wrong")
HELP_MARK = "keybot manages your projects' API keys."


def assert_private_and_clean(message: dict[str, Any], *, typed: str = "") -> None:
    """Ephemeral, no traceback or unexpected-error ref, and within Slack's message limits."""
    assert message.get("response_type") == "ephemeral", message
    text = message_text(message)
    for marker in TRACEBACK_MARKERS:
        assert marker not in text or marker in typed, text
    blocks = message.get("blocks", [])
    assert len(blocks) <= 50
    for block in blocks:
        section = block.get("text")
        if isinstance(section, dict):
            assert len(section.get("text", "")) <= 3000, "a section longer than Slack accepts"


def is_refusal(message: dict[str, Any]) -> bool:
    text = str(message.get("text", ""))
    return text.startswith(":warning:") or HELP_MARK in message_text(message)


def assert_only_dms_to_users(h: Harness) -> None:
    for call in h.slack.calls:
        assert call.method == "chat.postMessage", call
        assert re.fullmatch(r"[UW][A-Z0-9]{2,20}", str(call.args.get("channel", ""))), call.args


# --- a populated org ---------------------------------------------------------------------------


class World:
    """The harness with a populated org. A plain class, so Hypothesis reports it in one line."""

    def __init__(self, h: Harness, *, live: str, used: str, expired: str, state: DbSnapshots) -> None:
        self.h = h
        self.live = live  # PROJECT_OWNER's pending deletion of payments/checkout: nobody else may use it
        self.used = used  # OWNER's cancelled pending deletion
        self.expired = expired  # OWNER's pending deletion, past its 10 minutes
        self.state = state
        rows = state()
        self.first_key_row = min(row[0] for row in rows["api_keys"])
        self.last_key_row = max(row[0] for row in rows["api_keys"])
        self.audit_row = max(row[0] for row in rows["audit_events"])

    def __repr__(self) -> str:
        return f"World(live={self.live!r}, used={self.used!r}, expired={self.expired!r})"

    def value(self, spec: tuple[Any, ...]) -> str:
        """A button value from its symbolic description in VALUES."""
        kind, *rest = spec
        if kind == "token":
            name, edit = rest
            token: str = getattr(self, name)
            return {"as is": token, "suffixed": token + "x", "truncated": token[:-1],
                    "upper-cased": token.upper()}[edit]
        if kind == "page":
            project, row, page = rest
            rows = {"first key": self.first_key_row, "last key": self.last_key_row, "last audit": self.audit_row}
            return f"{project}|{rows.get(row, row)}|{page}"
        return str(rest[0])


@pytest.fixture
async def world(harness: Harness) -> AsyncIterator[World]:
    h = harness
    for text in (
        "project create payments",
        "project create search",
        f"grant <@{PROJECT_OWNER}> owner payments",
        f"grant <@{READER}> read-only payments",
        f"grant <@{BILLING}> billing-admin",
        *(f"create payments k{i:02d}" for i in range(22)),
        "create payments checkout",
    ):
        reply = await h.as_owner(text)
        assert not is_refusal(reply.message), reply.text
    live = (await h.cmd(PROJECT_OWNER, "delete payments checkout")).button(ActionId.DELETE_CONFIRM)["value"]
    used_ask = await h.as_owner("delete payments k00")
    used = used_ask.button(ActionId.DELETE_CANCEL)["value"]
    assert "Cancelled" in (await h.driver.click(OWNER, used_ask.button(ActionId.DELETE_CANCEL))).text
    h.clock.shift(-timedelta(minutes=11))
    expired = (await h.as_owner("delete payments k01")).button(ActionId.DELETE_CONFIRM)["value"]
    h.clock.reset()
    await h.outbox_drained()
    snapshots = DbSnapshots(h.db_path)
    yield World(h, live=live, used=used, expired=expired, state=snapshots)
    snapshots.close()


# --- slash command texts -----------------------------------------------------------------------

SUBCOMMANDS = ["help", "whoami", "projects", "project", "create", "list", "delete", "grant", "revoke",
               "members", "audit", "HELP", "Create", "LIST", "project create"]
MUTATING = {"project", "create", "delete", "grant", "revoke"}
WORDS = [
    *SUBCOMMANDS,
    "owner", "billing-admin", "member", "admin", "read-write", "read-only", "OWNER", "superuser",
    "payments", "PAYMENTS", "search", "nosuch", "default", "checkout", "k05", "k21",
    "payload", "token", "team_id", "user_id", "command", "text", "response_url", "trigger_id",
    "payload=", "payload={}", 'payload={"type":"block_actions"}', "=", "&", "%", "%26", "%3D", "+",
    "&payload=x", "text=help", "{", "}", "[]", "null", "\\", "`", "*", "_", "~", "&amp;", "&lt;", "&gt;",
]
MENTIONS = st.one_of(
    st.sampled_from([
        f"<@{READER}>", f"<@{READER}|reader>", f"<@{STRANGER}|stranger>", f"<@{BILLING}>",
        f"<@{PROJECT_OWNER}|po>", "<@U123|name>", "<@U123>", "<@W0NEWUSER>", "<@UNEWUSER|new user>",
        "<#C123|general>", "<#C123>", "<!here>", "<!channel>", "<!everyone>", "<!subteam^S123|@team>",
        "<@>", "<@|>", "<@U123", "@ana", "<https://example.com|link>", "<mailto:a@b.c|a@b.c>",
    ]),
    st.builds(lambda uid, name: f"<@{uid}|{name}>", st.from_regex(r"[UW][A-Z0-9]{2,20}", fullmatch=True),
              st.text(max_size=20)),
    st.builds(lambda inner: f"<{inner}>", st.text(max_size=30)),
)
TOKENS = st.one_of(
    st.sampled_from(WORDS),
    MENTIONS,
    st.from_regex(NAME_RE, fullmatch=True),
    st.text(max_size=20),
    st.text(alphabet=st.characters(max_codepoint=0x9F), max_size=10),
)
SEPARATORS = st.sampled_from([" ", " ", " ", "  ", "\t", "\n", "\u00a0", "\u2003", "", "\x00", "\r\n"])
SPACES = st.sampled_from([" "] * 8 + ["  ", "\t", "\u00a0", "\n"])
PHRASE = st.lists(st.tuples(TOKENS, SEPARATORS), max_size=10).map(lambda parts: "".join(a + b for a, b in parts))


def mostly(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """An argument: usually from ``valid``, sometimes any token."""
    return st.one_of(valid, valid, valid, TOKENS)


PROJECTS = st.sampled_from(["payments", "search", "PAYMENTS", "Search", "nosuch"])
NEW_NAMES = st.from_regex(NAME_RE, fullmatch=True)
KEYS = st.sampled_from(["default", "checkout", "k05", "K21", "nosuch"]) | NEW_NAMES
ROLES = st.sampled_from(["owner", "billing-admin", "member", "admin", "read-write", "read-only", "OWNER",
                         "Read-Only"])
NOTHING: st.SearchStrategy[list[str]] = st.just([])


def command_texts(arg: Any, extra: st.SearchStrategy[list[str]]) -> st.SearchStrategy[str]:
    """Subcommands with the arguments each takes (each argument drawn through ``arg``), then ``extra``."""
    arguments: dict[str, st.SearchStrategy[list[str]]] = {
        "help": NOTHING,
        "whoami": NOTHING,
        "projects": NOTHING,
        "project": st.tuples(arg(st.just("create")), arg(NEW_NAMES)).map(list),
        "create": st.tuples(arg(PROJECTS), arg(KEYS)).map(list),
        "list": st.tuples(arg(PROJECTS)).map(list),
        "delete": st.tuples(arg(PROJECTS), arg(KEYS)).map(list),
        "grant": st.tuples(arg(MENTIONS), arg(ROLES), st.lists(arg(PROJECTS), max_size=1)).map(
            lambda t: [t[0], t[1], *t[2]]),
        "revoke": st.tuples(arg(MENTIONS), st.lists(arg(PROJECTS), max_size=1)).map(lambda t: [t[0], *t[1]]),
        "members": st.lists(arg(PROJECTS), max_size=1),
        "audit": st.tuples(arg(PROJECTS)).map(list),
    }
    return st.sampled_from(sorted(arguments)).flatmap(
        lambda verb: st.tuples(st.sampled_from([verb, verb, verb.upper()]), arguments[verb], extra,
                               st.lists(SPACES, min_size=6, max_size=6))
    ).map(lambda t: "".join(w + sep for w, sep in zip([t[0], *t[1], *t[2]], t[3], strict=False)).strip(" "))


# Commands that get past the parser (most are then allowed or refused by the rules), and noisy ones.
VALID_COMMANDS = command_texts(lambda valid: valid, NOTHING)
NOISY_COMMANDS = command_texts(mostly, st.one_of(NOTHING, st.lists(TOKENS, min_size=1, max_size=2)))
SLASH_TEXTS = st.one_of(
    VALID_COMMANDS,
    VALID_COMMANDS,
    NOISY_COMMANDS,
    st.builds(lambda verb, sep, rest: verb + sep + rest, st.sampled_from(SUBCOMMANDS), SEPARATORS, PHRASE),
    PHRASE,
    st.text(max_size=200),
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=50),
    st.text(min_size=3000, max_size=4000),
    st.builds(lambda verb, tail: f"{verb} {tail}", st.sampled_from(SUBCOMMANDS),
              st.text(min_size=1000, max_size=4000)),
)
SENDERS = st.one_of(
    st.just((OWNER, TEAM)),
    st.just((OWNER, TEAM)),
    st.tuples(st.sampled_from(USERS), st.just(TEAM)),
    st.tuples(st.sampled_from(USERS), st.just(OTHER_TEAM)),
    st.tuples(st.sampled_from(["", "U", "x", "UOWNER01 ", "Ü1", "W1"]), st.sampled_from([TEAM, "", "T", "t0001"])),
)


@FUZZ
@given(sender=SENDERS, text=SLASH_TEXTS)
async def test_no_slash_text_gets_a_5xx_a_public_reply_a_traceback_or_a_change_when_refused(
    world: World, sender: tuple[str, str], text: str
) -> None:
    h = world.h
    user, team = sender
    before = world.state()
    reply = await h.cmd(user, text, team_id=team)
    assert reply.status == 200, (reply.status, reply.message)
    assert_private_and_clean(reply.message, typed=text)
    verb = (words(text) or ["help"])[0].lower()
    refused = is_refusal(reply.message)
    event(f"{verb if verb in COMMANDS else 'unknown'}: {'refused' if refused else 'answered'}")
    if refused or verb not in MUTATING:
        assert world.state() == before, reply.text
    assert_only_dms_to_users(h)


async def test_slash_texts_naming_slack_fields_are_answered_not_404(world: World) -> None:
    """slack-bolt alone would answer 404 to any form body containing the substring "payload"."""
    expected = {
        "payload": "I don't know `payload`",
        "payload=%7B%7D": "I don't know `payload=%7B%7D`",
        "list payload": "No project named `payload`",
        "create payments payload": "New key `payload` in `payments`",
        "delete payments payload&payload={}": "is not a valid key name",
    }
    for text, answer in expected.items():
        reply = await world.h.cmd(OWNER, text)
        assert reply.status == 200, text
        assert reply.message["response_type"] == "ephemeral"
        assert answer in reply.text, (text, reply.text)


# --- interaction payloads ----------------------------------------------------------------------


def json_containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    json_containers,
    max_leaves=8,
)
DROP = object()
PATHS = [
    ("type",), ("user",), ("user", "id"), ("user", "team_id"), ("team",), ("team", "id"), ("actions",),
    ("actions", 0), ("actions", 0, "action_id"), ("actions", 0, "value"), ("actions", 0, "type"),
    ("response_url",), ("container",), ("channel",), ("enterprise",), ("is_enterprise_install",),
    ("api_app_id",), ("token",), ("trigger_id",), ("state",), ("message",), ("view",), ("team_id",),
    ("user_id",), ("authorizations",), ("response_urls",), ("function_execution_id",),
]
MUTATIONS = st.lists(st.tuples(st.sampled_from(PATHS), st.one_of(st.just(DROP), JSON)), max_size=3)
ACTION_IDS = st.one_of(
    st.sampled_from([ActionId.DELETE_CONFIRM, ActionId.DELETE_CANCEL, ActionId.KEYS_OLDER, ActionId.KEYS_NEWER, ActionId.AUDIT_OLDER]),
    st.sampled_from(["", "delete", "DELETE_CONFIRM", "delete_confirm ", "admin", "__class__"]),
    st.text(max_size=30),
)
PROJECT_WORDS = st.sampled_from(["payments", "search", "PAYMENTS", "nosuch", "", "../payments"])
ROWS = ["first key", "last key", "last audit", 0, 1, 2**31, 2**63, 2**64, -1]
# Button values name the fixture's pending deletions and rows symbolically; World.value() resolves them.
VALUES = st.one_of(
    st.tuples(st.just("token"), st.sampled_from(["live", "used", "expired"]),
              st.sampled_from(["as is", "suffixed", "truncated", "upper-cased"])),
    st.tuples(st.just("page"), PROJECT_WORDS, st.sampled_from(ROWS),
              st.integers(min_value=-(2**70), max_value=2**70)),
    st.tuples(st.just("page"), PROJECT_WORDS, st.text(max_size=12), st.text(max_size=12)),
    st.tuples(st.just("raw"), st.sampled_from([
        "", "forged-token", "null", "0", " ", "%", "' OR 1=1 --", "payments|²|1", "payments|1|²",
        "payments|١٢|1", "payments|" + "9" * 5000 + "|1", "payments|1|" + "9" * 5000, "|||", "payments||",
        "payments|1", "payments|1|2|3",
    ])),
    st.tuples(st.just("raw"), st.text(max_size=100)),
)


def set_path(payload: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    target: Any = payload
    for step in path[:-1]:
        try:
            target = target[step]
        except (KeyError, IndexError, TypeError):
            return
    last = path[-1]
    try:
        if value is DROP:
            del target[last]
        else:
            target[last] = value
    except (KeyError, IndexError, TypeError):
        return


def effective_click(payload: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """Who clicks what, read the way keybot reads it (for excluding the one legitimate click)."""
    user, team = payload.get("user"), payload.get("team")
    user_id = payload.get("user_id") or (user.get("id") if isinstance(user, dict) else None)
    team_id = payload.get("team_id") or (team.get("id") if isinstance(team, dict) else None)
    if team_id is None and isinstance(user, dict):
        team_id = user.get("team_id")
    actions = payload.get("actions")
    action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
    return user_id, team_id, action.get("action_id"), action.get("value")


_response_names = count(1)


@dataclass(frozen=True)
class Click:
    user: str
    team: str
    action_id: str
    value: tuple[Any, ...]
    mutations: list[tuple[tuple[str | int, ...], Any]]


CLICKS = st.builds(
    Click,
    user=st.sampled_from(USERS),
    team=st.sampled_from([TEAM, TEAM, OTHER_TEAM]),
    action_id=ACTION_IDS,
    value=VALUES,
    mutations=MUTATIONS,
)


BROKEN_PAYLOADS = st.one_of(
    st.text(max_size=200),
    st.sampled_from(['{"type": "block_actions"', "[]", "null", "1", '"block_actions"', "{}", '{"actions": 1}',
                     '{"type":"block_actions","actions":[{"action_id":"delete_confirm","value":1}]}',
                     '{"type":"block_actions","user":"UOWNER01","actions":"x"}', "{" * 2000, "NaN"]),
    JSON.map(json.dumps),
)


@FUZZ
@given(request=st.one_of(CLICKS, CLICKS, CLICKS, BROKEN_PAYLOADS))
async def test_no_click_payload_gets_a_5xx_a_public_reply_a_traceback_or_changes_anything(
    world: World, request: Click | str
) -> None:
    h = world.h
    name = f"fuzz{next(_response_names)}"
    response_url = h.slack.response_url(name)
    if isinstance(request, str):
        body = urlencode({"payload": request}).encode()
    else:
        payload = click_payload(request.user, request.team, request.action_id, world.value(request.value),
                                response_url=response_url)
        for path, value in request.mutations:
            set_path(payload, path, value)
        user_id, team_id, action_id, value = effective_click(payload)
        legit = (user_id == PROJECT_OWNER and team_id == TEAM and value == world.live
                 and action_id in (ActionId.DELETE_CONFIRM, ActionId.DELETE_CANCEL))
        assume(not legit)
        body = urlencode({"payload": json.dumps(payload)}).encode()
    before = world.state()
    calls_before = len(h.slack.calls)
    status, _ = await post_signed(h.session, h.driver.events_url, body, signing_secret=SIGNING_SECRET)
    assert status < 500, status
    responses = h.slack.responses_to(name)
    event(f"HTTP {status}, " + ("1 reply" if len(responses) == 1 else f"{len(responses)} replies"))
    for response in responses:
        assert_private_and_clean(response.body)
    assert world.state() == before
    assert h.slack.calls[calls_before:] == []


def click_payload(user: str, team: str, action_id: str, value: str, *, response_url: str) -> dict[str, Any]:
    """The interaction payload Slack sends for a button click, as a dict to mutate."""
    body = block_actions_body(user_id=user, team_id=team, action_id=action_id, value=value,
                              response_url=response_url)
    return dict(json.loads(parse_qs(body.decode())["payload"][0]))


async def test_a_well_formed_foreign_click_is_answered_privately(world: World) -> None:
    """Guards the fuzz above against testing nothing: the unmutated click does reach keybot."""
    reply = await world.h.driver.click(OWNER, {"action_id": ActionId.DELETE_CONFIRM, "value": world.live})
    assert reply.status == 200
    assert f"Only <@{PROJECT_OWNER}>" in reply.text
    assert reply.message["response_type"] == "ephemeral"


# --- raw bodies --------------------------------------------------------------------------------

CONTENT_TYPES = st.sampled_from([FORM, "application/json", f"{FORM}; charset=utf-8", "text/plain",
                                 "application/json; charset=latin-1", "multipart/form-data", ""])
RAW_BODIES = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=500).map(str.encode),
    st.sampled_from([b"{", b"[1,2]", b"null", b'"x"', b"{}", b"payload", b"payload=", b"payload=%FF",
                     b"payload=%7B", b"payload=null", b"payload=[]", b"\xff\xfe", b"%", b"a=1&a=2",
                     b"command=/apikeys&text=help", b"command=/apikeys&team_id=T0001&user_id=UOWNER01",
                     b'{"type":"block_actions","actions":[{}]}', b'{"team":1,"user":2,"channel":3}',
                     b'{"authorizations":1}', b'{"enterprise":5}', b'{"response_urls":[1]}',
                     b"command=/apikeys&type=event_callback&event=type", b"command=/apikeys&event=x",
                     b'{"command":"/apikeys","user":5}', b'{"command":["/apikeys"]}', b'{"command":"/apikeys"}',
                     b'{"type":"url_verification"}', b'{"type":"url_verification","challenge":[1]}',
                     b"ssl_check=1", b'{"ssl_check":1}', b'{"type":"event_callback","event":{"type":"message"}}',
                     b'{"type":"event_callback","event":1}', b'{"type":"view_submission","view":1}',
                     b'{"type":"interactive_message","callback_id":1}', b"[" * 60000, b"{" * 60000]),
    JSON.map(lambda v: json.dumps(v).encode()),
)


def sign_bytes(body: bytes) -> dict[str, str]:
    """Slack's v0 signature over any bytes (slack_sdk's signer only takes UTF-8)."""
    timestamp = str(int(time.time()))
    digest = hmac.new(SIGNING_SECRET.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest.hexdigest()}"}


@FUZZ
@given(body=RAW_BODIES, content_type=CONTENT_TYPES)
async def test_no_signed_raw_body_gets_a_5xx_or_changes_anything(world: World, body: bytes, content_type: str) -> None:
    h = world.h
    before = world.state()
    calls_before = len(h.slack.calls)
    headers = {"Content-Type": content_type, **sign_bytes(body)}
    async with h.session.post(h.driver.events_url, data=body, headers=headers) as response:
        event(f"HTTP {response.status}")
        assert response.status < 500, (response.status, await response.text())
        assert "Traceback" not in await response.text()
    assert world.state() == before
    assert h.slack.calls[calls_before:] == []


@FUZZ
@given(body=RAW_BODIES, content_type=CONTENT_TYPES)
async def test_no_raw_body_to_the_verify_endpoint_gets_a_5xx(world: World, body: bytes, content_type: str) -> None:
    h = world.h
    before = world.state()
    async with h.session.post(f"{h.base_url}/v1/keys/verify", data=body,
                              headers={"Content-Type": content_type}) as response:
        assert response.status in (200, 400), (response.status, await response.text())
        answer = await response.json()
    assert answer.get("valid") is not True
    assert world.state() == before


# --- malformed authentication headers ----------------------------------------------------------------

# Any header value HTTP can carry (no CR or LF), and the shapes that once made 500s: numbers too long
# for a float, signs, non-ASCII digits, non-ASCII signatures, bearer tokens that are not UTF-8.
HEADER_VALUES = st.one_of(
    st.binary(max_size=120).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=60).map(str.encode),
    st.integers(min_value=0, max_value=6000).map(lambda n: b"9" * n),
    st.integers().map(lambda n: str(n).encode()),
    st.floats().map(lambda x: str(x).encode()),
    st.from_regex(r"v0=[0-9a-fA-F]{0,80}", fullmatch=True).map(str.encode),
    st.sampled_from([b"", b" ", b"abc", b"-1", b"+1", b"1e400", "١٧٠٠٠٠٠٠٠٠".encode(), "v0=é".encode(),
                     b"v0=\xe9", b"v0=\xff\xfe", b"Bearer \xff\xfe", b"Bearer", b"Bearer ", b"bearer x",
                     b"\x00", b"\x7f", "Bearer é".encode()]),
)
SIGNED_HEADERS = st.sampled_from(["X-Slack-Request-Timestamp", "X-Slack-Signature"])


def port_of(h: Harness) -> int:
    return int(h.base_url.rsplit(":", 1)[1])


@FUZZ
@given(replaced=st.dictionaries(SIGNED_HEADERS, HEADER_VALUES, min_size=1))
async def test_no_malformed_signature_header_gets_a_5xx_or_changes_anything(
    world: World, replaced: dict[str, bytes]
) -> None:
    h = world.h
    before = world.state()
    calls_before = len(h.slack.calls)
    body = f"command=%2Fapikeys&text=project+create+fuzz&team_id={TEAM}&user_id={OWNER}".encode()
    signed = {name: value.encode() for name, value in sign_bytes(body).items()}
    assume(any(signed[name] != value.strip(b" \t") for name, value in replaced.items()))
    headers = {**signed, "Content-Type": FORM.encode(), **replaced}

    status, rest = await raw_post(port_of(h), "/slack/events", list(headers.items()), body)

    event(f"HTTP {status}")
    assert status in (400, 401), (status, rest)
    assert b"Traceback" not in rest
    assert world.state() == before
    assert h.slack.calls[calls_before:] == []


@pytest.fixture
async def verify_port(tmp_path: Path, slack: FakeSlack) -> AsyncIterator[int]:
    """A keybot whose verify API requires a bearer token."""
    async with serving(e2e_settings(slack, tmp_path / "guarded.db", verify_token=VERIFY_TOKEN)) as port:
        yield port


VERIFY_TOKEN = "fuzz-verify-token"


@FUZZ
@given(authorization=HEADER_VALUES)
async def test_no_malformed_bearer_header_gets_a_5xx_or_past_the_token_check(
    verify_port: int, authorization: bytes
) -> None:
    assume(authorization.strip(b" \t") != f"Bearer {VERIFY_TOKEN}".encode())
    headers = [("Authorization", authorization), ("Content-Type", b"application/json")]

    status, rest = await raw_post(verify_port, "/v1/keys/verify", headers, b'{"key": "kb_x"}')

    event(f"HTTP {status}")
    assert status in (400, 401), (status, rest)
    assert b"Traceback" not in rest

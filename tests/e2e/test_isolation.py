"""Workspace isolation: users of another workspace (another team_id) see and change nothing of this org.

Even a user whose id equals this org's owner's, and even when the other workspace has an org of its
own, whatever they type or click. "This org's state" is every row that belongs to it, read through
a separate read-only SQLite connection; "seeing" is checked by scanning every reply for this org's
key ids, key name, org name and members.
"""

import json
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.shell.driver import Reply, message_text
from bot.slack.codec import ActionId
from tests.e2e.conftest import OWNER, TEAM, Harness
from tests.e2e.test_fuzz import FUZZ, NOISY_COMMANDS, TOKENS, VALID_COMMANDS, db_state, is_refusal

OTHER_TEAM = "TOTHER01"
PROJECT_OWNER = "UPOWNER1"
READER = "UREADER1"
OTHER_ONLY = "UOTHER02"  # a user of the other workspace only
KEY_NAME = "zebra-7"  # a key name only this org uses, so that seeing it anywhere is a leak
KEY_RE = re.compile(r"kb_[A-Za-z0-9]{10}_[A-Za-z0-9]{28}")

_OF_ORG = "SELECT id FROM orgs WHERE team_id = :team"
_OF_PROJECTS = f"SELECT id FROM projects WHERE org_id IN ({_OF_ORG})"
ORG_ROWS = {
    "orgs": "SELECT * FROM orgs WHERE team_id = :team",
    "org_roles": f"SELECT * FROM org_roles WHERE org_id IN ({_OF_ORG})",
    "projects": f"SELECT * FROM projects WHERE org_id IN ({_OF_ORG})",
    "project_roles": f"SELECT * FROM project_roles WHERE project_id IN ({_OF_PROJECTS})",
    "api_keys": "SELECT id, project_id, key_id, name, name_lower, masked, secret_hash, created_by, created_at "
    f"FROM api_keys WHERE project_id IN ({_OF_PROJECTS})",
    "pending_deletions": f"SELECT * FROM pending_deletions WHERE project_id IN ({_OF_PROJECTS})",
    "audit_events": f"SELECT * FROM audit_events WHERE org_id IN ({_OF_ORG})",
}


def org_state(db_path: Path, team_id: str = TEAM) -> dict[str, list[tuple[Any, ...]]]:
    """Every row that belongs to the org of ``team_id``."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute("BEGIN")
        return {
            table: conn.execute(f"{query} ORDER BY rowid", {"team": team_id}).fetchall()
            for table, query in ORG_ROWS.items()
        }
    finally:
        conn.close()


class ThisOrg:
    """This workspace's org: a project with owners, a reader, 22 keys and a live pending deletion."""

    def __init__(self, h: Harness, *, secret: str, pending: str, list_reply: Reply, audit_reply: Reply) -> None:
        self.h = h
        self.secret = secret
        self.pending = pending
        self.older = list_reply.button(ActionId.KEYS_OLDER)
        self.audit_older = audit_reply.button(ActionId.AUDIT_OLDER)
        rows = org_state(h.db_path)
        self.key_ids = [row[2] for row in rows["api_keys"]]
        assert len(self.key_ids) == 22

    def __repr__(self) -> str:
        return "ThisOrg()"

    def leaks(self, message: dict[str, Any], *, typed: str = "", people: bool = True) -> list[str]:
        """What of this org a reply shows that the reader did not type: its key ids, key name, org name,
        the secret, and (with ``people``) its members' ids."""
        shown = json.dumps(message, ensure_ascii=False) + message_text(message)
        private = [*self.key_ids, KEY_NAME, "Acme", self.secret, *([PROJECT_OWNER, READER] if people else [])]
        return [word for word in private if word in shown and word not in typed]

    async def verifies(self) -> bool:
        async with self.h.session.post(f"{self.h.base_url}/v1/keys/verify", json={"key": self.secret}) as r:
            return bool((await r.json())["valid"])


@pytest.fixture
async def this_org(harness: Harness) -> AsyncIterator[ThisOrg]:
    h = harness
    for text in ("project create payments", f"grant <@{PROJECT_OWNER}> owner payments",
                 f"grant <@{READER}> read-only payments", *(f"create payments k{i:02d}" for i in range(20))):
        assert not is_refusal((await h.as_owner(text)).message), text
    created = await h.as_owner(f"create payments {KEY_NAME}")
    [secret] = set(KEY_RE.findall(created.text))
    pending = (await h.as_owner(f"delete payments {KEY_NAME}")).button(ActionId.DELETE_CONFIRM)["value"]
    list_reply, audit_reply = await h.as_owner("list payments"), await h.as_owner("audit payments")
    await h.outbox_drained()
    yield ThisOrg(h, secret=secret, pending=pending, list_reply=list_reply, audit_reply=audit_reply)


async def _other_org(h: Harness) -> None:
    """The other workspace bootstraps an org whose owner has the same user id as this org's owner."""
    await h.runtime.keybot.operators.bootstrap(team_id=OTHER_TEAM, owner=OWNER, org_name="Other")


@pytest.fixture
async def both_orgs(this_org: ThisOrg) -> ThisOrg:
    await _other_org(this_org.h)
    return this_org


# Every subcommand, aimed at this org's project, key and people.
COMMANDS = [
    "help", "whoami", "projects", "members", "members payments", "list payments", "list PAYMENTS",
    "audit payments", "create payments extra", f"delete payments {KEY_NAME}", "delete payments k05",
    "project create payments", f"grant <@{OWNER}> owner", f"grant <@{OTHER_ONLY}> owner",
    f"grant <@{OTHER_ONLY}> owner payments", f"grant <@{READER}> owner payments", f"revoke <@{PROJECT_OWNER}> payments",
    f"revoke <@{READER}> payments", f"revoke <@{OWNER}>", f"revoke <@{PROJECT_OWNER}>",
]
KEY_COMMANDS = ["list payments", "audit payments", "create payments extra", f"delete payments {KEY_NAME}",
                f"grant <@{READER}> owner payments", f"revoke <@{PROJECT_OWNER}> payments", "members payments"]


@pytest.mark.parametrize("user", [OWNER, PROJECT_OWNER, OTHER_ONLY])
async def test_every_command_from_a_workspace_without_an_org_is_refused_and_changes_nothing(
    this_org: ThisOrg, user: str
) -> None:
    h = this_org.h
    before, calls = db_state(h.db_path), len(h.slack.calls)
    for text in COMMANDS:
        reply = await h.cmd(user, text, team_id=OTHER_TEAM)
        assert reply.status == 200
        assert reply.message["response_type"] == "ephemeral"
        if text != "help":
            assert reply.text.startswith(":warning: keybot is not set up for this workspace"), (text, reply.text)
        assert this_org.leaks(reply.message, typed=text) == [], text
    assert db_state(h.db_path) == before
    assert h.slack.calls[calls:] == []
    assert await this_org.verifies()


async def test_an_owner_of_another_workspaces_org_with_the_same_user_id_sees_and_changes_nothing_here(
    both_orgs: ThisOrg,
) -> None:
    this_org = both_orgs
    h = this_org.h
    before = org_state(h.db_path)
    for text in COMMANDS:
        reply = await h.cmd(OWNER, text, team_id=OTHER_TEAM)
        assert reply.status == 200
        assert reply.message["response_type"] == "ephemeral"
        assert this_org.leaks(reply.message, typed=text) == [], (text, reply.text)
    assert org_state(h.db_path) == before
    assert await this_org.verifies()
    assert "*Other*" in (await h.cmd(OWNER, "whoami", team_id=OTHER_TEAM)).text


async def test_key_commands_naming_this_orgs_project_from_another_org_find_no_such_project(
    both_orgs: ThisOrg,
) -> None:
    this_org = both_orgs
    h = this_org.h
    for text in KEY_COMMANDS:
        reply = await h.cmd(OWNER, text, team_id=OTHER_TEAM)
        assert "No project named `payments` that you can see" in reply.text, (text, reply.text)
    projects = await h.cmd(OWNER, "projects", team_id=OTHER_TEAM)
    assert "payments" not in projects.text
    members = await h.cmd(OWNER, "members", team_id=OTHER_TEAM)
    assert f"<@{OWNER}>" in members.text and PROJECT_OWNER not in members.text and READER not in members.text


async def test_another_orgs_project_of_the_same_name_shows_only_its_own_keys_and_audit(both_orgs: ThisOrg) -> None:
    this_org = both_orgs
    h = this_org.h
    before = org_state(h.db_path)
    created = await h.cmd(OWNER, "project create payments", team_id=OTHER_TEAM)
    assert "Created project `payments`; its `default` key" in created.text
    [their_secret] = set(KEY_RE.findall(created.text))
    listing = await h.cmd(OWNER, "list payments", team_id=OTHER_TEAM)
    assert len(re.findall(r"\*(\S+)\*   `", listing.text)) == 1
    audit = await h.cmd(OWNER, "audit payments", team_id=OTHER_TEAM)
    assert f"<@{OWNER}> created the project `payments`" in audit.text and "zebra" not in audit.text
    older = await h.driver.click(OWNER, this_org.older, team_id=OTHER_TEAM)
    audit_older = await h.driver.click(OWNER, this_org.audit_older, team_id=OTHER_TEAM)
    for reply in (listing, audit, older, audit_older):
        assert reply.message["response_type"] == "ephemeral"
        assert this_org.leaks(reply.message) == [], reply.text
    assert org_state(h.db_path) == before
    assert their_secret != this_org.secret and await this_org.verifies()


@pytest.mark.parametrize("other_has_an_org", [False, True])
async def test_a_valid_confirmation_clicked_from_another_workspace_changes_nothing_and_stays_usable(
    this_org: ThisOrg, other_has_an_org: bool
) -> None:
    h = this_org.h
    if other_has_an_org:
        await _other_org(h)
    before, calls = org_state(h.db_path), len(h.slack.calls)
    for action in (ActionId.DELETE_CANCEL, ActionId.DELETE_CONFIRM):
        reply = await h.driver.click(OWNER, {"action_id": action, "value": this_org.pending}, team_id=OTHER_TEAM)
        assert reply.status == 200
        assert reply.message["response_type"] == "ephemeral"
        assert reply.message["replace_original"] is False
        assert reply.text.startswith(":warning:"), reply.text
        assert this_org.leaks(reply.message) == [], reply.text
    assert org_state(h.db_path) == before
    assert h.slack.calls[calls:] == []
    assert await this_org.verifies()
    mine = await h.driver.click(OWNER, {"action_id": ActionId.DELETE_CONFIRM, "value": this_org.pending})
    assert f"Deleted key `{KEY_NAME}`" in mine.text
    assert not await this_org.verifies()


@pytest.mark.parametrize("other_has_an_org", [False, True])
async def test_this_orgs_page_buttons_clicked_from_another_workspace_show_nothing_of_it(
    this_org: ThisOrg, other_has_an_org: bool
) -> None:
    h = this_org.h
    if other_has_an_org:
        await _other_org(h)
    before = org_state(h.db_path)
    for button in (this_org.older, this_org.audit_older):
        for user in (OWNER, PROJECT_OWNER):
            reply = await h.driver.click(user, button, team_id=OTHER_TEAM)
            assert reply.status == 200
            assert reply.text.startswith(":warning:"), reply.text
            assert this_org.leaks(reply.message) == [], reply.text
    assert org_state(h.db_path) == before


async def test_this_orgs_dms_go_only_to_its_own_owners_never_to_the_other_workspaces_people(
    both_orgs: ThisOrg,
) -> None:
    this_org = both_orgs
    h = this_org.h
    for text in (f"grant <@{OTHER_ONLY}> owner", "project create payments", f"grant <@{OTHER_ONLY}> owner payments",
                 "create payments theirs"):
        assert not is_refusal((await h.cmd(OWNER, text, team_id=OTHER_TEAM)).message), text
    await h.outbox_drained()
    calls = len(h.slack.calls)
    created = await h.as_owner("create payments fresh")
    assert not is_refusal(created.message)
    ask = await h.cmd(PROJECT_OWNER, "delete payments fresh")
    await h.driver.click(PROJECT_OWNER, ask.button(ActionId.DELETE_CONFIRM))
    await h.outbox_drained()
    ours = [c for c in h.slack.calls[calls:] if c.method == "chat.postMessage"]
    recipients = {c.args["channel"] for c in ours}
    assert recipients == {OWNER, PROJECT_OWNER}
    assert all("`fresh`" in c.args["text"] for c in ours)
    theirs = [c.args["text"] for c in h.slack.calls[:calls] if c.args.get("channel") == OTHER_ONLY]
    assert theirs and not any(KEY_NAME in t or "Acme" in t or "fresh" in t for t in theirs)


OTHER_SENDERS = st.tuples(st.sampled_from([OWNER, PROJECT_OWNER, READER, OTHER_ONLY]), st.just(OTHER_TEAM))
OTHER_CLICK_VALUES = st.one_of(st.sampled_from(["pending", "older", "audit older"]), TOKENS)


@FUZZ
@given(sender=OTHER_SENDERS, text=st.one_of(VALID_COMMANDS, VALID_COMMANDS, NOISY_COMMANDS))
async def test_no_command_typed_in_another_workspaces_org_changes_or_shows_anything_of_this_org(
    both_orgs: ThisOrg, sender: tuple[str, str], text: str
) -> None:
    h = both_orgs.h
    user, team = sender
    before = org_state(h.db_path)
    reply = await h.cmd(user, text, team_id=team)
    assert reply.status == 200
    assert reply.message["response_type"] == "ephemeral"
    # The other org may grant roles to users with this org's members' ids: only people are not leaks.
    assert both_orgs.leaks(reply.message, typed=text, people=False) == [], reply.text
    assert org_state(h.db_path) == before


@FUZZ
@given(user=st.sampled_from([OWNER, PROJECT_OWNER, OTHER_ONLY]),
       action_id=st.sampled_from([ActionId.DELETE_CONFIRM, ActionId.DELETE_CANCEL, ActionId.KEYS_OLDER, ActionId.AUDIT_OLDER]),
       value=OTHER_CLICK_VALUES)
async def test_no_click_from_another_workspaces_org_changes_or_shows_anything_of_this_org(
    both_orgs: ThisOrg, user: str, action_id: str, value: str
) -> None:
    h = both_orgs.h
    value = {"pending": both_orgs.pending, "older": both_orgs.older["value"],
             "audit older": both_orgs.audit_older["value"]}.get(value, value)
    before, calls = org_state(h.db_path), len(h.slack.calls)
    reply = await h.driver.click(user, {"action_id": action_id, "value": value}, team_id=OTHER_TEAM)
    assert reply.status == 200
    assert reply.message["response_type"] == "ephemeral"
    assert both_orgs.leaks(reply.message, typed=value) == [], reply.text
    assert org_state(h.db_path) == before
    assert h.slack.calls[calls:] == []

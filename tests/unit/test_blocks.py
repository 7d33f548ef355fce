"""Every message keybot builds is Block Kit that slack-sdk's models accept and reproduce exactly."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from bot.domain.model import AuditEvent, KeyRecord, Project, RoleGrant
from bot.services.results import (
    AuditPage,
    CreatedKey,
    DeletedKey,
    DeleteRequest,
    KeyPage,
    Members,
    RoleChange,
    VisibleProjects,
    Whoami,
)
from bot.slack import app, blocks
from bot.slack.codec import ActionId, PageCursor, decode_page

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _key(i: int) -> KeyRecord:
    return KeyRecord(id=i, project_id=1, key_id="AbCdEfGhIj", name=f"key-{i}", masked="kb_AbCdEfGhIj_…wxyz",
                     created_by="U1", created_at=NOW, last_used_at=NOW if i % 2 else None)


def _event(i: int) -> AuditEvent:
    return AuditEvent(id=i, org_id=1, project_id=1, actor="U1", action="key created", at=NOW,
                      key_name=f"key-{i}", key_masked="kb_AbCdEfGhIj_…wxyz")


MESSAGES: dict[str, dict[str, Any]] = {
    "help": blocks.help_message(),
    "help with intro": blocks.help_message(intro="I don't know `x`."),
    "error": blocks.error_message("nope"),
    "created": blocks.created_key(CreatedKey(project="p", name="k", masked="kb_x_…abcd", plaintext="kb_secret")),
    "full page": blocks.key_page(KeyPage(project="p", keys=[_key(i) for i in range(20)], total=57, first=21)),
    "only page": blocks.key_page(KeyPage(project="p", keys=[_key(i) for i in range(3)], total=3, first=1)),
    "created project": blocks.created_key(
        CreatedKey(project="p", name="default", masked="kb_x_…abcd", plaintext="kb_secret"), new_project=True
    ),
    "empty page": blocks.key_page(KeyPage(project="p", keys=[])),
    "confirm": blocks.confirm_delete(DeleteRequest(token="tok", project="p", name="k", masked="kb_x_…abcd",
                                                   expires_at=NOW + timedelta(minutes=10))),
    "deleted": blocks.deleted(DeletedKey(project="p", name="k", masked="kb_x_…abcd")),
    "cancelled": blocks.cancelled(DeletedKey(project="p", name="k", masked="kb_x_…abcd")),
    "whoami": blocks.whoami(Whoami(org="Acme", user_id="U1", grants=[RoleGrant("U1", "owner", None),
                                                                     RoleGrant("U1", "admin", "p")])),
    "whoami nobody": blocks.whoami(Whoami(org="Acme", user_id="U1", grants=[])),
    "projects": blocks.projects(VisibleProjects([Project(id=1, org_id=1, name="p")], org_role="owner")),
    "no projects": blocks.projects(VisibleProjects([], org_role="member", org_owners=["U1", "U2"])),
    "no projects yet": blocks.projects(VisibleProjects([], org_role="owner")),
    "members": blocks.members(Members(scope="p", grants=[RoleGrant("U1", "owner", "p")])),
    "project members": blocks.members(
        Members(scope="p", grants=[RoleGrant("U0", "owner", None), RoleGrant("U1", "owner", "p")], project="p")
    ),
    "granted": blocks.role_changed(RoleChange(user_id="U2", role="admin", project="p"), actor="U1"),
    "changed": blocks.role_changed(RoleChange(user_id="U2", role="owner", project=None, previous="member"), actor="U1"),
    "unchanged": blocks.role_changed(RoleChange(user_id="U2", role="owner", project=None, previous="owner"), actor="U1"),
    "revoked": blocks.role_changed(RoleChange(user_id="U2", role=None, project=None, previous="member"), actor="U1"),
    "revoked self": blocks.role_changed(RoleChange(user_id="U1", role=None, project="p", previous="owner"), actor="U1"),
    "audit": blocks.audit_page(AuditPage(project="p", events=[_event(i) for i in range(20)], has_older=True),
                               number=1),
}


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_message_is_ephemeral_block_kit_that_slack_sdk_round_trips(name: str) -> None:
    message = MESSAGES[name]
    assert message["response_type"] == "ephemeral"
    assert message["text"]
    for block in message.get("blocks", []):
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()
        assert parsed.to_dict() == block
    assert len(message.get("blocks", [])) <= 50


def test_a_full_page_shows_twenty_keys_and_both_paging_buttons() -> None:
    page = MESSAGES["full page"]
    sections = [b for b in page["blocks"] if b["type"] == "section" and "key-" in b["text"]["text"]]
    assert len(sections) == 20
    [actions] = [b for b in page["blocks"] if b["type"] == "actions"]
    assert [e["action_id"] for e in actions["elements"]] == [ActionId.KEYS_NEWER, ActionId.KEYS_OLDER]


def test_the_paging_buttons_carry_cursors_the_codec_reads_back() -> None:
    [actions] = [b for b in MESSAGES["full page"]["blocks"] if b["type"] == "actions"]
    newer, older = (decode_page(e["value"]) for e in actions["elements"])
    assert newer == PageCursor(project="p", row_id=0, page=21)  # where the page it was on started
    assert older == PageCursor(project="p", row_id=19, page=41)  # where the next page starts


def test_the_delete_button_is_danger_with_a_danger_confirm_dialog() -> None:
    [actions] = [b for b in MESSAGES["confirm"]["blocks"] if b["type"] == "actions"]
    delete, cancel = actions["elements"]
    assert delete["style"] == "danger" and delete["confirm"]["style"] == "danger"
    assert delete["value"] == cancel["value"] == "tok"


def test_a_middle_page_says_which_keys_of_how_many_and_offers_both_ways() -> None:
    page = MESSAGES["full page"]
    assert "21–40 of 57" in page["blocks"][0]["text"]["text"]
    actions = [b for b in page["blocks"] if b["type"] == "actions"]
    assert [e["action_id"] for e in actions[0]["elements"]] == ["keys_newer", "keys_older"]


def test_a_single_page_says_all_and_offers_no_paging() -> None:
    page = MESSAGES["only page"]
    assert "all 3, newest first" in page["blocks"][0]["text"]["text"]
    assert not [b for b in page["blocks"] if b["type"] == "actions"]


def test_every_key_row_has_a_menu_of_what_an_owner_can_do_to_it() -> None:
    rows = [b for b in MESSAGES["full page"]["blocks"] if b.get("accessory")]
    assert len(rows) == 20
    labels = [[o["text"]["text"] for o in row["accessory"]["options"]] for row in rows]
    assert labels == [["Show details", "Roll (new secret)", "Disable", "Delete…", "Audit log"]] * 20
    assert [o["value"] for o in rows[0]["accessory"]["options"]] == [
        "show|p|key-0", "roll|p|key-0", "disable|p|key-0", "delete|p|key-0", "audit|p|key-0"
    ]


def test_the_same_page_of_keys_is_one_shared_message_until_a_status_changes() -> None:
    """A page is built once per keys, statuses and place (``blocks._key_page``) and its JSON written once
    (``SharedMessage.json``, which the ack sends): a kept page never shows an old status."""
    at = datetime(2026, 3, 1, tzinfo=UTC)
    key = KeyRecord(1, 1, "KAAAAAAAAA", "ci", "kb_KAAAAAAAAA_…abcd", "U1", at, None,
                    expires_at=at + timedelta(days=3, hours=1))
    pages = [blocks.key_page(KeyPage(project="p", keys=[key], total=1, first=1, now=now))
             for now in (at, at + timedelta(minutes=1), at + timedelta(days=4))]

    assert pages[0] is pages[1] and pages[2] is not pages[0]
    assert "expires in 3 days" in pages[0]["blocks"][2]["text"]["text"]
    assert "expired" in pages[2]["blocks"][2]["text"]["text"]
    assert isinstance(pages[0], blocks.SharedMessage) and json.loads(pages[0].json) == pages[0]
    assert app.acked(pages[0]).body == pages[0].json
    assert json.loads(app.acked(MESSAGES["confirm"]).body) == MESSAGES["confirm"]


def test_no_visible_project_explains_the_role_and_names_who_can_help() -> None:
    text = MESSAGES["no projects"]["text"]
    assert "Your organization role, *member*, lets you see only the projects where you hold a project role" in text
    assert "<@U1>, <@U2>" in text
    assert "Create one with `/apikeys project create <project>`" in MESSAGES["no projects yet"]["text"]


def test_a_projects_members_start_with_the_organization_owners_marked_as_such() -> None:
    text = MESSAGES["project members"]["text"]
    assert text.index("<@U0> — *owner* of the organization (controls this project's keys)") < text.index(
        "<@U1> — *owner* in `p`"
    )

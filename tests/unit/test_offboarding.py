"""Offboarding (bot/services/offboarding.py) and the reading of Slack events (bot/slack/events.py) on the
in-memory store: a deactivated user's roles end, their confirmations become void, the owners of their
keys' projects are told once, the admins when the last owner goes; a message's key-shaped strings."""

from typing import Any

import pytest

from bot.domain.keys import KeyFormat
from bot.domain.model import Actor
from bot.domain.notices import NoticeKind
from bot.services import Context, Keybot
from bot.services.offboarding import OffboardingService
from bot.slack.events import deactivation, posted_message
from tests.fakes import FakeClock, MemoryStore

TEAM = "T0001"
OWNER = Actor(TEAM, "U0OWNER")
LEAVER = Actor(TEAM, "U1LEAVER")


class Directory:
    def __init__(self, *admins: str) -> None:
        self.admins_of = list(admins)
        self.asked = 0

    async def admins(self, team_id: str, *, workspace: str | None = None) -> list[str]:
        self.asked += 1
        return self.admins_of


def service(store: MemoryStore, clock: FakeClock, directory: Directory) -> OffboardingService:
    return OffboardingService(Context(uow=store, clock=clock), directory=directory)


def dms(store: MemoryStore, kind: NoticeKind) -> list[tuple[str, Any]]:
    return [(row.user_id, row.notice) for row in store.outbox() if row.notice is not None and row.notice.kind is kind]


async def test_a_deactivated_project_owner_loses_every_role_and_the_owners_get_their_keys_once(
    keybot: Keybot, store: MemoryStore, clock: FakeClock
) -> None:
    await keybot.operators.bootstrap(team_id=TEAM, owner=OWNER.user_id, org_name="Acme")
    await keybot.projects.create(OWNER, name="payments")
    await keybot.projects.create(OWNER, name="web")
    await keybot.people.grant(OWNER, user_id=LEAVER.user_id, role="owner", project="payments")
    await keybot.people.grant(OWNER, user_id=LEAVER.user_id, role="read-only", project="web")
    await keybot.keys.create(LEAVER, project="payments", name="deploy")
    ask = await keybot.keys.request_delete(LEAVER, project="payments", name="default")
    directory = Directory("U9ADMIN")
    done = await service(store, clock, directory).deactivated(team_id=TEAM, user_id=LEAVER.user_id)
    assert sorted(done.roles) == ["owner of payments", "read-only of web"]
    assert done.voided == 1 and done.projects == ["payments"] and not done.ownerless
    assert directory.asked == 0
    assert (await keybot.people.whoami(LEAVER)).grants == []
    [(to, notice)] = dms(store, NoticeKind.USER_DEACTIVATED)
    assert to == OWNER.user_id and notice.actor == LEAVER.user_id and [k[0] for k in notice.keys] == ["deploy"]
    assert store.state.pending[ask.token].used_at is not None
    again = await service(store, clock, directory).deactivated(team_id=TEAM, user_id=LEAVER.user_id)
    assert again.roles == [] and len(dms(store, NoticeKind.USER_DEACTIVATED)) == 1


async def test_the_last_owner_deactivated_tells_the_workspace_admins(
    keybot: Keybot, store: MemoryStore, clock: FakeClock
) -> None:
    await keybot.operators.bootstrap(team_id=TEAM, owner=OWNER.user_id, org_name="Acme")
    directory = Directory("U9ADMIN", OWNER.user_id)
    done = await service(store, clock, directory).deactivated(team_id=TEAM, user_id=OWNER.user_id)
    assert done.ownerless and done.admins_told == ["U9ADMIN"]
    [(to, notice)] = dms(store, NoticeKind.ORG_OWNERLESS)
    assert to == "U9ADMIN" and notice.org == "Acme"


async def test_a_user_of_a_workspace_without_an_org_changes_nothing(store: MemoryStore, clock: FakeClock) -> None:
    done = await service(store, clock, Directory()).deactivated(team_id="T0NONE", user_id="U1")
    assert done.roles == [] and store.outbox() == []


def event(message: dict[str, Any], **body: Any) -> dict[str, Any]:
    return {"team_id": TEAM, "api_app_id": "A0KEYBOT", "authorizations": [{"user_id": "UKEYBOT", "is_bot": True}],
            "event": {"type": "message", "channel": "C1", **message}, **body}


def test_a_message_yields_its_key_shaped_strings_from_text_blocks_and_attachments_but_not_keybots_own() -> None:
    fmt = KeyFormat()
    keys = [fmt.generate().plaintext for _ in range(3)]
    message = {"user": "U1", "ts": "1.2", "text": keys[0], "attachments": [{"text": keys[1]}],
               "blocks": [{"type": "rich_text", "elements": [{"type": "rich_text_preformatted", "elements": [{"type": "text", "text": keys[2]}]}]}]}
    found = posted_message(event(message), key_format=fmt)
    assert found is not None and sorted(found.candidates) == sorted(keys) and found.poster == "U1"
    assert keys[0] not in repr(found)
    assert posted_message(event({**message, "user": "UKEYBOT"}), key_format=fmt) is None
    assert posted_message(event({"user": "U1", "ts": "1.2", "text": "no key here kb_short"}), key_format=fmt) is None
    assert posted_message(event({"subtype": "message_deleted", "ts": "1.3", "previous_message": message}), key_format=fmt) is None


@pytest.mark.parametrize(
    "odd",
    [
        {"event": {"type": "message", "channel": "C1", "user": "U1", "ts": "1.2", "subtype": []}},
        {"event": {"type": "message", "channel": "C1", "user": "U1", "ts": "1.2", "subtype": {"x": 1}}},
        {"authorizations": [{"user_id": ["UKEYBOT"], "is_bot": True}]},
        {"authorizations": [{"user_id": {"id": "UKEYBOT"}, "is_bot": True}]},
    ],
)
def test_a_message_event_of_a_shape_slack_never_sends_is_read_without_an_exception(odd: dict[str, Any]) -> None:
    fmt = KeyFormat()
    key = fmt.generate().plaintext
    body = event({"user": "U1", "ts": "1.2", "text": key})
    body.update({k: v if k != "event" else {**v, "text": key} for k, v in odd.items()})
    found = posted_message(body, key_format=fmt)
    if "subtype" in body["event"]:
        assert found is None  # a subtype is a string; anything else is no message to read
    else:
        assert found is not None and found.candidates == (key,)  # an odd bot id is nobody's


def test_only_a_user_change_with_deleted_true_is_a_deactivation() -> None:
    assert deactivation({"team_id": TEAM, "event": {"type": "user_change", "user": {"id": "U1", "deleted": True}}}) is not None
    assert deactivation({"team_id": TEAM, "event": {"type": "user_change", "user": {"id": "U1", "deleted": False}}}) is None
    assert deactivation({"team_id": TEAM, "event": {"type": "user_change", "user": "U1"}}) is None


async def test_a_deactivated_requesters_pending_request_and_reveal_button_become_void(
    keybot: Keybot, store: MemoryStore, clock: FakeClock
) -> None:
    from bot.domain.requests import RequestRef, RequestState

    await keybot.operators.bootstrap(team_id=TEAM, owner=OWNER.user_id, org_name="Acme")
    await keybot.projects.create(OWNER, name="payments")
    await keybot.people.grant(OWNER, user_id=LEAVER.user_id, role="admin", project="payments")
    approved = (await keybot.requests.request(LEAVER, project="payments")).request
    await keybot.requests.approve(OWNER, RequestRef(approved.id, approved.token))
    await keybot.requests.request(LEAVER, project="payments")

    await service(store, clock, Directory()).deactivated(team_id=TEAM, user_id=LEAVER.user_id)

    assert [r.state for r in (await keybot.requests.requests(LEAVER)).own] == [RequestState.VOID] * 2
    assert await keybot.requests.awaiting(OWNER) == []
    assert [n.decision for _, n in dms(store, NoticeKind.REVEAL_CLOSED)] == ["void"]
    assert "void" in {n.decision for _, n in dms(store, NoticeKind.REQUEST_DECIDED)}

"""Notices (bot/domain/notices.py) and their DM text (bot/slack/notices.py): the words owners read."""

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.keys import KeyFormat
from bot.domain.notices import Notice, NoticeKind
from bot.slack.notices import dm_text

AT = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
DATE = "<!date^1736942400^{date_short_pretty} at {time}|2025-01-15 12:00 UTC>"
UNTIL = AT + timedelta(days=1)
UNTIL_DATE = "<!date^1737028800^{date_short_pretty} at {time}|2025-01-16 12:00 UTC>"
SINCE = AT - timedelta(days=95)
SINCE_DATE = "<!date^1728734400^{date_short_pretty} at {time}|2024-10-12 12:00 UTC>"
MASKED = "kb_AbCdEfGhIj_…wxyz"


def notice(kind: NoticeKind, **fields: str | datetime | tuple[tuple[str, str], ...] | None) -> Notice:
    return Notice(kind=kind, recipient="U2", team_id="T1", actor="U1", at=AT, **fields)


KEY = {"project": "payments", "key_name": "ci", "key_masked": MASKED}

# The DMs exactly as keybot wrote them before notices were data (written out by hand).
EXPECTED = {
    "key created": (
        notice(NoticeKind.KEY_CREATED, **KEY),
        f":key: <@U1> created key `ci` (`{MASKED}`) in project `payments`, {DATE}.",
    ),
    "key deleted": (
        notice(NoticeKind.KEY_DELETED, **KEY),
        f":wastebasket: <@U1> deleted key `ci` (`{MASKED}`) in project `payments`, {DATE}. "
        "It no longer verifies.",
    ),
    "project role granted": (
        notice(NoticeKind.ROLE_GRANTED, project="payments", org="Acme", role="read-only"),
        f":bust_in_silhouette: <@U1> made you *read-only* in `payments`, {DATE}. "
        "That lets you see this project, see members — but not see or change its keys.",
    ),
    "project role changed": (
        notice(NoticeKind.ROLE_GRANTED, project="payments", org="Acme", role="owner", previous_role="admin"),
        f":bust_in_silhouette: <@U1> made you *owner* in `payments` (you were admin), {DATE}. "
        "That lets you create keys, list keys, manage keys (disable, enable, roll, expiry), delete keys, read "
        "the audit log, see the key policy, grant or revoke project roles, see this project, see members.",
    ),
    "org role granted": (
        notice(NoticeKind.ROLE_GRANTED, org="Acme", role="member"),
        f":bust_in_silhouette: <@U1> made you a *member* of the organization `Acme`, {DATE}. "
        "That lets you see a project only with a project role in it — and no keys.",
    ),
    "project role revoked": (
        notice(NoticeKind.ROLE_REVOKED, project="payments", org="Acme", previous_role="read-only"),
        f":bust_in_silhouette: <@U1> removed your role *read-only* in `payments`, {DATE}.",
    ),
    "org role revoked": (
        notice(NoticeKind.ROLE_REVOKED, org="Acme", previous_role="member"),
        f":bust_in_silhouette: <@U1> removed your role *member* in the organization `Acme`, {DATE}.",
    ),
    "key disabled": (
        notice(NoticeKind.KEY_DISABLED, **KEY),
        f":no_entry: <@U1> disabled key `ci` (`{MASKED}`) in project `payments`, {DATE}. "
        "It is refused until an owner enables it again.",
    ),
    "key enabled": (
        notice(NoticeKind.KEY_ENABLED, **KEY),
        f":white_check_mark: <@U1> enabled key `ci` (`{MASKED}`) in project `payments` again, {DATE}. "
        "It verifies again.",
    ),
    "key rolled": (
        notice(NoticeKind.KEY_ROLLED, **KEY, until=UNTIL),
        f":arrows_counterclockwise: <@U1> rolled key `ci` in project `payments`, {DATE}: it now shows as "
        f"`{MASKED}`, and the old secret works until {UNTIL_DATE}.",
    ),
    "key rolled without grace": (
        notice(NoticeKind.KEY_ROLLED, **KEY, until=AT),
        f":arrows_counterclockwise: <@U1> rolled key `ci` in project `payments`, {DATE}: it now shows as "
        f"`{MASKED}`, and the old secret stopped working at once.",
    ),
    "expiry changed": (
        notice(NoticeKind.EXPIRY_CHANGED, **KEY, until=UNTIL),
        f":hourglass: <@U1> changed the expiry of key `ci` (`{MASKED}`) in project `payments`, {DATE}: "
        f"it now expires {UNTIL_DATE}.",
    ),
    "expiry removed": (
        notice(NoticeKind.EXPIRY_CHANGED, **KEY),
        f":hourglass: <@U1> changed the expiry of key `ci` (`{MASKED}`) in project `payments`, {DATE}: "
        "it now never expires.",
    ),
    "policy changed": (
        notice(NoticeKind.POLICY_CHANGED, org="Acme", setting="max-lifetime", value="90d"),
        f":scroll: <@U1> changed the key policy of the organization `Acme`, {DATE}: `max-lifetime` is now `90d`.",
    ),
    "leaked key disabled": (
        notice(NoticeKind.KEY_LEAKED, **KEY, url="https://github.com/acme/app/blob/1/x.py?a=1&b=<2>", value="disabled"),
        f":rotating_light: GitHub found key `ci` (`{MASKED}`) in project `payments` in public at "
        f"https://github.com/acme/app/blob/1/x.py?a=1&amp;b=&lt;2&gt;, {DATE}. keybot disabled it (your "
        "organization's `leak-action`): it is refused until an owner enables it again. Remove it from there and "
        "give its users a new key.",
    ),
    "expiry reminder": (
        notice(NoticeKind.EXPIRY_NUDGE, **KEY, until=UNTIL, nudge=7, token="AbCdEfGhIjKlMnOp"),
        f":hourglass_flowing_sand: Key `ci` (`{MASKED}`) in project `payments` expires {UNTIL_DATE}, in 1 day. "
        "Roll it (a new secret and a fresh lifetime), extend it by 30 days, or let it expire.",
    ),
    "stale reminder": (
        notice(NoticeKind.STALE_NUDGE, **KEY, since=SINCE, nudge=8, token="AbCdEfGhIjKlMnOp"),
        f":zzz: Key `ci` (`{MASKED}`) in project `payments` has not been used since {SINCE_DATE} (95 days). "
        "A key nobody uses is only a risk: delete it, or keep it if something still needs it.",
    ),
    "grace ended": (
        notice(NoticeKind.GRACE_ENDED, **KEY, until=AT),
        f":lock: The old secret of key `ci` (`{MASKED}`) in project `payments` stopped working {DATE}: the grace "
        "period after <@U1>'s roll is over. Services still using it are refused.",
    ),
    "reminder decided": (
        notice(NoticeKind.NUDGE_DECIDED, **KEY, nudge=7, decision="extended", until=UNTIL),
        f":hourglass: <@U1> extended key `ci` (`{MASKED}`) in project `payments` by 30 days, {DATE}: it now "
        f"expires {UNTIL_DATE}.",
    ),
    "leaked key alerted": (
        notice(NoticeKind.KEY_LEAKED, **KEY, url="https://gist.github.com/u/1", value="alerted"),
        f":rotating_light: GitHub found key `ci` (`{MASKED}`) in project `payments` in public at "
        f"https://gist.github.com/u/1, {DATE}. It still works (your organization's `leak-action` is `alert`): "
        "remove it from there and roll it now with `/apikeys roll payments ci grace 0` (no grace: the leaked secret stops at once, and so does any "
        "older one still in a grace).",
    ),
    "leaked key already disabled": (
        notice(NoticeKind.KEY_LEAKED, **KEY, url="https://gist.github.com/u/1", value="already disabled"),
        f":rotating_light: GitHub found key `ci` (`{MASKED}`) in project `payments` in public at "
        f"https://gist.github.com/u/1, {DATE}. It was already disabled: do not enable it again; give its users "
        "a new key.",
    ),
    "access requested": (
        notice(NoticeKind.ACCESS_REQUESTED, project="payments", requester="U1", value="the <!here> importer", setting="30d", until=UNTIL),
        ":raising_hand: <@U1> asks for a key of project `payments` for: _the &lt;!here&gt; importer_, with "
        f"expiry `30d`. Approve it and they can reveal a new key once; the request expires {UNTIL_DATE} if "
        "nobody answers.",
    ),
    "request approved": (
        notice(NoticeKind.REQUEST_APPROVED, project="payments", requester="U2", until=UNTIL),
        ":white_check_mark: <@U1> approved your request for a key of project `payments`. Reveal it before "
        f"{UNTIL_DATE} (within 1 day): the key is created when you click, and shown once, only to you.",
    ),
    "request decided": (
        notice(NoticeKind.REQUEST_DECIDED, project="payments", requester="U3", decision="denied"),
        f":no_entry_sign: <@U1> denied <@U3>'s request for a key of project `payments`, {DATE}.",
    ),
    "reveal closed": (
        notice(NoticeKind.REVEAL_CLOSED, **KEY, requester="U2", decision="revealed"),
        f":key: You revealed your key of project `payments`, {DATE}: it is `ci` (`{MASKED}`). keybot keeps "
        "only a hash.",
    ),
    "request ended": (
        notice(NoticeKind.REQUEST_ENDED, project="payments", requester="U2", decision="expired"),
        ":hourglass: Your request for a key of project `payments` expired: no owner answered within 72 hours. "
        "`/apikeys request payments` asks again.",
    ),
    "key posted in slack": (
        notice(
            NoticeKind.KEY_LEAKED, **KEY, url="https://acme.slack.com/archives/C1/p1", channel="C1", poster="U3",
            value="disabled",
        ),
        f":rotating_light: <@U3> posted key `ci` (`{MASKED}`) in project `payments` in <#C1> "
        f"(<https://acme.slack.com/archives/C1/p1|the message>), {DATE}. keybot disabled it (your organization's "
        "`leak-action`): it is refused until an owner enables it again. They were asked to delete the message; "
        "give its users a new key.",
    ),
    "key posted in a dm, alerted": (
        notice(NoticeKind.KEY_LEAKED, **KEY, channel="D1", poster="U3", value="alerted"),
        f":rotating_light: <@U3> posted key `ci` (`{MASKED}`) in project `payments` in a direct message, {DATE}. "
        "It still works (your organization's `leak-action` is `alert`). They were asked to delete the message; "
        "roll it now with `/apikeys roll payments ci grace 0` (no grace: the leaked secret stops at once, and so does any "
        "older one still in a grace).",
    ),
    "user deactivated": (
        notice(NoticeKind.USER_DEACTIVATED, project="payments", keys=(("ci", MASKED), ("web", "kb_x_…1234"))),
        f":bust_in_silhouette: <@U1> was deactivated in Slack, {DATE}: their roles in keybot ended. They created "
        f"these keys in project `payments`: `ci` (`{MASKED}`), `web` (`kb_x_…1234`). They may still hold the "
        "secrets: roll or delete what they could use.",
    ),
    "org ownerless": (
        notice(NoticeKind.ORG_OWNERLESS, org="Acme"),
        f":warning: <@U1>, the last owner of keybot's organization `Acme` in this workspace, was deactivated in "
        f"Slack, {DATE}: nobody can manage its API keys now. To name a new owner, ask your keybot operator to run "
        "`keybot bootstrap --team-id T1 --owner <user id>` (their Slack member id, from their profile's ⋮ menu).",
    ),
}


@pytest.mark.parametrize("case", list(EXPECTED))
def test_each_notice_renders_the_dm_it_always_did(case: str) -> None:
    note, text = EXPECTED[case]
    assert dm_text(note) == text


def test_every_kind_of_notice_has_its_dm() -> None:
    assert {note.kind for note, _ in EXPECTED.values()} == set(NoticeKind)


@pytest.mark.parametrize("kind", list(NoticeKind))
def test_a_dm_shows_only_what_its_kind_is_about(kind: NoticeKind) -> None:
    """Fields a kind does not show (the recipient, the workspace, another kind's fields) stay out of it."""
    canaries = {
        f.name: f"CANARY-{f.name}"
        for f in dataclasses.fields(Notice)
        if f.name not in ("kind", "at", "until", "since", "keys")
    }
    keys = (("CANARY-keys", "CANARY-keys-masked"),)
    text = dm_text(Notice(kind=kind, at=AT, until=UNTIL, since=SINCE, keys=keys, **canaries))
    shown = {name for name, value in canaries.items() if value in text} | ({"until"} if UNTIL_DATE in text else set())
    shown |= {"since"} if SINCE_DATE in text else set()
    shown |= {"keys"} if "CANARY-keys" in text else set()
    assert (
        shown
        == {
            NoticeKind.KEY_CREATED: {"actor", "project", "key_name", "key_masked"},
            NoticeKind.KEY_DELETED: {"actor", "project", "key_name", "key_masked"},
            NoticeKind.ROLE_GRANTED: {"actor", "project", "role", "previous_role"},
            NoticeKind.ROLE_REVOKED: {"actor", "project", "previous_role"},
            NoticeKind.KEY_DISABLED: {"actor", "project", "key_name", "key_masked"},
            NoticeKind.KEY_ENABLED: {"actor", "project", "key_name", "key_masked"},
            NoticeKind.KEY_ROLLED: {"actor", "project", "key_name", "key_masked", "until"},
            NoticeKind.EXPIRY_CHANGED: {"actor", "project", "key_name", "key_masked", "until"},
            NoticeKind.POLICY_CHANGED: {"actor", "org", "setting", "value"},
            NoticeKind.EXPIRY_NUDGE: {"project", "key_name", "key_masked", "until"},
            NoticeKind.STALE_NUDGE: {"project", "key_name", "key_masked", "since"},
            NoticeKind.GRACE_ENDED: {"actor", "project", "key_name", "key_masked", "until"},
            NoticeKind.NUDGE_DECIDED: {"actor", "project", "key_name", "key_masked"},
            NoticeKind.ACCESS_REQUESTED: {"requester", "project", "value", "setting", "until"},
            NoticeKind.REQUEST_APPROVED: {"actor", "project", "until"},
            NoticeKind.REQUEST_DECIDED: {"requester", "project"},  # an unknown decision reads as an expiry
            NoticeKind.REVEAL_CLOSED: {"project"},
            NoticeKind.REQUEST_ENDED: {"project"},
            NoticeKind.KEY_LEAKED: {"project", "key_name", "key_masked", "url", "channel", "poster"},
            NoticeKind.USER_DEACTIVATED: {"actor", "project", "keys"},
            NoticeKind.ORG_OWNERLESS: {"actor", "org", "team_id"},  # the workspace: for `keybot bootstrap`
        }[kind]
    )


def test_a_notice_has_no_field_that_could_hold_a_secret() -> None:
    """A key reaches a notice by name and masked form only; a new field must be added here on purpose."""
    assert [f.name for f in dataclasses.fields(Notice)] == [
        "kind",
        "recipient",
        "team_id",
        "actor",
        "at",
        "project",
        "org",
        "key_name",
        "key_masked",
        "role",
        "previous_role",
        "enterprise_id",
        "origin",
        "until",
        "setting",
        "value",
        "nudge",  # a reminder's job id and its buttons' token (bot/domain/jobs.py), never a key's secret
        "token",
        "decision",
        "since",
        "url",
        "access_request",  # an access request's id; its buttons' secret is ``token``, never a key's
        "requester",  # who asked for a key (``value``: their reason)
        "channel",  # where a key was posted in Slack, and by whom: ids, never a secret
        "poster",
        "keys",  # (name, masked form) of a deactivated user's keys, never a secret
        "request_id",  # the request that queued it (bot/domain/tracing.py): an id, never a secret
    ]


@pytest.mark.parametrize(
    "kind",
    [
        NoticeKind.KEY_CREATED,
        NoticeKind.KEY_DELETED,
        NoticeKind.KEY_DISABLED,
        NoticeKind.KEY_ENABLED,
        NoticeKind.KEY_ROLLED,
        NoticeKind.EXPIRY_CHANGED,
        NoticeKind.KEY_LEAKED,
        NoticeKind.EXPIRY_NUDGE,
        NoticeKind.STALE_NUDGE,
        NoticeKind.GRACE_ENDED,
        NoticeKind.NUDGE_DECIDED,
    ],
)
def test_a_real_keys_notice_carries_no_secret_through(kind: NoticeKind) -> None:
    key = KeyFormat().generate()
    secret = key.plaintext.split("_", 2)[2][:22]
    note = notice(kind, project="payments", key_name="ci", key_masked=key.masked)
    for out in (dm_text(note), note.to_json(), repr(note)):
        assert key.plaintext not in out and secret not in out
    assert key.masked in dm_text(note)


@pytest.mark.parametrize("case", list(EXPECTED))
def test_a_notice_survives_the_outbox_as_json(case: str) -> None:
    note, text = EXPECTED[case]
    again = Notice.from_json(note.to_json())
    assert again == note
    assert isinstance(again.kind, NoticeKind) and again.at.tzinfo is not None
    assert dm_text(again) == text


def test_a_notice_keeps_its_enterprise_through_json() -> None:
    note = dataclasses.replace(EXPECTED["key created"][0], enterprise_id="E0GRID")
    assert Notice.from_json(note.to_json()).enterprise_id == "E0GRID"

"""The lifecycle's replies (bot/slack/lifecycle_blocks.py), a key's status in the list (a row of ``key_page``)
and the lifecycle's audit sentences: Block Kit that slack-sdk round-trips, and the words owners read."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from bot.domain.lifecycle import LeakAction, Policy, PolicyField
from bot.domain.model import AuditEvent, KeyRecord
from bot.domain.notices import NoticeKind
from bot.services.lifecycle import KeyChange, KeyDetails, PolicyView, RolledKey
from bot.services.results import KeyPage
from bot.slack import blocks, lifecycle_blocks
from bot.slack.dates import slack_date

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
MASKED = "kb_AbCdEfGhIj_…wxyz"
KEY = KeyRecord(
    id=1, project_id=1, key_id="AbCdEfGhIj", name="ci", masked=MASKED, created_by="U1",
    created_at=NOW - timedelta(days=40), last_used_at=None,
)
PLAINTEXT = "kb_NewNewNewN_" + "s" * 28
ROLLED = RolledKey(
    project="payments", name="ci", masked="kb_NewNewNewN_…ssss", old_masked=MASKED,
    retiring_at=NOW + timedelta(hours=24), expires_at=None, now=NOW, plaintext=PLAINTEXT,
)


def _text(message: dict[str, Any]) -> str:
    parts = [message["text"]]
    for block in message.get("blocks", []):
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [e["text"] for e in block.get("elements", []) if "text" in e]
    return "\n".join(parts)


MESSAGES: dict[str, dict[str, Any]] = {
    "rolled": lifecycle_blocks.rolled_key(ROLLED),
    "rolled at once": lifecycle_blocks.rolled_key(replace(ROLLED, retiring_at=NOW, expires_at=NOW + timedelta(days=9))),
    "show": lifecycle_blocks.key_details(KeyDetails("payments", replace(KEY, note="for <CI> `x`"), NOW)),
    "show changed": lifecycle_blocks.key_details(
        KeyDetails("payments", replace(KEY, changed_at=NOW, changed_by="U2", last_used_at=NOW), NOW)
    ),
    "disabled": lifecycle_blocks.key_changed(KeyChange(NoticeKind.KEY_DISABLED, "payments", "ci", MASKED, None, NOW)),
    "already disabled": lifecycle_blocks.key_changed(
        KeyChange(NoticeKind.KEY_DISABLED, "payments", "ci", MASKED, None, NOW, changed=False)
    ),
    "enabled": lifecycle_blocks.key_changed(KeyChange(NoticeKind.KEY_ENABLED, "payments", "ci", MASKED, None, NOW)),
    "expiry": lifecycle_blocks.key_changed(
        KeyChange(NoticeKind.EXPIRY_CHANGED, "payments", "ci", MASKED, NOW + timedelta(days=30), NOW)
    ),
    "no expiry": lifecycle_blocks.key_changed(KeyChange(NoticeKind.EXPIRY_CHANGED, "payments", "ci", MASKED, None, NOW)),
    "policy": lifecycle_blocks.policy_view(PolicyView("Acme", Policy(), may_change=False)),
    "policy changed": lifecycle_blocks.policy_view(
        PolicyView("Acme", Policy(max_lifetime=timedelta(days=90), leak_action=LeakAction.ALERT), True,
                   changed=PolicyField.MAX_LIFETIME)
    ),
    "policy already": lifecycle_blocks.policy_view(
        PolicyView("Acme", Policy(), True, changed=PolicyField.STALE_AFTER, already=True)
    ),
}


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_each_lifecycle_reply_is_ephemeral_block_kit_that_slack_sdk_round_trips(name: str) -> None:
    message = MESSAGES[name]
    assert message["response_type"] == "ephemeral" and message["text"]
    for block in message["blocks"]:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()
        assert parsed.to_dict() == block


def test_a_rolled_key_shows_its_new_secret_once_and_when_the_old_one_stops() -> None:
    text = _text(MESSAGES["rolled"])
    assert text.count(PLAINTEXT) == 1 and PLAINTEXT not in MESSAGES["rolled"]["text"]
    assert f"The old secret (`{MASKED}`) keeps working until {slack_date(ROLLED.retiring_at)} (1 day)" in text
    assert "stopped working now" in _text(MESSAGES["rolled at once"])
    assert "It still expires" in _text(MESSAGES["rolled at once"])


def test_show_escapes_the_note_and_names_creator_last_use_expiry_and_last_change() -> None:
    text = _text(MESSAGES["show"])
    assert "*Note:* for ‹CI› 'x'" in text
    assert "*Status:* active" in text and "*Expires:* never" in text and "*Last used:* never" in text
    assert f"*Created* by <@U1> {slack_date(KEY.created_at)}" in text
    assert "Last change" not in text
    assert f"*Last change* by <@U2> {slack_date(NOW)}" in _text(MESSAGES["show changed"])


def test_the_policy_lists_every_setting_and_says_who_may_change_it() -> None:
    text = _text(MESSAGES["policy"])
    for line in ("`max-lifetime` *none*", "`default-lifetime` *none*", "`stale-after` *90d*", "`leak-action` *disable*"):
        assert line in text
    assert "Only organization owners can change it." in text
    changed = _text(MESSAGES["policy changed"])
    assert "Changed `max-lifetime`" in changed and "`max-lifetime` *90d*" in changed and "/apikeys policy" in changed
    assert "`stale-after` already is `90d`. Nothing changed." in _text(MESSAGES["policy already"])


def _listed(key: KeyRecord, at: datetime) -> dict[str, Any]:
    """``key``'s row in a page of keys read at ``at``."""
    row: dict[str, Any] = blocks.key_page(KeyPage(project="web", keys=[key], total=1, first=1, now=at))["blocks"][2]
    return row


@pytest.mark.parametrize(
    ("fields", "shows", "hides"),
    [
        ({}, "active", ("expire", "disabled", "retiring")),
        ({"expires_at": NOW + timedelta(days=30)}, f"active, expires {slack_date(NOW + timedelta(days=30))}", ("expired",)),
        ({"expires_at": NOW + timedelta(days=3, hours=2)}, "*expires in 3 days*", ("active",)),
        ({"expires_at": NOW - timedelta(seconds=1)}, f":x: *expired* {slack_date(NOW - timedelta(seconds=1))}", ("active",)),
        ({"disabled_at": NOW, "expires_at": NOW - timedelta(days=1)}, ":no_entry: *disabled*", ("active", "expired")),
        ({"retiring_at": NOW + timedelta(hours=5)}, f"active · old secret retiring until {slack_date(NOW + timedelta(hours=5))}", ()),
        ({"retiring_at": NOW}, "active", ("retiring",)),
    ],
)
def test_a_listed_key_shows_its_status_creator_and_last_use(
    fields: dict[str, datetime], shows: str, hides: tuple[str, ...]
) -> None:
    line = _listed(replace(KEY, **fields), NOW)["text"]["text"]
    first, second, status = line.split("\n")
    assert first == f"*ci*   `{MASKED}`"
    assert second == f"created by <@U1> {slack_date(KEY.created_at)} · last used never"
    assert shows in status and not [word for word in hides if word in status]


def test_the_same_key_read_once_shows_the_status_of_each_moment_it_is_listed_at() -> None:
    """A row is built once per key and status and then shared (``blocks._key_section``): the status at
    each listing is part of what it is kept by, so a kept page never shows an old status."""
    key = replace(KEY, expires_at=NOW + timedelta(days=3))

    rows = [_listed(key, at) for at in (NOW, NOW, NOW + timedelta(days=1), NOW + timedelta(days=4))]

    texts = [row["text"]["text"].split("\n")[2] for row in rows]
    assert rows[0] is rows[1]
    assert ["in 3 days" in texts[0], "in 2 days" in texts[2], "expired" in texts[3]] == [True, True, True]


def _event(action: str, detail: str | None = None) -> AuditEvent:
    return AuditEvent(org_id=1, project_id=1, actor="U1", action=action, at=NOW, key_name="ci", key_masked=MASKED,
                      detail=detail)


@pytest.mark.parametrize(
    ("event", "sentence"),
    [
        (_event("key disabled"), f"disabled key `ci` (`{MASKED}`)"),
        (_event("key enabled"), f"enabled key `ci` (`{MASKED}`) again"),
        (_event("key rolled", (NOW + timedelta(hours=2)).isoformat()),
         f"rolled key `ci` (`{MASKED}`); the old secret works until {slack_date(NOW + timedelta(hours=2))}"),
        (_event("key rolled", NOW.isoformat()), f"rolled key `ci` (`{MASKED}`); the old secret stopped working at once"),
        (_event("expiry changed", "2027-03-01T23:59:59+00:00"),
         f"set key `ci` (`{MASKED}`) to expire {slack_date(datetime(2027, 3, 1, 23, 59, 59, tzinfo=UTC))}"),
        (_event("expiry changed", "never"), f"removed the expiry of key `ci` (`{MASKED}`)"),
        (_event("key created", NOW.isoformat()), f"created key `ci` (`{MASKED}`), expiring {slack_date(NOW)}"),
        (_event("key created"), f"created key `ci` (`{MASKED}`)"),
        (replace(_event("policy changed", "max-lifetime 90d"), key_name=None, key_masked=None),
         "changed the key policy: `max-lifetime 90d`"),
    ],
)
def test_each_lifecycle_change_reads_as_a_sentence_in_the_audit_log(event: AuditEvent, sentence: str) -> None:
    assert blocks._audit_sentence(event, "payments") == sentence

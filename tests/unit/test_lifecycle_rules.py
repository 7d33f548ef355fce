"""The expiry policy, key status and grace rules, on a fixed clock."""

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.errors import InvalidInput
from bot.domain.lifecycle import (
    DEFAULT_GRACE,
    EXPIRING_SOON,
    NOTE_MAX,
    KeyStatus,
    LeakAction,
    Policy,
    PolicyField,
    clean_note,
    grace_period,
    policy_field_named,
    policy_text,
    policy_value,
    retiring_status,
    secret_status,
    status_of,
)
from bot.domain.names import storable_text

NOW = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)


def test_without_a_policy_a_key_lives_as_long_as_asked_or_for_ever() -> None:
    assert Policy().expiry(None, asked=False, now=NOW) is None
    assert Policy().expiry(None, asked=True, now=NOW) is None
    assert Policy().expiry(NOW + timedelta(days=9), asked=True, now=NOW) == NOW + timedelta(days=9)


def test_the_default_lifetime_applies_only_when_no_expiry_is_asked_for() -> None:
    policy = Policy(default_lifetime=timedelta(days=30))
    assert policy.expiry(None, asked=False, now=NOW) == NOW + timedelta(days=30)
    assert policy.expiry(NOW + timedelta(days=2), asked=True, now=NOW) == NOW + timedelta(days=2)
    assert policy.expiry(None, asked=True, now=NOW) is None


def test_the_maximum_lifetime_refuses_longer_keys_and_names_the_maximum() -> None:
    policy = Policy(max_lifetime=timedelta(days=90))
    assert policy.expiry(NOW + timedelta(days=90), asked=True, now=NOW) == NOW + timedelta(days=90)
    with pytest.raises(InvalidInput, match="at most 90d"):
        policy.expiry(NOW + timedelta(days=90, seconds=1), asked=True, now=NOW)
    with pytest.raises(InvalidInput, match="at most 90d"):
        policy.expiry(None, asked=True, now=NOW)
    with pytest.raises(InvalidInput, match="at most 90d"):
        policy.expiry(None, asked=False, now=NOW)


def test_a_new_projects_default_key_gets_the_default_lifetime_else_the_maximum_else_none() -> None:
    assert Policy().default_expiry(now=NOW) is None
    assert Policy(max_lifetime=timedelta(days=90)).default_expiry(now=NOW) == NOW + timedelta(days=90)
    both = Policy(max_lifetime=timedelta(days=90), default_lifetime=timedelta(days=30))
    assert both.default_expiry(now=NOW) == NOW + timedelta(days=30)


def test_a_default_longer_than_the_maximum_is_refused_either_way() -> None:
    with pytest.raises(InvalidInput, match="cannot be longer"):
        Policy(max_lifetime=timedelta(days=30)).with_field(PolicyField.DEFAULT_LIFETIME, timedelta(days=31))
    with pytest.raises(InvalidInput, match="cannot be longer"):
        Policy(default_lifetime=timedelta(days=30)).with_field(PolicyField.MAX_LIFETIME, timedelta(days=29))


def test_policy_fields_change_one_at_a_time() -> None:
    policy = Policy().with_field(PolicyField.MAX_LIFETIME, timedelta(days=30))
    policy = policy.with_field(PolicyField.LEAK_ACTION, LeakAction.ALERT)
    assert policy == Policy(max_lifetime=timedelta(days=30), leak_action=LeakAction.ALERT)
    assert policy.with_field(PolicyField.MAX_LIFETIME, None).max_lifetime is None
    with pytest.raises(InvalidInput):
        policy.with_field(PolicyField.STALE_AFTER, None)
    with pytest.raises(InvalidInput):
        policy.with_field(PolicyField.LEAK_ACTION, timedelta(days=1))


def test_status_follows_disable_then_expiry_then_the_expiring_window() -> None:
    soon = NOW + EXPIRING_SOON
    assert status_of(disabled=False, expires_at=None, now=NOW) is KeyStatus.ACTIVE
    assert status_of(disabled=False, expires_at=soon + timedelta(seconds=1), now=NOW) is KeyStatus.ACTIVE
    assert status_of(disabled=False, expires_at=soon, now=NOW) is KeyStatus.EXPIRING
    assert status_of(disabled=False, expires_at=NOW, now=NOW) is KeyStatus.EXPIRING
    assert status_of(disabled=False, expires_at=NOW - timedelta(seconds=1), now=NOW) is KeyStatus.EXPIRED
    assert status_of(disabled=True, expires_at=None, now=NOW) is KeyStatus.DISABLED
    assert status_of(disabled=True, expires_at=NOW - timedelta(days=1), now=NOW) is KeyStatus.DISABLED


def test_an_old_secret_works_until_its_grace_ends_and_not_at_that_moment() -> None:
    assert retiring_status(retiring_at=NOW, now=NOW - timedelta(seconds=1)) is KeyStatus.RETIRING
    assert retiring_status(retiring_at=NOW, now=NOW) is KeyStatus.EXPIRED  # a grace of 0 ends it at once
    assert retiring_status(retiring_at=NOW, now=NOW + timedelta(seconds=1)) is KeyStatus.EXPIRED


def test_an_old_secret_is_never_more_usable_than_its_key() -> None:
    grace_end = NOW + timedelta(hours=5)

    def status(**fields: object) -> KeyStatus:
        values: dict[str, object] = {"disabled": False, "expires_at": None, "retiring_at": grace_end, "now": NOW}
        return secret_status(**{**values, **fields})  # type: ignore[arg-type]

    assert status() is KeyStatus.RETIRING
    assert status(now=grace_end) is KeyStatus.EXPIRED
    assert status(disabled=True) is KeyStatus.DISABLED
    assert status(expires_at=NOW - timedelta(seconds=1)) is KeyStatus.EXPIRED
    assert status(expires_at=NOW + timedelta(days=1)) is KeyStatus.RETIRING
    assert status(retiring_at=None) is KeyStatus.ACTIVE  # the current secret
    assert status(retiring_at=None, expires_at=NOW + timedelta(days=1)) is KeyStatus.EXPIRING


@pytest.mark.parametrize(
    ("raw", "field"),
    [("max-lifetime", PolicyField.MAX_LIFETIME), ("Default-Lifetime", PolicyField.DEFAULT_LIFETIME),
     ("stale-after", PolicyField.STALE_AFTER), ("LEAK-ACTION", PolicyField.LEAK_ACTION)],
)
def test_policy_settings_are_named_case_insensitively(raw: str, field: PolicyField) -> None:
    assert policy_field_named(raw) is field


def test_an_unknown_policy_setting_lists_the_settings_with_an_example() -> None:
    with pytest.raises(InvalidInput) as err:
        policy_field_named("max_lifetime`<!here>")
    text = str(err.value)
    assert "`max-lifetime`" in text and "`leak-action`" in text and "/apikeys policy max-lifetime 90d" in text
    assert "<!here>" not in text


@pytest.mark.parametrize(
    ("field", "raw", "value"),
    [
        (PolicyField.MAX_LIFETIME, "90d", timedelta(days=90)),
        (PolicyField.MAX_LIFETIME, "none", None),
        (PolicyField.DEFAULT_LIFETIME, "2w", timedelta(weeks=2)),
        (PolicyField.DEFAULT_LIFETIME, "None", None),
        (PolicyField.STALE_AFTER, "36h", timedelta(hours=36)),
        (PolicyField.LEAK_ACTION, "alert", LeakAction.ALERT),
        (PolicyField.LEAK_ACTION, "Disable", LeakAction.DISABLE),
    ],
)
def test_policy_values_are_read_per_setting(field: PolicyField, raw: str, value: object) -> None:
    assert policy_value(field, raw) == value


@pytest.mark.parametrize(
    ("field", "raw", "example"),
    [
        (PolicyField.MAX_LIFETIME, "90", "/apikeys policy max-lifetime 90d"),
        (PolicyField.DEFAULT_LIFETIME, "forever", "/apikeys policy default-lifetime 90d"),
        (PolicyField.STALE_AFTER, "none", "/apikeys policy stale-after 90d"),
        (PolicyField.STALE_AFTER, "soon", "`30d`"),
        (PolicyField.LEAK_ACTION, "delete", "/apikeys policy leak-action alert"),
    ],
)
def test_a_wrong_policy_value_says_what_the_setting_takes(field: PolicyField, raw: str, example: str) -> None:
    with pytest.raises(InvalidInput) as err:
        policy_value(field, raw)
    assert example in str(err.value)


def test_a_note_is_one_line_of_at_most_two_hundred_characters() -> None:
    assert clean_note("  deploys   the\tweb app ") == "deploys the web app"
    assert clean_note("x" * NOTE_MAX) == "x" * NOTE_MAX
    with pytest.raises(InvalidInput, match="at most 200 characters; yours has 201"):
        clean_note("x" * (NOTE_MAX + 1))
    with pytest.raises(InvalidInput, match="needs some text"):
        clean_note("   ")
    with pytest.raises(InvalidInput, match="control characters"):
        clean_note("deploys\x00 the web app")  # PostgreSQL refuses NUL in text


@pytest.mark.parametrize("text", ["a\x00b", "bell\x07", "\ud800 lone surrogate", "esc\x1b[0m"])
def test_text_a_database_cannot_keep_is_refused_as_typed(text: str) -> None:
    with pytest.raises(InvalidInput, match="A note cannot hold control characters"):
        storable_text(text, what="A note")


@pytest.mark.parametrize("text", ["déploie l’app", "👨\u200d👩\u200d👧 family", "日本語のメモ", "tab and space"])
def test_any_script_emoji_and_joiners_are_storable(text: str) -> None:
    assert storable_text(text, what="A note") == text


def test_grace_defaults_to_a_day_allows_zero_and_stops_at_a_week() -> None:
    assert grace_period(None) == DEFAULT_GRACE == timedelta(hours=24)
    assert grace_period(timedelta(0)) == timedelta(0)
    assert grace_period(timedelta(days=7)) == timedelta(days=7)
    with pytest.raises(InvalidInput, match="at most 7 days"):
        grace_period(timedelta(days=7, hours=1))


def test_each_policy_setting_reads_back_as_one_would_type_it() -> None:
    policy = Policy(max_lifetime=timedelta(days=90), leak_action=LeakAction.ALERT)
    assert [policy_text(policy, field) for field in PolicyField] == ["90d", "none", "90d", "alert", "on"]
    for field in PolicyField:
        assert policy.with_field(field, policy_value(field, policy_text(policy, field))) == policy
    closed = policy.with_field(PolicyField.REQUESTS, policy_value(PolicyField.REQUESTS, " OFF "))
    assert closed.requests is False and policy_text(closed, PolicyField.REQUESTS) == "off"
    with pytest.raises(InvalidInput, match=r"`on`.*or `off`"):
        policy_value(PolicyField.REQUESTS, "maybe")

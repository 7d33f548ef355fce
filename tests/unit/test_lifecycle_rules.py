"""The expiry policy, key status and grace rules, on a fixed clock."""

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.errors import InvalidInput
from bot.domain.lifecycle import (
    DEFAULT_GRACE,
    EXPIRING_SOON,
    KeyStatus,
    LeakAction,
    Policy,
    PolicyField,
    grace_period,
    retiring_status,
    status_of,
)

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


def test_an_old_secret_retires_from_the_first_second_after_its_grace() -> None:
    assert retiring_status(retiring_at=NOW, now=NOW) is KeyStatus.RETIRING
    assert retiring_status(retiring_at=NOW, now=NOW + timedelta(seconds=1)) is KeyStatus.EXPIRED


def test_grace_defaults_to_a_day_allows_zero_and_stops_at_a_week() -> None:
    assert grace_period(None) == DEFAULT_GRACE == timedelta(hours=24)
    assert grace_period(timedelta(0)) == timedelta(0)
    assert grace_period(timedelta(days=7)) == timedelta(days=7)
    with pytest.raises(InvalidInput, match="at most 7 days"):
        grace_period(timedelta(days=7, hours=1))

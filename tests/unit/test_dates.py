"""Slack dates: the reader's time zone in Slack, UTC in the fallback text."""

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from bot.slack.dates import mention, slack_date


def test_a_slack_date_carries_the_timestamp_and_a_utc_fallback() -> None:
    at = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert slack_date(at) == f"<!date^{int(at.timestamp())}^{{date_short_pretty}} at {{time}}|2026-03-04 05:06 UTC>"


def test_the_fallback_is_in_utc_whatever_the_zone_of_the_moment() -> None:
    paris = timezone(timedelta(hours=1))
    assert slack_date(datetime(2026, 1, 1, 0, 30, tzinfo=paris)).endswith("|2025-12-31 23:30 UTC>")


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)))
def test_the_fallback_matches_strftime_for_any_moment(at: datetime) -> None:
    assert slack_date(at).endswith(f"|{at.strftime('%Y-%m-%d %H:%M')} UTC>")


def test_a_mention_is_slacks_user_escape() -> None:
    assert mention("U123") == "<@U123>"

"""Durations and moments as people type them, on a fixed clock."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.durations import MAX_DURATION, format_duration, format_span, parse_duration, parse_when
from bot.domain.errors import InvalidInput

NOW = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("12h", timedelta(hours=12)), ("30d", timedelta(days=30)), ("2w", timedelta(weeks=2)), (" 1D ", timedelta(days=1))],
)
def test_durations_in_hours_days_and_weeks_are_understood(raw: str, expected: timedelta) -> None:
    assert parse_duration(raw) == expected


@given(st.timedeltas(min_value=timedelta(hours=1), max_value=MAX_DURATION).map(lambda d: timedelta(hours=d // timedelta(hours=1))))
def test_a_formatted_duration_parses_back_to_itself(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize("raw", ["", "12", "h", "1.5d", "-1d", "1y", "3 d", "١٢h", "12hours", "0d"])
def test_malformed_durations_are_refused_with_an_example(raw: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_duration(raw)
    assert "`30d`" in str(err.value)


def test_zero_is_a_duration_only_where_allowed() -> None:
    assert parse_duration("0", allow_zero=True) == timedelta(0)
    with pytest.raises(InvalidInput):
        parse_duration("0")


def test_durations_longer_than_ten_years_are_refused() -> None:
    assert parse_duration("520w") <= MAX_DURATION
    with pytest.raises(InvalidInput, match="at most 10 years"):
        parse_duration("3651d")


def test_format_duration_picks_the_largest_exact_unit() -> None:
    assert [format_duration(timedelta(hours=h)) for h in (0, 5, 24, 36, 168, 192)] == ["0", "5h", "1d", "36h", "1w", "8d"]


def test_a_date_means_the_end_of_that_day_in_utc() -> None:
    assert parse_when("2027-03-01", now=NOW) == datetime(2027, 3, 1, 23, 59, 59, tzinfo=UTC)


def test_today_is_still_in_the_future_until_its_last_second() -> None:
    assert parse_when("2026-12-01", now=NOW) == datetime(2026, 12, 1, 23, 59, 59, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="in the past"):
        parse_when("2026-12-01", now=datetime(2026, 12, 2, tzinfo=UTC))


def test_never_means_no_expiry_and_a_duration_counts_from_now() -> None:
    assert parse_when("never", now=NOW) is None
    assert parse_when("30d", now=NOW) == NOW + timedelta(days=30)


@pytest.mark.parametrize("raw", ["2025-01-01", "2027-02-30", "2027-3-1", "tomorrow", "0", "soon"])
def test_past_impossible_or_unknown_moments_are_refused_with_what_is_accepted(raw: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_when(raw, now=NOW)
    assert "`never`" in str(err.value)


@pytest.mark.parametrize(
    ("span", "words"),
    [
        (timedelta(days=30, hours=5), "30 days"),
        (timedelta(days=1, hours=23), "1 day"),
        (timedelta(hours=23, minutes=59), "23 hours"),
        (timedelta(hours=1), "1 hour"),
        (timedelta(minutes=2, seconds=59), "2 minutes"),
        (timedelta(seconds=59), "less than a minute"),
        (timedelta(0), "less than a minute"),
    ],
)
def test_a_span_reads_in_its_largest_whole_unit(span: timedelta, words: str) -> None:
    assert format_span(span) == words

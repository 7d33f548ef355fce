"""The pure rules of scheduled work (bot/domain/jobs.py): when reminders fall due, whether one still
applies when it fires, a stale key's periods, the retry backoff, and a job's payload as stored."""

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.jobs import (
    JobData,
    backoff,
    expiry_nudge_applies,
    expiry_nudge_moments,
    stale_moment,
    stale_since,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("left", "leads"),
    [
        (30 * DAY, [7 * DAY, DAY]),
        (7 * DAY + timedelta(seconds=1), [7 * DAY, DAY]),
        (7 * DAY, [DAY]),  # the 7-day moment is now: not still to come
        (DAY + timedelta(seconds=1), [DAY]),
        (DAY, []),
        (timedelta(hours=5), []),
    ],
)
def test_reminders_are_seven_days_and_one_day_before_and_only_those_still_to_come(
    left: timedelta, leads: list[timedelta]
) -> None:
    assert expiry_nudge_moments(NOW + left, now=NOW) == [NOW + left - lead for lead in leads]


def test_a_reminder_applies_until_the_key_expires_unless_a_nearer_one_fell_due_since() -> None:
    expires = NOW + 10 * DAY
    week, day = expires - 7 * DAY, expires - DAY
    assert expiry_nudge_applies(due_at=week, expires_at=expires, now=week)
    assert expiry_nudge_applies(due_at=week, expires_at=expires, now=day - timedelta(seconds=1))
    assert not expiry_nudge_applies(due_at=week, expires_at=expires, now=day)  # the 1-day one is due too
    assert expiry_nudge_applies(due_at=day, expires_at=expires, now=day)
    assert expiry_nudge_applies(due_at=day, expires_at=expires, now=expires - timedelta(seconds=1))
    assert not expiry_nudge_applies(due_at=day, expires_at=expires, now=expires)  # expired: too late


def test_a_keys_disuse_counts_from_its_last_use_or_else_its_creation() -> None:
    assert stale_since(last_used_at=NOW, created_at=NOW - DAY) == NOW
    assert stale_since(last_used_at=None, created_at=NOW - DAY) == NOW - DAY


@pytest.mark.parametrize(
    ("unused", "moment"),
    [
        (89 * DAY, None),
        (90 * DAY - timedelta(seconds=1), None),
        (90 * DAY, 90 * DAY),
        (179 * DAY, 90 * DAY),
        (180 * DAY, 180 * DAY),
        (400 * DAY, 360 * DAY),
    ],
)
def test_a_stale_key_is_at_the_end_of_its_latest_whole_period(unused: timedelta, moment: timedelta | None) -> None:
    since = NOW - unused
    expected = None if moment is None else since + moment
    assert stale_moment(since, stale_after=90 * DAY, now=NOW) == expected


def test_a_failed_job_waits_twice_as_long_each_time_up_to_a_cap() -> None:
    assert [backoff(n).total_seconds() for n in (0, 1, 2, 3, 4)] == [1, 1, 2, 4, 8]
    assert backoff(3, base=10).total_seconds() == 40
    assert backoff(40).total_seconds() == 3600
    assert backoff(5, base=10, cap=60).total_seconds() == 60


def test_a_jobs_payload_survives_the_database_as_json() -> None:
    data = JobData(
        expires_at=NOW,
        retiring_at=NOW + DAY,
        since=NOW - DAY,
        old_masked="kb_AbCdEfGhIj_…wxyz",
        by="U1",
        recipients=("U1", "U2"),
        token="tok",
    )
    assert JobData.from_json(data.to_json()) == data
    assert JobData().to_json() == "{}" and JobData.from_json("{}") == JobData() == JobData.from_json(None)
    assert JobData.from_json('{"since":"2026-03-01T12:00:00+00:00","added_later":1}') == JobData(since=NOW)
    assert "tok" not in repr(data)

"""A key's status and lifecycle moments in words, for the key list, ``show`` and the audit log."""

from datetime import datetime

from bot.domain.durations import format_span
from bot.domain.lifecycle import KeyStatus, status_of
from bot.domain.model import KeyRecord
from bot.slack.dates import slack_date


def key_status(key: KeyRecord, now: datetime) -> str:
    """``active``, ``disabled``, ``expires in …``, ``expired``; then ``retiring until …`` while a rolled
    key's old secret still works."""
    status = status_of(disabled=key.disabled_at is not None, expires_at=key.expires_at, now=now)
    match status:
        case KeyStatus.DISABLED:
            text = ":no_entry: *disabled*"
        case KeyStatus.EXPIRED:
            assert key.expires_at is not None
            text = f":x: *expired* {slack_date(key.expires_at)}"
        case KeyStatus.EXPIRING:
            assert key.expires_at is not None
            left = format_span(key.expires_at - now)
            text = f":hourglass: *expires in {left}* ({slack_date(key.expires_at)})"
        case _:
            text = "active" + (f", expires {slack_date(key.expires_at)}" if key.expires_at else "")
    if key.retiring_at is not None and now < key.retiring_at:
        text += f" · old secret retiring until {slack_date(key.retiring_at)}"
    return text


def moment(detail: str | None) -> str:
    """An audit event's ISO moment as a Slack date (``never`` stays ``never``)."""
    if detail is None or detail == "never":
        return "never"
    try:
        return slack_date(datetime.fromisoformat(detail))
    except ValueError:  # written by another version
        return detail


def old_secret(detail: str | None, *, rolled_at: datetime) -> str:
    """What became of a rolled key's old secret, from its audit event."""
    try:
        until = None if detail is None else datetime.fromisoformat(detail)
    except ValueError:
        until = None
    if until is not None and until > rolled_at:
        return f"the old secret works until {slack_date(until)}"
    return "the old secret stopped working at once"

"""Dates as Slack shows them: in each reader's own time zone, with a UTC fallback."""

from datetime import UTC, datetime


def slack_date(at: datetime) -> str:
    """``<!date^…>``: Slack renders it in the reader's time zone ("today at 14:05"), with the UTC time
    as the fallback text. (Formatted by hand: ``strftime`` was most of a key page's rendering time.)"""
    utc = at.astimezone(UTC)
    fallback = f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d} {utc.hour:02d}:{utc.minute:02d} UTC"
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def mention(user_id: str) -> str:
    return f"<@{user_id}>"

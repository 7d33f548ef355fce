"""Dates as Slack shows them: in each reader's own time zone, with a UTC fallback."""

from datetime import datetime


def slack_date(at: datetime) -> str:
    """``<!date^…>``: Slack renders it in the reader's time zone ("today at 14:05")."""
    ts = int(at.timestamp())
    return f"<!date^{ts}^{{date_short_pretty}} at {{time}}|{at.strftime('%Y-%m-%d %H:%M UTC')}>"


def mention(user_id: str) -> str:
    return f"<@{user_id}>"

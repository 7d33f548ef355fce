"""Durations and moments as people type them: ``12h``, ``30d``, ``2w``, ``0``, an ISO date, ``never``.

- ``<dur>``: a whole number of hours (``h``), days (``d``) or weeks (``w``), or ``0``; at most 10 years.
- ``<when>``: a ``<dur>`` from now, an ISO date (``2027-03-01``: the end of that day, 23:59:59 UTC), or
  ``never``. A date or duration that is not in the future is refused.
"""

import re
from datetime import UTC, date, datetime, time, timedelta

from bot.domain.errors import InvalidInput
from bot.domain.names import shown

_DURATION_RE = re.compile(r"([0-9]{1,6})([hdw])")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
MAX_DURATION = timedelta(days=3650)
DURATION_HELP = "a number of hours, days or weeks, like `12h`, `30d` or `2w`"
WHEN_HELP = f"{DURATION_HELP} from now, a date like `2027-03-01` (the end of that day, UTC), or `never`"


def parse_duration(raw: str, *, allow_zero: bool = False) -> timedelta:
    """``12h`` → 12 hours; ``0`` only when ``allow_zero``. InvalidInput says what is accepted."""
    text = raw.strip().lower()
    if text == "0" and allow_zero:
        return timedelta(0)
    match = _DURATION_RE.fullmatch(text)
    if match is None:
        zero = ", or `0`" if allow_zero else ""
        raise InvalidInput(f"`{shown(raw)}` is not a duration. Use {DURATION_HELP}{zero}.")
    value = int(match[1]) * _UNITS[match[2]]
    if value == timedelta(0) and not allow_zero:
        raise InvalidInput(f"`{shown(raw)}` is no time at all. Use {DURATION_HELP}.")
    if value > MAX_DURATION:
        raise InvalidInput(f"`{shown(raw)}` is too long: at most 10 years (`520w`).")
    return value


def format_duration(value: timedelta) -> str:
    """The shortest exact ``<dur>`` for ``value`` (whole hours): ``2w``, ``30d``, ``36h``, ``0``."""
    hours = int(value.total_seconds() // 3600)
    if hours == 0:
        return "0"
    if hours % (24 * 7) == 0:
        return f"{hours // (24 * 7)}w"
    if hours % 24 == 0:
        return f"{hours // 24}d"
    return f"{hours}h"


def format_span(value: timedelta) -> str:
    """Roughly how long ``value`` is, in words: ``3 days``, ``1 hour``, ``12 minutes``, ``less than a minute``."""
    seconds = int(value.total_seconds())
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return "less than a minute"


def parse_when(raw: str, *, now: datetime) -> datetime | None:
    """The moment ``raw`` names (None for ``never``); InvalidInput if malformed or not in the future."""
    text = raw.strip().lower()
    if text == "never":
        return None
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(f"`{shown(raw)}` is not a real date. Use {WHEN_HELP}.") from None
        moment = datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
        if moment <= now:
            raise InvalidInput(f"`{shown(raw)}` is in the past. Use {WHEN_HELP}.")
        return moment
    if _DURATION_RE.fullmatch(text) is None:
        raise InvalidInput(f"`{shown(raw)}` is not a time. Use {WHEN_HELP}.")
    return now + parse_duration(text)

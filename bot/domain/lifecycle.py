"""A key's life: the org's expiry policy and a key's status at a given moment. Pure rules, no I/O.

Status, in order of precedence: ``disabled`` (an owner switched it off), ``expired`` (now is past its
expiry), ``expiring`` (it expires within ``EXPIRING_SOON``), ``active``. A rolled key's old secret is
``retiring`` until its grace ends, then ``expired``.
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.durations import format_duration
from bot.domain.errors import InvalidInput

EXPIRING_SOON = timedelta(days=14)
DEFAULT_STALE_AFTER = timedelta(days=90)
DEFAULT_GRACE = timedelta(hours=24)
MAX_GRACE = timedelta(days=7)


class LeakAction(StrEnum):
    DISABLE = "disable"
    ALERT = "alert"


class KeyStatus(StrEnum):
    ACTIVE = "active"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    DISABLED = "disabled"
    RETIRING = "retiring"


class PolicyField(StrEnum):
    MAX_LIFETIME = "max-lifetime"
    DEFAULT_LIFETIME = "default-lifetime"
    STALE_AFTER = "stale-after"
    LEAK_ACTION = "leak-action"


@dataclass(frozen=True, slots=True)
class Policy:
    """An organization's rules for key lifetimes. ``None`` lifetimes mean "no limit" / "never"."""

    max_lifetime: timedelta | None = None
    default_lifetime: timedelta | None = None
    stale_after: timedelta = DEFAULT_STALE_AFTER
    leak_action: LeakAction = LeakAction.DISABLE

    def expiry(self, requested: datetime | None, *, asked: bool, now: datetime) -> datetime | None:
        """The expiry of a key made ``now``: ``requested`` when ``asked`` (None = never), else the
        default lifetime. InvalidInput, naming the maximum, when it would outlive ``max_lifetime``."""
        expires_at = requested if asked else (now + self.default_lifetime if self.default_lifetime else None)
        if self.max_lifetime is not None:
            latest = now + self.max_lifetime
            if expires_at is None or expires_at > latest:
                raise InvalidInput(
                    f"Your organization's policy allows keys to live at most {format_duration(self.max_lifetime)}"
                    f" (until {latest:%Y-%m-%d %H:%M} UTC for a key made now). Ask for `expires "
                    f"{format_duration(self.max_lifetime)}` or less."
                )
        return expires_at

    def with_field(self, field: PolicyField, value: timedelta | LeakAction | None) -> "Policy":
        """This policy with one field changed; InvalidInput if the result is inconsistent."""
        match field:
            case PolicyField.MAX_LIFETIME:
                changed = replace(self, max_lifetime=_lifetime(value))
            case PolicyField.DEFAULT_LIFETIME:
                changed = replace(self, default_lifetime=_lifetime(value))
            case PolicyField.STALE_AFTER:
                stale = _lifetime(value)
                if stale is None:
                    raise InvalidInput("`stale-after` needs a duration, like `90d`.")
                changed = replace(self, stale_after=stale)
            case PolicyField.LEAK_ACTION:
                if not isinstance(value, LeakAction):
                    raise InvalidInput("`leak-action` is `disable` or `alert`.")
                changed = replace(self, leak_action=value)
        if (
            changed.max_lifetime is not None
            and changed.default_lifetime is not None
            and changed.default_lifetime > changed.max_lifetime
        ):
            raise InvalidInput(
                f"The default lifetime ({format_duration(changed.default_lifetime)}) cannot be longer than "
                f"the maximum ({format_duration(changed.max_lifetime)}). Change the other one first."
            )
        return changed


def _lifetime(value: timedelta | LeakAction | None) -> timedelta | None:
    if value is not None and not isinstance(value, timedelta):
        raise InvalidInput("This field takes a duration, like `90d`, or `none`.")
    return value


def status_of(*, disabled: bool, expires_at: datetime | None, now: datetime) -> KeyStatus:
    """A key's status at ``now``."""
    if disabled:
        return KeyStatus.DISABLED
    if expires_at is not None and now > expires_at:
        return KeyStatus.EXPIRED
    if expires_at is not None and expires_at - now <= EXPIRING_SOON:
        return KeyStatus.EXPIRING
    return KeyStatus.ACTIVE


def retiring_status(*, retiring_at: datetime, now: datetime) -> KeyStatus:
    """The status of a rolled key's old secret."""
    return KeyStatus.EXPIRED if now > retiring_at else KeyStatus.RETIRING


def grace_period(value: timedelta | None) -> timedelta:
    """The grace of a roll: default 24 h, ``0`` for at once, at most 7 days."""
    if value is None:
        return DEFAULT_GRACE
    if value > MAX_GRACE:
        raise InvalidInput("A grace period is at most 7 days (`7d`); use `0` to retire the old secret at once.")
    return value

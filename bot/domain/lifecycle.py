"""A key's life: the org's expiry policy and a key's status at a given moment. Pure rules, no I/O.

Status, in order of precedence: ``disabled`` (an owner switched it off), ``expired`` (now is past its
expiry), ``expiring`` (it expires within ``EXPIRING_SOON``), ``active``. A rolled key's old secret is
``retiring`` until its grace ends (``retiring_at``, the first moment it no longer works), then
``expired``; it is also refused while its key is disabled or expired (``secret_status``).
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.durations import DURATION_HELP, format_duration, parse_duration
from bot.domain.errors import InvalidInput
from bot.domain.names import shown, storable_text

EXPIRING_SOON = timedelta(days=14)
DEFAULT_STALE_AFTER = timedelta(days=90)
DEFAULT_GRACE = timedelta(hours=24)
MAX_GRACE = timedelta(days=7)
NOTE_MAX = 200


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
    REQUESTS = "requests"  # whether access requests (bot/domain/requests.py) are open: `on` or `off`


@dataclass(frozen=True, slots=True)
class Policy:
    """An organization's rules for key lifetimes. ``None`` lifetimes mean "no limit" / "never"."""

    max_lifetime: timedelta | None = None
    default_lifetime: timedelta | None = None
    stale_after: timedelta = DEFAULT_STALE_AFTER
    leak_action: LeakAction = LeakAction.DISABLE
    requests: bool = True  # `policy requests off`: nobody may ask for a key with `/apikeys request`

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

    def default_expiry(self, *, now: datetime) -> datetime | None:
        """The expiry of a key made where nobody could ask for one (a new project's ``default`` key):
        the default lifetime, else the maximum, else never."""
        lifetime = self.default_lifetime or self.max_lifetime
        return now + lifetime if lifetime else None

    def with_field(self, field: PolicyField, value: timedelta | LeakAction | bool | None) -> "Policy":
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
            case PolicyField.REQUESTS:
                if not isinstance(value, bool):
                    raise InvalidInput("`requests` is `on` or `off`.")
                changed = replace(self, requests=value)
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


def _lifetime(value: timedelta | LeakAction | bool | None) -> timedelta | None:
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
    """A rolled key's old secret works until ``retiring_at`` (so a grace of 0 ends it at once)."""
    return KeyStatus.EXPIRED if now >= retiring_at else KeyStatus.RETIRING


def secret_status(
    *, disabled: bool, expires_at: datetime | None, retiring_at: datetime | None, now: datetime
) -> KeyStatus:
    """What a secret presented to the verify API is at ``now``: its key's status, or for the old secret
    of a rolled key (``retiring_at`` set) ``retiring`` until its grace ends, and never more than its key."""
    status = status_of(disabled=disabled, expires_at=expires_at, now=now)
    if retiring_at is None or status in (KeyStatus.DISABLED, KeyStatus.EXPIRED):
        return status
    return retiring_status(retiring_at=retiring_at, now=now)


def policy_field_named(raw: str) -> PolicyField:
    """Resolve a policy field word; InvalidInput lists the fields, with an example."""
    for field in PolicyField:
        if raw.lower() == field.value:
            return field
    raise InvalidInput(
        f"`{shown(raw)}` is not a policy setting. Settings: `max-lifetime`, `default-lifetime`, "
        "`stale-after`, `leak-action`, `requests`. Example: `/apikeys policy max-lifetime 90d`."
    )


def policy_value(field: PolicyField, raw: str) -> timedelta | LeakAction | bool | None:
    """The value ``raw`` sets ``field`` to; InvalidInput says what the field takes, with an example."""
    text = raw.strip().lower()
    match field:
        case PolicyField.REQUESTS:
            if text in ("on", "off"):
                return text == "on"
            raise InvalidInput(
                f"`{shown(raw)}` is not a value of `requests`. Use `on` (members may ask for keys with "
                "`/apikeys request`) or `off`. Example: `/apikeys policy requests off`."
            )
        case PolicyField.LEAK_ACTION:
            for action in LeakAction:
                if text == action.value:
                    return action
            raise InvalidInput(
                f"`{shown(raw)}` is not a leak action. Use `disable` (switch a leaked key off) or `alert` "
                "(only tell its owners). Example: `/apikeys policy leak-action alert`."
            )
        case PolicyField.STALE_AFTER:
            if text == "none":
                raise InvalidInput(
                    f"`stale-after` needs a duration: {DURATION_HELP}. "
                    "Example: `/apikeys policy stale-after 90d`."
                )
            return parse_duration(raw)
        case PolicyField.MAX_LIFETIME | PolicyField.DEFAULT_LIFETIME:
            if text == "none":
                return None
            try:
                return parse_duration(raw)
            except InvalidInput:
                raise InvalidInput(
                    f"`{shown(raw)}` is not a lifetime. Use {DURATION_HELP}, or `none`. "
                    f"Example: `/apikeys policy {field.value} 90d`."
                ) from None


def policy_text(policy: Policy, field: PolicyField) -> str:
    """A policy setting's value as one would type it: ``90d``, ``none``, ``disable``."""
    match field:
        case PolicyField.MAX_LIFETIME:
            value = policy.max_lifetime
        case PolicyField.DEFAULT_LIFETIME:
            value = policy.default_lifetime
        case PolicyField.STALE_AFTER:
            value = policy.stale_after
        case PolicyField.LEAK_ACTION:
            return policy.leak_action.value
        case PolicyField.REQUESTS:
            return "on" if policy.requests else "off"
    return "none" if value is None else format_duration(value)


def clean_note(raw: str) -> str:
    """A note as stored: whitespace runs made single spaces; 1–200 characters, else InvalidInput."""
    note = " ".join(raw.split())
    if not note:
        raise InvalidInput("A note needs some text, like `note deploys the web app`.")
    if len(note) > NOTE_MAX:
        raise InvalidInput(f"A note is at most {NOTE_MAX} characters; yours has {len(note)}. Shorten it.")
    return storable_text(note, what="A note")


def grace_period(value: timedelta | None) -> timedelta:
    """The grace of a roll: default 24 h, ``0`` for at once, at most 7 days."""
    if value is None:
        return DEFAULT_GRACE
    if value > MAX_GRACE:
        raise InvalidInput("A grace period is at most 7 days (`7d`); use `0` to retire the old secret at once.")
    return value

"""The one codec for interactive elements: action ids and the values their buttons carry.

Button values come back from Slack as untrusted input: ``decode_page`` refuses anything that the
encoder could not have written.
"""

import re
from dataclasses import dataclass
from enum import StrEnum

from bot.domain.errors import InvalidInput
from bot.domain.jobs import NudgeRef
from bot.domain.requests import RequestRef

STALE = "This button is out of date. Run the command again."
# ASCII digits only (str.isdigit() also accepts "²", which int() refuses), and row ids that fit the
# database's INTEGER columns (PostgreSQL's are 32-bit; SQLite refuses Python ints past 64 bits).
_PAGE_RE = re.compile(r"([^|]*)\|([0-9]{1,10})\|([0-9]{1,6})")
MAX_ROW_ID = 2**31 - 1


class ActionId(StrEnum):
    """Every interactive element keybot sends."""

    DELETE_CONFIRM = "delete_confirm"
    DELETE_CANCEL = "delete_cancel"
    KEYS_OLDER = "keys_older"
    KEYS_NEWER = "keys_newer"
    AUDIT_OLDER = "audit_older"
    AUDIT_NEWER = "audit_newer"
    KEY_MENU = "key_menu"
    NUDGE_ROLL = "nudge_roll"  # the buttons of reminder DMs: each carries ``encode_nudge``
    NUDGE_EXTEND = "nudge_extend"
    NUDGE_LET_EXPIRE = "nudge_let_expire"
    NUDGE_DELETE = "nudge_delete"
    NUDGE_KEEP = "nudge_keep"
    REQUEST_APPROVE = "request_approve"  # the buttons of access requests: each carries ``encode_request``
    REQUEST_DENY = "request_deny"
    REQUEST_REVEAL = "request_reveal"
    LEAK_ROLL = "leak_roll"  # the buttons of leak and deactivation DMs: each carries ``encode_choice``
    LEAK_ENABLE = "leak_enable"
    LEAK_DELETE = "leak_delete"


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Where a paging button leads: the project, the row id to page from, and where the page it was
    on started (for the reader of a value; the server counts positions afresh)."""

    project: str
    row_id: int
    page: int


def encode_page(cursor: PageCursor) -> str:
    return f"{cursor.project}|{cursor.row_id}|{cursor.page}"


def decode_page(value: str) -> PageCursor:
    """Parse a paging button's value; InvalidInput (the button is stale) for anything else."""
    match = _PAGE_RE.fullmatch(value)
    if match is None or int(match[2]) > MAX_ROW_ID:
        raise InvalidInput(STALE)
    return PageCursor(project=match[1], row_id=int(match[2]), page=max(int(match[3]), 1))


class MenuChoice(StrEnum):
    """What a key row's overflow menu offers."""

    SHOW = "show"
    ROLL = "roll"
    DISABLE = "disable"
    ENABLE = "enable"
    DELETE = "delete"
    AUDIT = "audit"


@dataclass(frozen=True, slots=True)
class KeyChoice:
    """A choice made in the overflow menu of one key's row."""

    choice: MenuChoice
    project: str
    key: str
    made_by: int | None = None  # a DM's buttons: the key existed by then (Unix seconds); a newer one is another


_NAME = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}"
_CHOICE_RE = re.compile(rf"([a-z]+)\|({_NAME})\|({_NAME})(?:\|([1-9][0-9]{{0,11}}))?")


def encode_choice(choice: KeyChoice) -> str:
    pinned = f"|{choice.made_by}" if choice.made_by is not None else ""
    return f"{choice.choice.value}|{choice.project}|{choice.key}{pinned}"


def decode_choice(value: str) -> KeyChoice:
    """Parse an overflow menu's value; InvalidInput (stale) for anything the encoder could not write."""
    match = _CHOICE_RE.fullmatch(value)
    if match is None or match[1] not in MenuChoice.__members__.values():
        raise InvalidInput(STALE)
    return KeyChoice(choice=MenuChoice(match[1]), project=match[2], key=match[3], made_by=int(match[4]) if match[4] else None)


# ``n<job id>.<token>``: the token is secrets.token_urlsafe(12) (16 characters), compared server-side.
_NUDGE_RE = re.compile(r"n([0-9]{1,10})\.([A-Za-z0-9_-]{16,64})")


def encode_nudge(ref: NudgeRef) -> str:
    return f"n{ref.job_id}.{ref.token}"


def decode_nudge(value: str) -> NudgeRef:
    """Parse a reminder button's value; InvalidInput (stale) for anything the encoder could not write."""
    match = _NUDGE_RE.fullmatch(value)
    if match is None or int(match[1]) > MAX_ROW_ID:
        raise InvalidInput(STALE)
    return NudgeRef(job_id=int(match[1]), token=match[2])


# ``r<request id>.<token>``: the token is secrets.token_urlsafe(12), compared server-side.
_REQUEST_RE = re.compile(r"r([0-9]{1,10})\.([A-Za-z0-9_-]{16,64})")


def encode_request(ref: RequestRef) -> str:
    return f"r{ref.request_id}.{ref.token}"


def decode_request(value: str) -> RequestRef:
    """Parse an access request button's value; InvalidInput (stale) for anything the encoder could not write."""
    match = _REQUEST_RE.fullmatch(value)
    if match is None or int(match[1]) > MAX_ROW_ID:
        raise InvalidInput(STALE)
    return RequestRef(request_id=int(match[1]), token=match[2])


def action_id_named(raw: str) -> ActionId:
    try:
        return ActionId(raw)
    except ValueError:
        raise InvalidInput(STALE) from None

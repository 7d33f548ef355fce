"""The one codec for interactive elements: action ids and the values their buttons carry.

Button values come back from Slack as untrusted input: ``decode_page`` refuses anything that the
encoder could not have written.
"""

import re
from dataclasses import dataclass
from enum import StrEnum

from bot.domain.errors import InvalidInput

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


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Where a paging button leads: the project, the row id to page from, the page number shown."""

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


def action_id_named(raw: str) -> ActionId:
    try:
        return ActionId(raw)
    except ValueError:
        raise InvalidInput(STALE) from None

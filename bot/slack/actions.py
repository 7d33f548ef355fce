"""Button clicks: delete confirmation and cancel, list and audit paging. Authorization is re-checked
by the services on every click; button values are treated as untrusted input."""

import re

from bot.domain.errors import InvalidInput
from bot.domain.model import Actor
from bot.services import Keybot
from bot.slack import blocks
from bot.slack.blocks import Message

STALE = "This button is out of date. Run the command again."
# ASCII digits only (str.isdigit() also accepts "²", which int() refuses), and row ids that fit the
# database's INTEGER columns (PostgreSQL's are 32-bit; SQLite refuses Python ints past 64 bits).
PAGE_VALUE_RE = re.compile(r"([^|]*)\|([0-9]{1,10})\|([0-9]{1,6})")
MAX_ROW_ID = 2**31 - 1


def page_value(value: str) -> tuple[str, int, int]:
    """Parse ``<project>|<row id>|<page>`` from a paging button (an untrusted value)."""
    match = PAGE_VALUE_RE.fullmatch(value)
    if match is None or int(match[2]) > MAX_ROW_ID:
        raise InvalidInput(STALE)
    return match[1], int(match[2]), max(int(match[3]), 1)


async def confirm_delete(kb: Keybot, actor: Actor, value: str) -> Message:
    return blocks.deleted(await kb.confirm_delete(actor, value))


async def cancel_delete(kb: Keybot, actor: Actor, value: str) -> Message:
    return blocks.cancelled(await kb.cancel_delete(actor, value))


async def keys_older(kb: Keybot, actor: Actor, value: str) -> Message:
    project, row_id, page = page_value(value)
    return blocks.key_page(await kb.list_keys(actor, project, before_id=row_id), number=page)


async def keys_newer(kb: Keybot, actor: Actor, value: str) -> Message:
    project, row_id, page = page_value(value)
    return blocks.key_page(await kb.list_keys(actor, project, after_id=row_id), number=page)


async def audit_older(kb: Keybot, actor: Actor, value: str) -> Message:
    project, row_id, page = page_value(value)
    return blocks.audit_page(await kb.audit(actor, project, before_id=row_id), number=page)


ACTIONS = {
    blocks.DELETE_CONFIRM: confirm_delete,
    blocks.DELETE_CANCEL: cancel_delete,
    blocks.KEYS_OLDER: keys_older,
    blocks.KEYS_NEWER: keys_newer,
    blocks.AUDIT_OLDER: audit_older,
}

"""Button clicks: delete confirmation and cancel, list and audit paging. Authorization is re-checked
by the services on every click; button values are decoded as untrusted input."""

from collections.abc import Awaitable, Callable

from bot.domain.model import Actor
from bot.services import Keybot
from bot.slack import blocks
from bot.slack.blocks import Message
from bot.slack.codec import ActionId, decode_page

Click = Callable[[Keybot, Actor, str], Awaitable[Message]]


async def confirm_delete(kb: Keybot, actor: Actor, value: str) -> Message:
    return blocks.deleted(await kb.keys.confirm_delete(actor, token=value))


async def cancel_delete(kb: Keybot, actor: Actor, value: str) -> Message:
    return blocks.cancelled(await kb.keys.cancel_delete(actor, token=value))


async def keys_older(kb: Keybot, actor: Actor, value: str) -> Message:
    cursor = decode_page(value)
    page = await kb.keys.page(actor, project=cursor.project, before_id=cursor.row_id)
    return blocks.key_page(page, number=cursor.page)


async def keys_newer(kb: Keybot, actor: Actor, value: str) -> Message:
    cursor = decode_page(value)
    page = await kb.keys.page(actor, project=cursor.project, after_id=cursor.row_id)
    return blocks.key_page(page, number=cursor.page)


async def audit_older(kb: Keybot, actor: Actor, value: str) -> Message:
    cursor = decode_page(value)
    page = await kb.audit.page(actor, project=cursor.project, before_id=cursor.row_id)
    return blocks.audit_page(page, number=cursor.page)


ACTIONS: dict[ActionId, Click] = {
    ActionId.DELETE_CONFIRM: confirm_delete,
    ActionId.DELETE_CANCEL: cancel_delete,
    ActionId.KEYS_OLDER: keys_older,
    ActionId.KEYS_NEWER: keys_newer,
    ActionId.AUDIT_OLDER: audit_older,
}

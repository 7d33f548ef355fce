"""Button clicks: delete confirmation and cancel, list and audit paging. Authorization is re-checked
by the services on every click; button values are decoded as untrusted input."""

from collections.abc import Awaitable, Callable

from bot.domain.errors import ConfirmationRefused
from bot.domain.model import Actor
from bot.services import Keybot
from bot.slack import blocks, lifecycle_blocks
from bot.slack.blocks import Message
from bot.slack.codec import ActionId, MenuChoice, decode_choice, decode_page
from bot.slack.nudge_actions import NUDGE_ACTIONS

Click = Callable[[Keybot, Actor, str], Awaitable[Message]]


async def confirm_delete(kb: Keybot, actor: Actor, value: str) -> Message:
    return blocks.deleted(await kb.keys.confirm_delete(actor, token=value))


async def cancel_delete(kb: Keybot, actor: Actor, value: str) -> Message:
    return blocks.cancelled(await kb.keys.cancel_delete(actor, token=value))


async def keys_older(kb: Keybot, actor: Actor, value: str) -> Message:
    cursor = decode_page(value)
    return blocks.key_page(await kb.keys.page(actor, project=cursor.project, before_id=cursor.row_id))


async def keys_newer(kb: Keybot, actor: Actor, value: str) -> Message:
    cursor = decode_page(value)
    return blocks.key_page(await kb.keys.page(actor, project=cursor.project, after_id=cursor.row_id))


async def audit_older(kb: Keybot, actor: Actor, value: str) -> Message:
    cursor = decode_page(value)
    page = await kb.audit.page(actor, project=cursor.project, before_id=cursor.row_id)
    return blocks.audit_page(page, number=cursor.page)


async def audit_newer(kb: Keybot, actor: Actor, value: str) -> Message:
    cursor = decode_page(value)
    page = await kb.audit.page(actor, project=cursor.project, after_id=cursor.row_id)
    return blocks.audit_page(page, number=cursor.page if page.has_newer else 1)


async def key_menu(kb: Keybot, actor: Actor, value: str) -> Message:
    """A choice in a key row's overflow menu; its answer comes below the list, which stays."""
    choice = decode_choice(value)
    project, name = choice.project, choice.key
    match choice.choice:
        case MenuChoice.SHOW:
            return lifecycle_blocks.key_details(await kb.lifecycle.show(actor, project=project, name=name))
        case MenuChoice.ROLL:
            return lifecycle_blocks.rolled_key(await kb.lifecycle.roll(actor, project=project, name=name))
        case MenuChoice.DISABLE:
            return lifecycle_blocks.key_changed(await kb.lifecycle.disable(actor, project=project, name=name))
        case MenuChoice.ENABLE:
            return lifecycle_blocks.key_changed(await kb.lifecycle.enable(actor, project=project, name=name))
        case MenuChoice.DELETE:
            return blocks.confirm_delete(
                await kb.keys.request_delete(actor, project=choice.project, name=choice.key)
            )
        case MenuChoice.AUDIT:
            return blocks.audit_page(await kb.audit.page(actor, project=choice.project), number=1)


async def leak_button(kb: Keybot, actor: Actor, value: str) -> Message:
    """A button of a leak or deactivation DM: refused once the key is not the one the DM shows (rolled,
    or deleted and made again under its name). *Roll* gives a new secret with no grace, so the secret
    that leaked (or that someone who left may hold) stops at once, with any older one still in a grace."""
    choice = decode_choice(value)
    if choice.made_by is not None:
        now = (await kb.lifecycle.show(actor, project=choice.project, name=choice.key)).key
        if now.created_at.timestamp() > choice.made_by:
            raise ConfirmationRefused(
                f"`{choice.key}` in `{choice.project}` is another key now (`{now.masked}`): the one this message "
                f"is about was deleted and a new one made with its name. Nothing changed; "
                f"`/apikeys show {choice.project} {choice.key}` shows it."
            )
    if choice.choice is not MenuChoice.ROLL:
        return await key_menu(kb, actor, value)
    return lifecycle_blocks.rolled_key(await kb.lifecycle.roll(actor, project=choice.project, name=choice.key, grace="0"))


# Clicks whose answer is a new message rather than a replacement of the one clicked (a reminder DM is
# updated for every owner by the outbox instead).
LEAK_ACTIONS = frozenset({ActionId.LEAK_ROLL, ActionId.LEAK_ENABLE, ActionId.LEAK_DELETE})
ANSWER_BELOW = frozenset({ActionId.KEY_MENU, *NUDGE_ACTIONS, *LEAK_ACTIONS})

ACTIONS: dict[ActionId, Click] = {
    ActionId.DELETE_CONFIRM: confirm_delete,
    ActionId.DELETE_CANCEL: cancel_delete,
    ActionId.KEYS_OLDER: keys_older,
    ActionId.KEYS_NEWER: keys_newer,
    ActionId.AUDIT_OLDER: audit_older,
    ActionId.AUDIT_NEWER: audit_newer,
    ActionId.KEY_MENU: key_menu,
    **NUDGE_ACTIONS,
    # leak and deactivation DMs (bot/slack/leak_dms.py): their values are a key menu's choices
    **dict.fromkeys(LEAK_ACTIONS, leak_button),
}

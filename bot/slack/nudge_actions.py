"""The buttons of reminder DMs (bot/slack/nudges.py) and of access requests (bot/slack/requests.py): each
decodes its value as untrusted input and calls the nudge (or request) service, which re-checks everything
at click time. A reminder's *Roll* opens the roll modal instead (bot/slack/views.py). Every answer is a
new private message in
the DM; the reminder itself is updated for every owner through the outbox (``chat.update``)."""

from collections.abc import Awaitable, Callable

from bot.domain.model import Actor
from bot.services import Keybot
from bot.slack import blocks, lifecycle_blocks, nudges, requests
from bot.slack.blocks import Message
from bot.slack.codec import ActionId, decode_nudge, decode_request


async def nudge_extend(kb: Keybot, actor: Actor, value: str) -> Message:
    return lifecycle_blocks.key_changed(await kb.nudges.extend(actor, decode_nudge(value)))


async def nudge_let_expire(kb: Keybot, actor: Actor, value: str) -> Message:
    return nudges.answered(await kb.nudges.let_expire(actor, decode_nudge(value)))


async def nudge_keep(kb: Keybot, actor: Actor, value: str) -> Message:
    return nudges.answered(await kb.nudges.keep(actor, decode_nudge(value)))


async def nudge_delete(kb: Keybot, actor: Actor, value: str) -> Message:
    return blocks.confirm_delete(await kb.nudges.delete(actor, decode_nudge(value)))


async def request_approve(kb: Keybot, actor: Actor, value: str) -> Message:
    return requests.request_decided(await kb.requests.approve(actor, decode_request(value)))


async def request_deny(kb: Keybot, actor: Actor, value: str) -> Message:
    return requests.request_decided(await kb.requests.deny(actor, decode_request(value)))


async def request_reveal(kb: Keybot, actor: Actor, value: str) -> Message:
    """*Reveal key*: the key's plaintext, in this private reply only."""
    return blocks.created_key(await kb.requests.reveal(actor, decode_request(value)), requested=True)


NUDGE_ACTIONS: dict[ActionId, Callable[[Keybot, Actor, str], Awaitable[Message]]] = {
    ActionId.NUDGE_EXTEND: nudge_extend,
    ActionId.NUDGE_LET_EXPIRE: nudge_let_expire,
    ActionId.NUDGE_KEEP: nudge_keep,
    ActionId.NUDGE_DELETE: nudge_delete,
    ActionId.REQUEST_APPROVE: request_approve,  # access requests' buttons (bot/slack/requests.py)
    ActionId.REQUEST_DENY: request_deny,
    ActionId.REQUEST_REVEAL: request_reveal,
}

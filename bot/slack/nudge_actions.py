"""The buttons of reminder DMs (bot/slack/nudges.py): each decodes its value as untrusted input and calls
the nudge service, which re-checks everything at click time. *Roll* opens the roll modal instead
(bot/slack/views.py). Every answer is a new private message in
the DM; the reminder itself is updated for every owner through the outbox (``chat.update``)."""

from collections.abc import Awaitable, Callable

from bot.domain.model import Actor
from bot.services import Keybot
from bot.slack import blocks, lifecycle_blocks, nudges
from bot.slack.blocks import Message
from bot.slack.codec import ActionId, decode_nudge


async def nudge_extend(kb: Keybot, actor: Actor, value: str) -> Message:
    return lifecycle_blocks.key_changed(await kb.nudges.extend(actor, decode_nudge(value)))


async def nudge_let_expire(kb: Keybot, actor: Actor, value: str) -> Message:
    return nudges.answered(await kb.nudges.let_expire(actor, decode_nudge(value)))


async def nudge_keep(kb: Keybot, actor: Actor, value: str) -> Message:
    return nudges.answered(await kb.nudges.keep(actor, decode_nudge(value)))


async def nudge_delete(kb: Keybot, actor: Actor, value: str) -> Message:
    return blocks.confirm_delete(await kb.nudges.delete(actor, decode_nudge(value)))


NUDGE_ACTIONS: dict[ActionId, Callable[[Keybot, Actor, str], Awaitable[Message]]] = {
    ActionId.NUDGE_EXTEND: nudge_extend,
    ActionId.NUDGE_LET_EXPIRE: nudge_let_expire,
    ActionId.NUDGE_KEEP: nudge_keep,
    ActionId.NUDGE_DELETE: nudge_delete,
}

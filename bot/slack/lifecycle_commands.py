"""``/apikeys`` subcommands of the key lifecycle: ``create`` (with an expiry and a note), ``expiry``,
``disable``, ``enable``, ``roll``, ``show`` and ``policy``. Each parses its words, calls one service and
builds the reply; ``create`` gets the raw text after its verb, so a note keeps its spacing and length."""

import difflib
import re

from bot.domain.errors import InvalidInput
from bot.domain.model import Actor
from bot.domain.names import NAME_RE, shown
from bot.services import Keybot
from bot.slack import blocks, lifecycle_blocks
from bot.slack.blocks import Message
from bot.slack.parsing import expect, words

CREATE = "create <project> <key-name> [expires <when>] [note <text…>]"
ROLL = "roll <project> <key-name> [grace <dur>]"
_WORD = re.compile(r"\S+")


def _split_note(rest: str) -> tuple[str, str | None]:
    """The text before a ``note`` word (from the third word on), and the note after it."""
    for n, match in enumerate(_WORD.finditer(rest)):
        if n >= 2 and match.group().lower() == "note":
            return rest[: match.start()], rest[match.end() :]
    return rest, None


async def create(kb: Keybot, actor: Actor, rest: str) -> Message:
    """``create <project> <key-name> [expires <when>] [note <text…>]``; ``rest``: the text after ``create``."""
    head, note = _split_note(rest)
    args = words(head)
    project, name = expect(args[:2], CREATE, required=2)
    options = args[2:]
    expires = None
    if options and options[0].lower() == "expires":
        if len(options) < 2:
            raise InvalidInput(
                "`expires` needs a time, like `expires 30d`, `expires 2027-03-01` or `expires never`. "
                f"Usage: `/apikeys {CREATE}`"
            )
        expires, options = options[1], options[2:]
    if options:
        option = difflib.get_close_matches(options[0].lower(), ["expires", "note"], n=1, cutoff=0.7)
        if option:
            raise InvalidInput(
                f"I don't understand `{shown(options[0])}` here: did you mean `{option[0]}`? "
                f"Usage: `/apikeys {CREATE}`"
            )
        joined = "-".join(args[1:])
        if expires is None and note is None and NAME_RE.fullmatch(joined):
            raise InvalidInput(
                f"Key names have no spaces: did you mean `{joined}`? Usage: `/apikeys {CREATE}`"
            )
        raise InvalidInput(f"I don't understand `{shown(options[0])}` here. Usage: `/apikeys {CREATE}`")
    created = await kb.keys.create(actor, project=project or "", name=name or "", expires=expires, note=note)
    return blocks.created_key(created)


async def expiry(kb: Keybot, actor: Actor, args: list[str]) -> Message:
    project, name, when = expect(args, "expiry <project> <key-name> <when>", required=3)
    change = await kb.lifecycle.set_expiry(actor, project=project or "", name=name or "", when=when or "")
    return lifecycle_blocks.key_changed(change)


async def disable(kb: Keybot, actor: Actor, args: list[str]) -> Message:
    project, name = expect(args, "disable <project> <key-name>", required=2)
    change = await kb.lifecycle.disable(actor, project=project or "", name=name or "")
    return lifecycle_blocks.key_changed(change)


async def enable(kb: Keybot, actor: Actor, args: list[str]) -> Message:
    project, name = expect(args, "enable <project> <key-name>", required=2)
    change = await kb.lifecycle.enable(actor, project=project or "", name=name or "")
    return lifecycle_blocks.key_changed(change)


async def roll(kb: Keybot, actor: Actor, args: list[str]) -> Message:
    project, name, word, grace = expect(args, ROLL, required=2, optional=2)
    if word is not None and (word.lower() != "grace" or grace is None):
        raise InvalidInput(
            f"After the key name, `roll` takes `grace <dur>`, like `grace 2h`, `grace 7d` or `grace 0`. "
            f"Usage: `/apikeys {ROLL}`"
        )
    rolled = await kb.lifecycle.roll(actor, project=project or "", name=name or "", grace=grace)
    return lifecycle_blocks.rolled_key(rolled)


async def show(kb: Keybot, actor: Actor, args: list[str]) -> Message:
    project, name = expect(args, "show <project> <key-name>", required=2)
    details = await kb.lifecycle.show(actor, project=project or "", name=name or "")
    return lifecycle_blocks.key_details(details)


async def policy(kb: Keybot, actor: Actor, args: list[str]) -> Message:
    setting, value = expect(args, "policy [<setting> <value>]", required=0, optional=2)
    if setting is None:
        return lifecycle_blocks.policy_view(await kb.lifecycle.policy(actor))
    if value is None:
        raise InvalidInput(
            f"`policy {shown(setting)}` needs a value, like `/apikeys policy max-lifetime 90d`. Settings: "
            "`max-lifetime <dur>|none`, `default-lifetime <dur>|none`, `stale-after <dur>`, "
            "`leak-action disable|alert`."
        )
    return lifecycle_blocks.policy_view(await kb.lifecycle.set_policy(actor, setting=setting, value=value))

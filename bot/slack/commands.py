"""``/apikeys`` subcommands: parse the words, call one service, build the reply."""

import difflib
import re
from collections.abc import Awaitable, Callable

from bot.domain.errors import InvalidInput
from bot.domain.model import Actor
from bot.domain.names import NAME_RE, shown
from bot.services import Keybot
from bot.slack import blocks, lifecycle_commands, requests
from bot.slack.blocks import Message
from bot.slack.help import usage_of
from bot.slack.parsing import expect, user_id, words

Handler = Callable[[Keybot, Actor, list[str]], Awaitable[Message]]


async def _help(kb: Keybot, actor: Actor, args: list[str]) -> Message:
    (topic,) = expect(args, "help [roles]", required=0, optional=1)
    if topic is not None and topic.lower() == "roles":
        return blocks.roles_help()
    if topic is not None:
        raise InvalidInput(f"There is no help on `{shown(topic)}`. Try `/apikeys help` or `/apikeys help roles`.")
    return blocks.help_message()


def _one_name(args: list[str], *, at: int, usage: str, kind: str) -> None:
    """Refuse a name typed as several words, suggesting the name joined with dashes."""
    if len(args) > at + 1:
        joined = "-".join(args[at:])
        if NAME_RE.fullmatch(joined):
            raise InvalidInput(
                f"{kind.capitalize()} names have no spaces: did you mean `{joined}`? Usage: `/apikeys {usage}`"
            )


async def _whoami(kb: Keybot, actor: Actor, args: list[str]) -> Message:
    expect(args, "whoami", required=0)
    return blocks.whoami(await kb.people.whoami(actor))


async def _projects(kb: Keybot, actor: Actor, args: list[str]) -> Message:
    expect(args, "projects", required=0)
    return blocks.projects(await kb.projects.visible(actor))


async def _project(kb: Keybot, actor: Actor, args: list[str]) -> Message:
    if args and args[0] == "create":
        _one_name(args, at=1, usage="project create <project>", kind="project")
    sub, name = expect(args, "project create <project>", required=2)
    if sub != "create":
        return blocks.error_message(
            f"`project {shown(sub or '')}` is not a command. Usage: `/apikeys project create <project>`"
        )
    return blocks.created_key(await kb.projects.create(actor, name=name or ""), new_project=True)


async def _create(kb: Keybot, actor: Actor, args: list[str]) -> Message:
    """For callers with words only; ``run_command`` hands ``create`` its raw text (``TEXT_COMMANDS``)."""
    return await lifecycle_commands.create(kb, actor, " ".join(args))


async def _list(kb: Keybot, actor: Actor, args: list[str]) -> Message:
    (project,) = expect(args, "list <project>", required=1)
    return blocks.key_page(await kb.keys.page(actor, project=project or ""))


async def _delete(kb: Keybot, actor: Actor, args: list[str]) -> Message:
    project, name = expect(args, "delete <project> <key-name>", required=2)
    return blocks.confirm_delete(await kb.keys.request_delete(actor, project=project or "", name=name or ""))


async def _grant(kb: Keybot, actor: Actor, args: list[str]) -> Message:
    user, role, project = expect(args, "grant <@user> <role> [<project>]", required=2, optional=1)
    change = await kb.people.grant(actor, user_id=user_id(user or ""), role=role or "", project=project)
    return blocks.role_changed(change, actor=actor.user_id)


async def _revoke(kb: Keybot, actor: Actor, args: list[str]) -> Message:
    user, project = expect(args, "revoke <@user> [<project>]", required=1, optional=1)
    change = await kb.people.revoke(actor, user_id=user_id(user or ""), project=project)
    return blocks.role_changed(change, actor=actor.user_id)


async def _members(kb: Keybot, actor: Actor, args: list[str]) -> Message:
    (project,) = expect(args, "members [<project>]", required=0, optional=1)
    return blocks.members(await kb.people.members(actor, project=project))


async def _audit(kb: Keybot, actor: Actor, args: list[str]) -> Message:
    (project,) = expect(args, "audit <project>", required=1)
    return blocks.audit_page(await kb.audit.page(actor, project=project or ""), number=1)


REQUEST = "request <project> [expires <when>] [for <reason…>]"


async def _request(kb: Keybot, actor: Actor, rest: str) -> Message:
    """``request <project> [expires <when>] [for <reason…>]``; ``rest``: the text after ``request``, so a
    reason keeps its words as typed."""
    head, reason = rest, None
    found = re.search(r"(?:^|\s)for(?:\s|$)", rest, flags=re.IGNORECASE)
    if found is not None and found.start() > 0 and words(rest[: found.start()]):
        head, reason = rest[: found.start()], rest[found.end() :]
    args = words(head)
    (project,) = expect(args[:1], REQUEST, required=1)
    options = args[1:]
    expires = None
    if options and options[0].lower() == "expires":
        if len(options) != 2:
            raise InvalidInput(
                "`expires` needs one time, like `expires 30d`, `expires 2027-03-01` or `expires never`. "
                f"Usage: `/apikeys {REQUEST}`"
            )
        expires, options = options[1], []
    if options:
        raise InvalidInput(f"I don't understand `{shown(' '.join(options))}` here. Usage: `/apikeys {REQUEST}`")
    sent = await kb.requests.request(actor, project=project or "", expires=expires, reason=reason)
    return requests.request_sent(sent)


async def _request_words(kb: Keybot, actor: Actor, args: list[str]) -> Message:
    return await _request(kb, actor, " ".join(args))


async def _requests(kb: Keybot, actor: Actor, args: list[str]) -> Message:
    (project,) = expect(args, "requests [<project>]", required=0, optional=1)
    return requests.request_list(await kb.requests.requests(actor, project=project))


COMMANDS: dict[str, Handler] = {
    "help": _help,
    "whoami": _whoami,
    "projects": _projects,
    "project": _project,
    "create": _create,
    "list": _list,
    "delete": _delete,
    "grant": _grant,
    "revoke": _revoke,
    "members": _members,
    "audit": _audit,
    "show": lifecycle_commands.show,
    "expiry": lifecycle_commands.expiry,
    "disable": lifecycle_commands.disable,
    "enable": lifecycle_commands.enable,
    "roll": lifecycle_commands.roll,
    "policy": lifecycle_commands.policy,
    "request": _request_words,
    "requests": _requests,
}
# Commands that end in free text (a note) get the text after their verb as typed, not its words.
TEXT_COMMANDS: dict[str, Callable[[Keybot, Actor, str], Awaitable[Message]]] = {
    "create": lifecycle_commands.create,
    "request": _request,
}


def _unknown(verb: str) -> InvalidInput:
    """An unknown subcommand: the nearest command and its usage in one line, not the whole help."""
    nearest = difflib.get_close_matches(verb.lower(), COMMANDS, n=1, cutoff=0.6)
    if nearest:
        usage = usage_of(nearest[0])
        return InvalidInput(f"I don't know `{shown(verb)}`. Did you mean `{nearest[0]}`? Usage: `/apikeys {usage}`")
    return InvalidInput(f"I don't know `{shown(verb)}`. `/apikeys help` lists what I can do.")


# Commands that change nothing and never run argon2: answered inline, without a task to time them.
READ_ONLY = frozenset({"help", "whoami", "projects", "list", "members", "audit", "show", "requests"})


def reads_only(text: str) -> bool:
    """Whether ``text`` is a command that only reads (so it may be cut short safely)."""
    found = words(text)
    return not found or found[0].lower() in READ_ONLY


async def run_command(kb: Keybot, actor: Actor, text: str) -> Message:
    """Dispatch one ``/apikeys`` line; empty text gets the usage, an unknown word the nearest command."""
    verb, *args = words(text) or ["help"]
    text_handler = TEXT_COMMANDS.get(verb.lower())
    if text_handler is not None:
        return await text_handler(kb, actor, text.lstrip()[len(verb) :])
    handler = COMMANDS.get(verb.lower())
    if handler is None:
        raise _unknown(verb)
    return await handler(kb, actor, args)

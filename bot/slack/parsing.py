"""Turn ``/apikeys`` text into words. Mentions arrive escaped: ``<@U123ABC|name>`` or ``<@U123ABC>``."""

import re

from bot.domain.errors import InvalidInput
from bot.domain.names import shown

TOKEN_RE = re.compile(r"<[^<>]*>|[^\s<>]+|[<>]")
MENTION_RE = re.compile(r"<@([UW][A-Z0-9]{2,20})(?:\|[^<>]*)?>")
MAX_WORDS = 8


def words(text: str) -> list[str]:
    """Split on whitespace, keeping each ``<…>`` mention whole."""
    return TOKEN_RE.findall(text)[: MAX_WORDS + 1]


SPECIAL_RE = re.compile(r"<!(here|channel|everyone)(?:\|[^<>]*)?>|@(here|channel|everyone)|<!subteam\^[^<>]*>|<#[^<>]*>")


def user_id(raw: str) -> str:
    """The user id of an escaped mention; a clear error for anything else."""
    match = MENTION_RE.fullmatch(raw)
    if match is None and SPECIAL_RE.fullmatch(raw):
        raise InvalidInput(
            f"`{shown(raw)}` is not a person; mention one person, like @ana, so Slack sends their id."
        )
    if match is None:
        raise InvalidInput(
            f"`{shown(raw)}` is not a user. Mention them, like `@ana`, so Slack sends their id."
        )
    return match.group(1)


def expect(args: list[str], usage: str, *, required: int, optional: int = 0) -> list[str | None]:
    """Exactly ``required`` words, plus up to ``optional`` more (None when absent)."""
    if len(args) < required:
        raise InvalidInput(
            f"Missing {'argument' if required - len(args) == 1 else 'arguments'}. Usage: `/apikeys {usage}`"
        )
    if len(args) > required + optional:
        raise InvalidInput(f"Too many words. Usage: `/apikeys {usage}`")
    padded: list[str | None] = [*args]
    return padded + [None] * (required + optional - len(args))

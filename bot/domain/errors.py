"""The domain error hierarchy. One error handler (bot/slack/errors.py) maps each to a private message.

    KeybotError                 base; ``str(err)`` is a message safe to show the user who caused it
    ├── InvalidInput            the user typed something we cannot use (bad name, missing argument)
    ├── NotSetUp                the workspace has no keybot organization yet
    ├── NotFound                project, key, user role or pending deletion does not exist
    ├── Conflict                the name is already taken, or the org would lose its last owner
    ├── PermissionDenied        the actor's role does not allow the action; says which role is needed
    ├── ConfirmationRefused     a delete click that changes nothing: expired, used, someone else's
    └── Unavailable             the database (or another dependency) is down; try again
        └── Busy                argon2's lane is full: refused at once instead of queued; retry in
                                ``retry_after`` seconds (the verify API answers 503 + Retry-After)

A message is made of parts: plain text and ``User`` references, which each front end shows its own
way (Slack as a mention, ``str()`` as ``@U123``). No message may contain a key's secret; messages name
keys by their name or masked form only.
"""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class User:
    """A Slack user named in a message."""

    id: str


class KeybotError(Exception):
    """Base of every error a user can be told about."""

    def __init__(self, *parts: str | User, final: bool = False) -> None:
        """``final``: the prompt the user answered (a confirmation) can never be used now, so a front
        end shows the refusal in its place instead of leaving its buttons live."""
        super().__init__(*parts)
        self.parts = parts
        self.final = final

    def render(self, user: Callable[[str], str]) -> str:
        """The message, with each ``User`` shown by ``user(user_id)``."""
        return "".join(part if isinstance(part, str) else user(part.id) for part in self.parts)

    def __str__(self) -> str:
        return self.render(lambda user_id: f"@{user_id}")


class InvalidInput(KeybotError):
    pass


class NotSetUp(KeybotError):
    pass


class NotFound(KeybotError):
    pass


class Conflict(KeybotError):
    pass


class PermissionDenied(KeybotError):
    pass


class ConfirmationRefused(KeybotError):
    pass


class Unavailable(KeybotError):
    pass


class Busy(Unavailable):
    def __init__(self, *parts: str | User, retry_after: int = 1) -> None:
        super().__init__(*parts)
        self.retry_after = retry_after

"""The domain error hierarchy. One error handler (bot/slack/errors.py) maps each to a private message.

    KeybotError                 base; ``str(err)`` is a message safe to show the user who caused it
    ├── InvalidInput            the user typed something we cannot use (bad name, missing argument)
    ├── NotSetUp                the workspace has no keybot organization yet
    ├── NotFound                project, key, user role or pending deletion does not exist
    ├── Conflict                the name is already taken, or the org would lose its last owner
    ├── PermissionDenied        the actor's role does not allow the action; says which role is needed
    ├── ConfirmationRefused     a delete click that changes nothing: expired, used, someone else's
    └── Unavailable             the database (or another dependency) is down; try again

No message may contain a key's secret; messages name keys by their name or masked form only.
"""


class KeybotError(Exception):
    """Base of every error a user can be told about."""


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

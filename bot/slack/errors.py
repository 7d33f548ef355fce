"""The one error handler: maps domain errors to private messages, everything else to a logged ref."""

import logging
import secrets
from collections.abc import Awaitable, Callable

from bot.domain.errors import Busy, KeybotError, Unavailable
from bot.slack import blocks
from bot.slack.blocks import Message
from bot.slack.dates import mention

log = logging.getLogger("keybot.slack")


async def guarded(work: Callable[[], Awaitable[Message]]) -> tuple[Message, bool]:
    """Run ``work``; return its message and True, or a private error message and whether it takes the
    place of the message it answers (a refusal that ends a confirmation does; others come as new)."""
    try:
        return await work(), True
    except Busy as err:  # argon2's lane is full: refused at once, nothing changed; not an outage
        log.info("refused a request: %s", err)
        return blocks.error_message(err.render(mention)), False
    except Unavailable as err:
        log.warning("database unavailable: %s", err)
        return blocks.error_message(err.render(mention)), False
    except KeybotError as err:
        return blocks.error_message(err.render(mention)), err.final
    except Exception:
        ref = secrets.token_hex(3).upper()
        log.exception("unexpected error (ref %s)", ref)
        return blocks.error_message(
            f"Something went wrong (ref {ref}). Nothing was shown to anyone else; "
            "try again, and give the ref to your keybot operator if it keeps happening."
        ), False

"""The request id: which piece of work a log line or a queued DM belongs to.

Set once where work enters keybot (an HTTP request, in bot/observability.py), carried by asyncio's
contextvars through everything that request awaits or spawns, stamped on every ``Notice`` queued
meanwhile (bot/domain/notices.py), and set again by the outbox worker while it sends that DM — so a
command can be followed from receipt to the DMs it caused. None outside any request.
"""

import itertools
import os
from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("keybot_request_id", default=None)

_PROCESS = os.urandom(3).hex()
_SEQUENCE = itertools.count(1)


def current_request_id() -> str | None:
    """The id of the request being served, or None."""
    return REQUEST_ID.get()


def new_request_id() -> str:
    """A fresh id, unique across processes in practice: this process's random tag and a sequence."""
    return f"{_PROCESS}-{next(_SEQUENCE):x}"

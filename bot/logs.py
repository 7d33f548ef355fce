"""Log output: text (the default) or, with ``KEYBOT_LOG_FORMAT=json``, one JSON object per line.

Each JSON line holds ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``message`` and
``request_id``: the id of the request being served when the line was logged (bot/domain/tracing.py),
so a command can be followed from its receipt to the DMs it caused (the outbox worker sends each DM
under the id of the request that queued it). ``exception`` is added when a traceback is logged.
"""

import json
import logging
from datetime import UTC, datetime

from bot.domain.tracing import REQUEST_ID

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside a message are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or REQUEST_ID.get(),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def formatter(log_format: str) -> logging.Formatter:
    """The formatter for ``KEYBOT_LOG_FORMAT`` (``text`` or ``json``)."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def setup_logging(*, level: str, log_format: str) -> None:
    """Log to stderr at ``level`` in ``log_format``."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format))
    logging.basicConfig(level=level, handlers=[handler])  # as before: no-op if logging is set up already

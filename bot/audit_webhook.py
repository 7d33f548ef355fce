"""The audit webhook: every audit event POSTed to ``KEYBOT_AUDIT_WEBHOOK_URL``, signed, through the outbox.

Storage queues each delivery in the transaction that writes the audit event (an outbox row of origin
``AUDIT_WEBHOOK`` whose text is the JSON body, the same object as a line of ``keybot audit export``), so
an event is never lost and never sent for a change that rolled back. ``AuditWebhook`` claims those rows
like the Slack outbox worker claims DMs (``FOR UPDATE SKIP LOCKED`` on PostgreSQL: several instances
never send the same row) and marks one sent only after the receiver answered 2xx: delivery is at least
once, and once per success. Receivers deduplicate by the body's ``id``.

Each request carries:

- ``Content-Type: application/json``, the body exactly as signed;
- ``X-Keybot-Timestamp``: the Unix time of this attempt, in seconds;
- ``X-Keybot-Signature: sha256=<hex>``: HMAC-SHA256 with ``KEYBOT_AUDIT_WEBHOOK_SECRET`` over
  ``<timestamp>.<body>`` (the timestamp's digits, a dot, the raw body bytes). Binding the timestamp
  lets a receiver refuse a replayed request: reject a timestamp more than 5 minutes from its clock;
- ``X-Keybot-Event-Id``: the audit event's id (also in the body).

A receiver's answer decides the row's fate (``verdict``): 2xx delivered; 408, 425, 429, 5xx, a redirect,
a timeout or a connection error retried with exponential backoff up to 15 minutes (honouring
``Retry-After``) for as long as the outage lasts, every row still queued waiting too, so events arrive
in order and an outage loses nothing; any other 4xx (the receiver refuses this delivery: a wrong secret,
a body it rejects) makes the row a dead letter, which ``keybot outbox`` lists and ``keybot outbox retry``
sends again. Neither the secret nor the URL (which may hold a token) is ever logged.
"""

import hashlib
import hmac
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from enum import Enum

import aiohttp

from bot.domain.model import AUDIT_WEBHOOK, Notification
from bot.ports import Outbox
from bot.services.draining import Drainer

log = logging.getLogger("keybot.audit_webhook")
SIGNATURE_HEADER = "X-Keybot-Signature"
TIMESTAMP_HEADER = "X-Keybot-Timestamp"
EVENT_ID_HEADER = "X-Keybot-Event-Id"
MAX_BACKOFF = timedelta(minutes=15)
TRANSIENT = frozenset({408, 425, 429})


def signature(secret: str, *, timestamp: int, body: bytes) -> str:
    """The ``X-Keybot-Signature`` value of ``body`` sent at ``timestamp``: ``sha256=<hex>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


class Verdict(Enum):
    SENT = "sent"
    RETRY = "retry"
    DEAD = "dead"  # the receiver refuses this delivery for good


def verdict(status: int) -> Verdict:
    """What the receiver's HTTP status means for the row."""
    if 200 <= status < 300:
        return Verdict.SENT
    if status in TRANSIENT or status >= 500 or status < 400:  # a redirect is not followed: retried
        return Verdict.RETRY
    return Verdict.DEAD


class AuditWebhook(Drainer):
    """Delivers the queued audit events, one at a time in id order."""

    def __init__(
        self,
        store: Outbox,
        *,
        url: str,
        secret: str,
        clock: Callable[[], datetime],
        poll_interval: float = 1.0,
        batch: int = 20,
        lease_seconds: float = 60.0,
        base_backoff: float = 1.0,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(name="audit webhook", log=log, poll_interval=poll_interval, batch=batch)
        self._store = store
        self._url = url
        self._secret = secret
        self._clock = clock
        self._lease = lease_seconds
        self._base_backoff = base_backoff
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._failing = False  # one WARNING per receiver outage, one INFO when it is over
        self.delivered = 0  # read by /metrics
        self.retries = 0
        self.dead_letters = 0

    async def stop(self, *, drain_seconds: float = 5.0) -> None:
        """Finish the delivery in flight, try one last drain, then stop."""
        await super().stop(drain_seconds=drain_seconds)
        if self._session is not None:
            await self._session.close()

    async def drain_once(self) -> int:
        """Claim one batch and deliver it in order; how many were delivered. After a transient failure
        every queued event waits as long as the failed row, so none overtakes an earlier one."""
        rows = await self._store.claim_notifications(
            limit=self._batch, now=self._clock(), lease_seconds=self._lease, origin=AUDIT_WEBHOOK
        )
        sent = 0
        for index, row in enumerate(rows):
            outcome, delay, error = await self._post(row)
            if outcome is Verdict.SENT:
                await self._store.mark_sent(row.id, at=self._clock())
                self.delivered += 1
                sent += 1
                if self._failing:
                    self._failing = False
                    log.info("audit webhook: the receiver accepts deliveries again")
                continue
            if outcome is Verdict.DEAD:  # the receiver is up and refuses this one: the next may well go
                await self._store.bury(row.id, at=self._clock(), error=error)
                self.dead_letters += 1
                log.warning(
                    "audit webhook: the receiver refused event delivery %s (%s) for good; "
                    "`keybot outbox` lists it, `keybot outbox retry %s` sends it again",
                    row.id, error, row.id,
                )
                continue
            self.retries += 1
            await self._hold(rows[index:], delay=delay, error=error)
            return sent
        return sent

    async def _hold(self, rows: Sequence[Notification], *, delay: float, error: str) -> None:
        """The failed row and every event queued after it (in this batch or not) wait ``delay`` seconds."""
        if not self._failing:
            self._failing = True
            log.warning("audit webhook: delivery failed (%s); retrying with backoff until it goes", error)
        at = self._clock() + timedelta(seconds=delay)
        await self._store.hold_notifications(origin=AUDIT_WEBHOOK, at=at, error="after an earlier event")
        for position, row in enumerate(rows):
            await self._store.reschedule(row.id, at=at, error=error if position == 0 else "after an earlier event")

    async def _post(self, row: Notification) -> tuple[Verdict, float, str]:
        """One delivery: its verdict, the delay before a retry, and what went wrong (never the URL)."""
        body = row.text.encode()
        timestamp = int(self._clock().timestamp())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(self._secret, timestamp=timestamp, body=body),
            EVENT_ID_HEADER: _event_id(row.text),
            "User-Agent": "keybot-audit-webhook",
        }
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        backoff = self._backoff(row.attempts)
        try:
            async with self._session.post(self._url, data=body, headers=headers, allow_redirects=False) as response:
                status, retry_after = response.status, response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            return Verdict.RETRY, backoff, type(err).__name__
        outcome = verdict(status)
        if outcome is Verdict.RETRY and retry_after is not None and retry_after.isdigit():
            backoff = min(float(retry_after), MAX_BACKOFF.total_seconds())
        return outcome, backoff, f"HTTP {status}"

    def _backoff(self, attempts: int) -> float:
        return float(min(self._base_backoff * 2 ** max(attempts - 1, 0), MAX_BACKOFF.total_seconds()))


def _event_id(body: str) -> str:
    """The audit event id at the head of the body (``{"id":123,…``), without parsing the whole body."""
    head = body[6:30].split(",", 1)[0]
    return head if head.isdigit() else ""

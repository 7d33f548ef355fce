"""The outbox worker: delivers queued DMs through Slack, at least once per row, never inline.

Rows are written by the services in the same transaction as the change they describe. The worker
claims due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several instances never send the same
row), posts each with ``chat.postMessage`` to the user's app DM, and marks it sent only after Slack
answered ok. slack-sdk's own retry handlers retry a 429 (honouring Retry-After), 5xx and connection
errors once inside the call; if Slack is still failing, the row is rescheduled (after Retry-After,
or with exponential backoff) and survives restarts in the database.

Slack's ``ok: false`` answers fall in three groups (``classify``):

- the DM can never be delivered as it is (``DEAD_LETTER_ERRORS``: no such user or conversation, or
  a message Slack refuses): after the first such answer the row becomes a dead letter, logged once,
  never claimed again until an operator runs ``keybot outbox retry``;
- Slack refuses keybot itself (``APP_ERRORS``: a revoked or wrong token, a missing scope): every DM
  would fail alike, so rows stay queued and go out once the operator has fixed the app, with one
  ERROR line per outage;
- anything else is transient and retried with backoff.

A DM's text is never logged.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from enum import Enum

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.errors import Unavailable
from bot.domain.model import Notification
from bot.ports import Outbox
from bot.slack.notices import merged_dm_text

log = logging.getLogger("keybot.outbox")
MAX_BACKOFF = timedelta(minutes=15)

# chat.postMessage to a user id: answers that say this one DM can never be delivered as it is.
# (A deactivated user's DM is accepted by Slack, so there is no error for it.)
DEAD_LETTER_ERRORS = frozenset(
    {
        "channel_not_found",  # no such user or DM conversation: a made-up or mistyped id
        "user_not_found",
        "cannot_dm_bot",
        "is_archived",
        "not_in_channel",  # the conversation does not take the bot's messages
        "msg_too_long",
        "no_text",
        "invalid_blocks",
        "too_many_attachments",
    }
)
# Answers about keybot's token or app, not about this DM: every DM would get the same answer.
APP_ERRORS = frozenset(
    {
        "not_authed",
        "invalid_auth",
        "account_inactive",  # "token is for a deleted user or workspace", per Slack's docs
        "token_revoked",
        "token_expired",
        "missing_scope",
        "no_permission",
        "ekm_access_denied",
        "restricted_action",
    }
)


class Verdict(Enum):
    DEAD = "dead"  # this DM can never be delivered as it is
    APP = "app"  # Slack refuses keybot's token or app: fix it, then every DM goes out
    RETRY = "retry"  # transient: try again later


def classify(status: int | None, error: str) -> Verdict:
    """What a failed ``chat.postMessage`` means for the row (429 and 5xx are always transient)."""
    if status == 429 or (status is not None and status >= 500):
        return Verdict.RETRY
    if error in DEAD_LETTER_ERRORS:
        return Verdict.DEAD
    if error in APP_ERRORS:
        return Verdict.APP
    return Verdict.RETRY


def slack_client(*, token: str, base_url: str, timeout: int = 10) -> AsyncWebClient:
    """The Web API client keybot uses, with slack-sdk's retry handlers for 429, 5xx and resets."""
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=1),
            AsyncRateLimitErrorRetryHandler(max_retry_count=1),
            AsyncServerErrorRetryHandler(max_retry_count=1),
        ],
    )


class OutboxWorker:
    def __init__(
        self,
        store: Outbox,
        client: AsyncWebClient,
        *,
        clock: Callable[[], datetime],
        poll_interval: float = 1.0,
        batch: int = 20,
        lease_seconds: float = 60.0,
        base_backoff: float = 1.0,
        origin: str | None = None,
        merge_seconds: float = 0.0,
    ) -> None:
        """``origin``: the rows this worker sends, and no others (None: Slack's; "shell": keybot shell's).
        ``merge_seconds``: a DM waits that long for more changes to the same person, then goes out as one."""
        self._store = store
        self._merge = merge_seconds
        self._origin = origin
        self._client = client
        self._poll = poll_interval
        self._batch = batch
        self._lease = lease_seconds
        self._base_backoff = base_backoff
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._app_refused: str | None = None  # the error while Slack refuses keybot's token or app

    def wake(self) -> None:
        """Tell the worker new rows are waiting (called after a commit that queued DMs)."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="keybot-outbox")

    async def stop(self, *, drain_seconds: float = 5.0) -> None:
        """Finish in-flight sends, try one last drain, then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=drain_seconds)
            except TimeoutError:
                self._task.cancel()

    async def run(self) -> None:
        while True:
            try:
                sent = await self.drain_once()
            except Unavailable:
                sent = 0
                log.warning("outbox: database unavailable; will retry")
            except Exception:
                sent = 0
                log.exception("outbox: unexpected error; will retry")
            if self._stopping and sent == 0:
                return
            if sent == self._batch:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
            self._wake.clear()

    async def drain_once(self) -> int:
        """Claim and send one batch; return how many were sent."""
        rows = await self._store.claim_notifications(
            limit=self._batch,
            now=self._clock(),
            lease_seconds=self._lease,
            origin=self._origin,
            settle_seconds=self._merge,
        )
        results = await asyncio.gather(*(self._send_merged(group) for group in _by_recipient(rows)))
        return sum(results)

    async def _send_merged(self, group: list[Notification]) -> int:
        """Send one recipient's notices as one DM; every row shares the outcome. How many rows went."""
        first, *others = group
        if not await self._send(first, text=_text(group)):
            for row in others:  # the same answer would come back: keep them with the first
                await self._store.reschedule(row.id, at=self._clock(), error="merged with a DM not sent")
            return 0
        for row in others:
            await self._store.mark_sent(row.id, at=self._clock())
        return len(group)

    async def _send(self, row: Notification, *, text: str) -> bool:
        try:
            await self._client.chat_postMessage(channel=row.user_id, text=text, unfurl_links=False)
        except SlackApiError as err:
            status, retry_after = _status_and_retry_after(err)
            error = _slack_error(err)[:100]
            verdict = classify(status, error)
            if verdict is Verdict.DEAD:
                await self._store.bury(row.id, at=self._clock(), error=f"{status} {error}"[:200])
                log.warning(
                    "outbox: DM %s to %s is dead: Slack answered %s, which no retry can change; "
                    "`keybot outbox` lists it, `keybot outbox retry %s` sends it again",
                    row.id,
                    row.user_id,
                    error,
                    row.id,
                )
                return False
            if verdict is Verdict.APP and self._app_refused != error:
                self._app_refused = error
                log.error(
                    "outbox: Slack refuses keybot's bot token (%s): DMs stay queued until it is fixed. "
                    "Check SLACK_BOT_TOKEN and that the app is installed with its scopes.",
                    error,
                )
            delay = retry_after if status == 429 and retry_after is not None else self._backoff(row.attempts)
            await self._store.reschedule(
                row.id,
                at=self._clock() + timedelta(seconds=delay),
                error=f"{status} {error}"[:200],
            )
            log.warning(
                "outbox: DM %s not sent (HTTP %s, attempt %s); retry in %.1fs",
                row.id,
                status,
                row.attempts,
                delay,
            )
            return False
        except Exception as err:  # timeouts, resets, anything: keep the row, retry later
            delay = self._backoff(row.attempts)
            await self._store.reschedule(
                row.id, at=self._clock() + timedelta(seconds=delay), error=type(err).__name__
            )
            log.warning("outbox: DM %s not sent (%s); retry in %.1fs", row.id, type(err).__name__, delay)
            return False
        await self._store.mark_sent(row.id, at=self._clock())
        if self._app_refused is not None:
            self._app_refused = None
            log.info("outbox: Slack accepts keybot's bot token again; queued DMs are going out")
        return True

    def _backoff(self, attempts: int) -> float:
        return float(min(self._base_backoff * 2 ** max(attempts - 1, 0), MAX_BACKOFF.total_seconds()))


def _by_recipient(rows: Sequence[Notification]) -> list[list[Notification]]:
    """Rows grouped by who gets them (and in which workspace), oldest first in each group. Rows
    queued as plain text (before notices existed) each go alone."""
    groups: dict[tuple[str, str | None], list[Notification]] = {}
    alone: list[list[Notification]] = []
    for row in sorted(rows, key=lambda r: r.id):
        if row.notice is None:
            alone.append([row])
        else:
            groups.setdefault((row.user_id, row.notice.team_id), []).append(row)
    return [*groups.values(), *alone]


def _text(group: list[Notification]) -> str:
    if group[0].notice is None:
        return group[0].text
    return merged_dm_text([row.notice for row in group if row.notice is not None])


def _status_and_retry_after(err: SlackApiError) -> tuple[int | None, float | None]:
    """slack-sdk attaches a SlackResponse (``.status_code``) or, when Slack's body is not valid JSON,
    aiohttp's raw response (``.status``). A Retry-After that is not a number of seconds is ignored."""
    status = getattr(err.response, "status_code", None) or getattr(err.response, "status", None)
    headers = getattr(err.response, "headers", None) or {}
    raw = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return status, float(raw) if raw is not None else None
    except ValueError:
        return status, None


def _slack_error(err: SlackApiError) -> str:
    data = getattr(err.response, "data", None)
    return str(data.get("error", "")) if isinstance(data, dict) else "non-JSON answer"

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

Leak and deactivation DMs (bot/slack/leak_dms.py) go alone too, with their buttons.

Reminders (bot/slack/nudges.py) are never merged: each goes alone, with its buttons, and where it went
(channel, ts) is recorded (``NudgeMessages``); a decision on one is a row that updates that message
(``chat.update``), waiting while the reminder itself is not sent yet.

A DM's text is never logged.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.model import Notification
from bot.domain.notices import BUTTON_DMS, BUTTON_KINDS, NUDGE_KINDS, UPDATES, Notice, NoticeKind
from bot.domain.tracing import REQUEST_ID
from bot.ports import NudgeMessages, Outbox
from bot.services.draining import Drainer
from bot.slack.installs import WorkspaceTokens
from bot.slack.leak_dms import button_dm
from bot.slack.notices import merged_dm_text
from bot.slack.nudges import decided_dm, nudge_dm
from bot.slack.requests import request_closed_dm, request_dm

log = logging.getLogger("keybot.outbox")
MAX_BACKOFF = timedelta(minutes=15)
UPDATE_TRIES = 8  # an update of a reminder whose DM is still not sent after that many tries is dead

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
        # chat.update of a reminder DM (bot/slack/nudges.py): the message is gone or can no longer change
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
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


class OutboxWorker(Drainer):
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
        nudge_dms: NudgeMessages | None = None,
        tokens: WorkspaceTokens | None = None,
    ) -> None:
        """``origin``: the rows this worker sends, and no others (None: Slack's; "shell": keybot shell's).
        ``merge_seconds``: a DM waits that long for more changes to the same person, then goes out as one.
        ``nudge_dms``: where reminder DMs went, so a decision can update them (without it, it cannot).
        ``tokens``: the bot token of each row's workspace (keybot installed through OAuth); without it
        every call uses ``client``'s own token."""
        super().__init__(name="outbox", log=log, poll_interval=poll_interval, batch=batch)
        self._tokens = tokens
        self._store = store
        self._nudge_dms = nudge_dms
        self._merge = merge_seconds
        self._origin = origin
        self._client = client
        self._lease = lease_seconds
        self._base_backoff = base_backoff
        self._clock = clock
        self._app_refused: str | None = None  # the error while Slack refuses keybot's token or app
        # called with (team id, user id) for each recipient of a batch of DMs, once handled (bot/slack/home_refresh.py)
        self.on_delivered: Callable[[str, str], None] | None = None
        self.retries = 0  # sends to retry later, and DMs buried as dead letters (read by /metrics)
        self.dead_letters = 0

    async def drain_once(self) -> int:
        """Claim and send one batch; return how many were sent."""
        rows = await self._store.claim_notifications(
            limit=self._batch,
            now=self._clock(),
            lease_seconds=self._lease,
            origin=self._origin,
            settle_seconds=self._merge,
        )
        results = await asyncio.gather(*(self._deliver(groups) for groups in _by_recipient(rows)))
        return sum(results)

    async def _deliver(self, groups: list[list[Notification]]) -> int:
        """One recipient's DMs, in order: merged notices as one DM, each reminder alone with its buttons,
        each decision on a reminder as an update of that reminder's DM. How many rows went."""
        sent = 0
        for group in groups:
            notice = group[0].notice
            if notice is not None and notice.kind in UPDATES:
                sent += await self._update_nudge(group[0], notice)
            elif notice is not None and notice.kind in BUTTON_DMS:
                sent += await self._send_nudge(group[0], notice)
            elif notice is not None and notice.kind in BUTTON_KINDS:
                sent += await self._send_with_buttons(group[0], notice)
            else:
                sent += await self._send_merged(group)
        notice = groups[0][0].notice if groups and groups[0] else None
        if self.on_delivered is not None and notice is not None and notice.team_id:
            self.on_delivered(notice.team_id, groups[0][0].user_id)  # their Home may show what changed
        return sent

    async def _send_nudge(self, row: Notification, notice: Notice) -> int:
        """A reminder with its buttons; where it went (channel, ts) is recorded before it counts as sent."""
        REQUEST_ID.set(notice.request_id)
        dm = nudge_dm(notice) if notice.kind in NUDGE_KINDS else request_dm(notice)

        async def post(auth: dict[str, Any]) -> None:
            answer = await self._client.chat_postMessage(
                channel=row.user_id, text=dm["text"], blocks=dm["blocks"], unfurl_links=False, **auth
            )
            if self._nudge_dms is not None and notice.nudge is not None:
                channel, ts = str(answer.get("channel", row.user_id)), str(answer.get("ts", ""))
                await self._nudge_dms.record_nudge_dm(
                    job_id=notice.nudge, user_id=row.user_id, channel=channel, ts=ts, at=self._clock()
                )

        return int(await self._send(row, text=dm["text"], deliver=post))

    async def _send_with_buttons(self, row: Notification, notice: Notice) -> int:
        """A leak or deactivation DM (bot/slack/leak_dms.py), alone, with its buttons."""
        REQUEST_ID.set(notice.request_id)
        dm = button_dm(notice)

        async def post(auth: dict[str, Any]) -> None:
            await self._client.chat_postMessage(
                channel=row.user_id, text=dm["text"], blocks=dm["blocks"], unfurl_links=False, **auth
            )

        return int(await self._send(row, text=dm["text"], deliver=post))

    async def _update_nudge(self, row: Notification, notice: Notice) -> int:
        """Turn the reminder this person got into who decided what (``chat.update``). Until that reminder
        is sent the update waits; if it never is, the update becomes a dead letter."""
        REQUEST_ID.set(notice.request_id)
        found = None
        if self._nudge_dms is not None and notice.nudge is not None:
            found = await self._nudge_dms.nudge_dm(job_id=notice.nudge, user_id=row.user_id)
        if found is None:
            # the DM it updates may still be queued (Slack down, keybot uninstalled there for a while):
            # wait for as long as that lasts; once nothing older is queued, UPDATE_TRIES more tries
            waiting = self._nudge_dms is not None and await self._store.waits_behind(row.id, user_id=row.user_id)
            if not waiting and (row.attempts >= UPDATE_TRIES or self._nudge_dms is None):
                await self._store.bury(row.id, at=self._clock(), error="its reminder DM was never sent")
                self.dead_letters += 1
                log.warning("outbox: update %s to %s is dead: its reminder DM was never sent", row.id, row.user_id)
                return 0
            delay = self._backoff(row.attempts)
            await self._store.reschedule(
                row.id, at=self._clock() + timedelta(seconds=delay), error="its reminder DM is not sent yet"
            )
            return 0
        channel, ts = found
        dm = decided_dm(notice) if notice.kind is NoticeKind.NUDGE_DECIDED else request_closed_dm(notice)

        async def update(auth: dict[str, Any]) -> None:
            await self._client.chat_update(channel=channel, ts=ts, text=dm["text"], blocks=dm["blocks"], **auth)

        return int(await self._send(row, text=dm["text"], deliver=update))

    async def _send_merged(self, group: list[Notification]) -> int:
        """Send one recipient's notices as one DM; every row shares the outcome. How many rows went."""
        first, *others = group
        # each group runs in its own task (gather): log lines of this send carry the queuing request's id
        REQUEST_ID.set(first.notice.request_id if first.notice is not None else None)
        if not await self._send(first, text=_text(group)):
            for row in others:  # the same answer would come back: keep them with the first
                await self._store.reschedule(row.id, at=self._clock(), error="merged with a DM not sent")
            return 0
        for row in others:
            await self._store.mark_sent(row.id, at=self._clock())
        return len(group)

    async def _auth(self, row: Notification) -> dict[str, Any] | None:
        """The token argument of the row's workspace ({} without ``tokens``); None if keybot is not
        installed there now (uninstalled: the row waits for a reinstall)."""
        if self._tokens is None:
            return {}
        team, enterprise = _workspace(row)
        token = await self._tokens.token_for(team_id=team, enterprise_id=enterprise)
        return None if token is None else {"token": token}

    async def _not_installed(self, row: Notification) -> None:
        team, _ = _workspace(row)
        delay = self._backoff(row.attempts)
        await self._store.reschedule(
            row.id, at=self._clock() + timedelta(seconds=delay), error="keybot is not installed in its workspace"
        )
        log.info("outbox: DM %s waits: keybot is not installed in %s; retry in %.1fs", row.id, team, delay)

    async def _send(
        self, row: Notification, *, text: str, deliver: Callable[[dict[str, Any]], Awaitable[None]] | None = None
    ) -> bool:
        """Post ``text`` to the row's recipient (or run ``deliver``, which calls Slack itself) with the
        token of the row's workspace; mark the row sent on success, else reschedule or bury it as
        Slack's answer says."""
        auth = await self._auth(row)
        if auth is None:
            await self._not_installed(row)
            return False
        try:
            if deliver is not None:
                await deliver(auth)
            else:
                await self._client.chat_postMessage(channel=row.user_id, text=text, unfurl_links=False, **auth)
        except SlackApiError as err:
            status, retry_after = _status_and_retry_after(err)
            error = _slack_error(err)[:100]
            verdict = classify(status, error)
            if error == "token_expired" and self._tokens is not None:
                team, enterprise = _workspace(row)
                if await self._tokens.refreshed(team_id=team, enterprise_id=enterprise) is not None:
                    # Slack refused the call: nothing was delivered; send again now with the new token
                    await self._store.reschedule(row.id, at=self._clock(), error="token refreshed")
                    self.wake()
                    log.info("outbox: DM %s waits for a refreshed token; sending again", row.id)
                    return False
            if verdict is Verdict.DEAD:
                await self._store.bury(row.id, at=self._clock(), error=f"{status} {error}"[:200])
                self.dead_letters += 1
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
            self.retries += 1
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
            self.retries += 1
            log.warning("outbox: DM %s not sent (%s); retry in %.1fs", row.id, type(err).__name__, delay)
            return False
        await self._store.mark_sent(row.id, at=self._clock())
        log.info("outbox: DM %s sent", row.id)
        if self._app_refused is not None:
            self._app_refused = None
            log.info("outbox: Slack accepts keybot's bot token again; queued DMs are going out")
        return True

    def _backoff(self, attempts: int) -> float:
        return float(min(self._base_backoff * 2 ** max(attempts - 1, 0), MAX_BACKOFF.total_seconds()))


def _by_recipient(rows: Sequence[Notification]) -> list[list[list[Notification]]]:
    """For each recipient (in each workspace), their DMs in order: the notices to merge into one DM
    (oldest first), then each reminder and each decision on one alone. Rows queued as plain text
    (before notices existed) each go alone."""
    merged: dict[tuple[str, str | None], list[Notification]] = {}
    single: dict[tuple[str, str | None], list[list[Notification]]] = {}
    alone: list[list[list[Notification]]] = []
    for row in sorted(rows, key=lambda r: r.id):
        if row.notice is None:
            alone.append([[row]])
        elif row.notice.kind in BUTTON_DMS or row.notice.kind in BUTTON_KINDS or row.notice.kind in UPDATES:
            single.setdefault((row.user_id, row.notice.team_id), []).append([row])
        else:
            merged.setdefault((row.user_id, row.notice.team_id), []).append(row)
    recipients = dict.fromkeys([*merged, *single])
    return [
        ([merged[who]] if who in merged else []) + single.get(who, []) for who in recipients
    ] + alone


def _workspace(row: Notification) -> tuple[str | None, str | None]:
    """The (team or org key, enterprise) whose token sends ``row``; (None, None) for rows queued as text."""
    if row.notice is None:
        return None, None
    return row.notice.team_id, row.notice.enterprise_id


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

"""Messages and deactivations from the Events API (DESIGN.md §5.5): a live key pasted in a conversation
keybot is in, and a user deactivated in Slack.

The listeners only read the event and ack. A message (``message.channels``, ``.groups``, ``.im``,
``.mpim``; a thread reply, an edit's new text, its blocks and attachments, code blocks included) costs
one scan with the key regex (``KeyFormat.candidates``); only one holding a key-shaped string, and a
``user_change`` with ``deleted: true``, is queued for ``EventWatch``'s worker. The queue is bounded
(``MAX_QUEUED``): a burst of messages never holds up commands, and when it is full an event is dropped
with a warning (``dropped``, in /metrics' logs) instead of growing memory without end.

The worker checks the strings (checksum, key id, argon2 in the verify lane) and applies the org's
``leak-action`` (bot/services/leaks.py); then the poster is warned privately in that conversation
(``chat.postEphemeral``). The owners' DM carries the message's permalink (``chat.getPermalink``, asked
only when a live key was found). keybot's own messages are ignored. A key split across lines (or by
formatting) is not one string: it is not found.

The strings travel in ``PostedMessage.candidates`` (hidden from repr); nothing here logs them.
"""

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.keys import KeyFormat
from bot.domain.leaks import PostedMessage
from bot.services.leaks import LeakService
from bot.services.offboarding import OffboardingService
from bot.slack.installs import WorkspaceTokens, org_key
from bot.slack.leak_dms import poster_warning

log = logging.getLogger("keybot.events")
MAX_QUEUED = 1000  # messages with key-shaped strings and deactivations waiting for the worker
MAX_DEPTH = 12  # nesting of blocks and attachments read for text
# Subtypes that carry no new text of a person (an edit's is under "message").
SKIPPED_SUBTYPES = frozenset(
    {"message_deleted", "channel_join", "channel_leave", "group_join", "group_leave", "message_replied"}
)


@dataclass(frozen=True, slots=True)
class UserDeactivated:
    team_id: str  # the organization's key
    user_id: str
    workspace: str | None = None  # the Slack workspace the event came from (a Grid org has many)


def _strings(value: Any, depth: int = 0) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif depth < MAX_DEPTH and isinstance(value, list):
        for item in value:
            yield from _strings(item, depth + 1)
    elif depth < MAX_DEPTH and isinstance(value, dict):
        for item in value.values():
            yield from _strings(item, depth + 1)


def _from_keybot(body: dict[str, Any], message: dict[str, Any]) -> bool:
    """Whether keybot posted ``message`` itself (its bot user, or a bot message of its own app)."""
    authorizations = body.get("authorizations")
    bots = {
        a["user_id"]
        for a in (authorizations if isinstance(authorizations, list) else [])
        if isinstance(a, dict) and a.get("is_bot") and isinstance(a.get("user_id"), str)
    }
    user = message.get("user")
    if isinstance(user, str) and user in bots:
        return True
    app = body.get("api_app_id")
    profile = message.get("bot_profile")
    own_app = app is not None and (
        message.get("app_id") == app or (isinstance(profile, dict) and profile.get("app_id") == app)
    )
    return bool(message.get("bot_id")) and own_app


def _org_key(body: dict[str, Any]) -> str | None:
    """The organization an event concerns: its enterprise for an org-wide Grid install, else its team."""
    authorizations = body.get("authorizations")
    first = authorizations[0] if isinstance(authorizations, list) and authorizations else None
    first = first if isinstance(first, dict) else {}
    team, enterprise = body.get("team_id"), body.get("enterprise_id") or first.get("enterprise_id")
    whole_org = first.get("is_enterprise_install") is True
    return org_key(
        team_id=team if isinstance(team, str) else None,
        enterprise_id=enterprise if isinstance(enterprise, str) else None,
        is_enterprise_install=whole_org or body.get("is_enterprise_install") is True,
    )


def posted_message(body: dict[str, Any], *, key_format: KeyFormat) -> PostedMessage | None:
    """The key-shaped strings of a message event with who posted it where; None when it holds none
    (one regex scan), is keybot's own, or says nothing new. ``team_id`` is the organization's key."""
    event = body.get("event")
    team_id = _org_key(body)
    if not isinstance(event, dict) or not isinstance(team_id, str):
        return None
    subtype = event.get("subtype")
    if (subtype is not None and not isinstance(subtype, str)) or subtype in SKIPPED_SUBTYPES:
        return None  # Slack's subtypes are strings: anything else is not a message worth reading
    message = event.get("message") if subtype == "message_changed" else event
    if not isinstance(message, dict) or _from_keybot(body, message):
        return None
    text = "\n".join(_strings([message.get("text"), message.get("blocks"), message.get("attachments")]))
    candidates = key_format.candidates(text)
    if not candidates:
        return None
    channel, ts = event.get("channel"), message.get("ts")
    poster = message.get("user") or message.get("bot_id")
    thread = message.get("thread_ts")
    if not (isinstance(channel, str) and isinstance(ts, str) and isinstance(poster, str)):
        return None
    return PostedMessage(
        team_id=team_id,
        channel=channel,
        ts=ts,
        poster=poster,
        candidates=tuple(candidates),
        thread_ts=thread if isinstance(thread, str) and thread != ts else None,
    )


def deactivation(body: dict[str, Any]) -> UserDeactivated | None:
    """A ``user_change`` that deactivated someone; None for any other change."""
    event = body.get("event")
    user = event.get("user") if isinstance(event, dict) else None
    team_id = _org_key(body)
    if not isinstance(user, dict) or user.get("deleted") is not True or not isinstance(team_id, str):
        return None
    user_id, workspace = user.get("id"), user.get("team_id") or body.get("team_id")
    if not isinstance(user_id, str):
        return None
    return UserDeactivated(team_id=team_id, user_id=user_id, workspace=workspace if isinstance(workspace, str) else None)


class EventWatch:
    """The bounded queue of messages to check and deactivations to apply, and its one worker (started on
    first use, stopped by ``aclose``)."""

    def __init__(
        self,
        *,
        leaks: LeakService,
        offboarding: OffboardingService,
        client: AsyncWebClient,
        key_format: KeyFormat,
        max_queued: int = MAX_QUEUED,
        tokens: WorkspaceTokens | None = None,
    ) -> None:
        self._leaks = leaks
        self._offboarding = offboarding
        self._client = client
        self._tokens = tokens  # keybot installed through OAuth: each workspace's own token
        self._format = key_format
        self._queue: asyncio.Queue[PostedMessage | UserDeactivated] = asyncio.Queue(max_queued)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0  # events not handled because the queue was full
        self.warned = 0  # posters warned privately

    def message(self, body: dict[str, Any]) -> None:
        """Queue a message event if it holds key-shaped strings."""
        found = posted_message(body, key_format=self._format)
        if found is not None:
            self._put(found)

    def user_change(self, body: dict[str, Any]) -> None:
        """Queue a ``user_change`` event if it deactivated someone."""
        found = deactivation(body)
        if found is not None:
            self._put(found)

    def _put(self, work: PostedMessage | UserDeactivated) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="keybot-events")
        try:
            self._queue.put_nowait(work)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("events: queue full (%s waiting); dropped a %s event", self._queue.qsize(), _kind(work))

    async def idle(self) -> None:
        """Wait until every queued event is handled (the shell and the tests)."""
        await self._queue.join()

    async def aclose(self, *, drain_seconds: float = 5.0) -> None:
        """Handle what is queued (for ``drain_seconds`` at most), then stop the worker."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout=drain_seconds)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            work = await self._queue.get()
            try:
                if isinstance(work, UserDeactivated):
                    await self._offboarding.deactivated(team_id=work.team_id, user_id=work.user_id, workspace=work.workspace)
                else:
                    await self._check(work)
            except Exception as err:  # never the strings: only the kind of failure
                log.warning("events: could not handle a %s event (%s)", _kind(work), type(err).__name__)
            finally:
                self._queue.task_done()

    async def _token(self, org: str) -> dict[str, Any] | None:
        """The token argument for calls about ``org`` ({} with one bot token); None if not installed."""
        if self._tokens is None:
            return {}
        token = await self._tokens.token_for(team_id=org, enterprise_id=None)
        return None if token is None else {"token": token}

    async def _check(self, message: PostedMessage) -> None:
        token = await self._token(message.team_id)
        if token is None:
            log.info("events: a message from a workspace keybot is no longer installed in; not checked")
            return

        async def permalink() -> str | None:
            try:
                answer = await self._client.chat_getPermalink(
                    channel=message.channel, message_ts=message.ts, **token
                )
            except SlackApiError as err:
                log.warning("events: no permalink for a leaked key's message (%s)", err.response.get("error"))
                return None
            link = answer.get("permalink")
            return link if isinstance(link, str) else None

        acted = await self._leaks.posted(message, permalink=permalink)
        if not acted:
            return
        try:
            await self._client.chat_postEphemeral(
                channel=message.channel,
                user=message.poster,
                text=poster_warning(acted),
                thread_ts=message.thread_ts,
                **token,
            )
            self.warned += 1
        except SlackApiError as err:
            log.warning("events: could not warn the poster of a leaked key (%s)", err.response.get("error"))


def _kind(work: PostedMessage | UserDeactivated) -> str:
    return "user_change" if isinstance(work, UserDeactivated) else "message"

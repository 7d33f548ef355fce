"""Publishing users' App Home views (``views.publish``) within Slack's rate limit.

- **Who**: the users who opened their Home on this instance (``app_home_opened``), remembered for
  ``WATCH_FOR`` (Slack sends the event again at each opening; at most ``MAX_WATCHED`` users, the least
  recently seen forgotten first). Someone who never opened the Home gets no publish: the first opening
  publishes a fresh view anyway.
- **When**: on opening; after a change the viewer makes from the Home, or from a modal while they
  have the Home open (``changed``); and after a change
  someone else made that concerns the viewer — a DM keybot delivered to them (a key created, deleted,
  disabled, rolled in a project they own, a role granted or revoked: ``concerned`` is called by the
  outbox worker for each recipient it handled).
- **How often**: ``views.publish`` is Tier 4 (about 100 calls a minute per workspace). Refreshes of
  one user are coalesced: at most one publish per user every ``HOME_INTERVAL`` seconds (3 s: a burst
  of changes becomes one publish at the end of the interval, with the latest notice); and a workspace
  never gets more than ``WORKSPACE_BUDGET`` publishes in a rolling minute (80, leaving room under
  Slack's 100): a refresh beyond it waits for a slot, still coalescing.
- **Shutdown**: ``aclose`` cancels the refreshes still waiting and awaits those in flight.
"""

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.errors import NotSetUp
from bot.domain.model import Actor
from bot.services import Keybot
from bot.slack import home
from bot.slack.installs import WorkspaceTokens

HOME_INTERVAL = 3.0  # seconds between two publishes of one user's Home
WORKSPACE_BUDGET = 80  # publishes per workspace in a rolling minute (Slack's Tier 4: ~100)
WATCH_FOR = 8 * 3600.0  # seconds a Home opening keeps its viewer refreshed after others' changes
MAX_WATCHED = 10_000
log = logging.getLogger("keybot.slack")

Who = tuple[str, str]  # (team id, user id)


class HomePublisher:
    """Publishes users' Home views, coalesced per user and budgeted per workspace (module docstring)."""

    def __init__(
        self,
        keybot: Keybot,
        *,
        client: AsyncWebClient | None = None,
        interval: float = HOME_INTERVAL,
        budget: int = WORKSPACE_BUDGET,
        clock: Callable[[], float] = time.monotonic,
        tokens: WorkspaceTokens | None = None,
    ) -> None:
        """``client``: the Web API client of refreshes that no request asked for (``concerned``), with
        each workspace's token from ``tokens`` when keybot is installed through OAuth."""
        self._keybot, self._client, self._now = keybot, client, clock
        self._tokens = tokens
        self.interval, self.budget = interval, budget  # seconds between one user's publishes; per workspace a minute
        self._last: dict[Who, float] = {}
        self._waiting: dict[Who, str | None] = {}
        self._watched: OrderedDict[Who, tuple[Actor, float]] = OrderedDict()
        self._published: dict[str, deque[float]] = {}
        self._closed = False
        self.tasks: set[asyncio.Task[None]] = set()

    def opened(self, client: AsyncWebClient, actor: Actor) -> None:
        """The user opened their Home: publish it, and keep it fresh after others' changes."""
        self.opened_elsewhere(actor)
        self.refresh(client, actor)

    def watching(self, team_id: str, user_id: str) -> bool:
        seen = self._watched.get((team_id, user_id))
        return seen is not None and self._now() - seen[1] <= WATCH_FOR

    def concerned(self, team_id: str, user_id: str) -> None:
        """A change concerning ``user_id`` was made (by someone else): refresh their Home if they opened it."""
        if self._client is None or not self.watching(team_id, user_id):
            return
        self.refresh(self._client, self._watched[(team_id, user_id)][0])

    def changed(self, client: AsyncWebClient, actor: Actor, *, notice: str, seen: bool = False) -> None:
        """The user changed something (from a modal or a Home button): refresh their Home with ``notice``
        if they opened it, or ``seen`` it (the change came from their Home, perhaps opened elsewhere)."""
        if seen:
            self.opened_elsewhere(actor)
        if self.watching(actor.team_id, actor.user_id):
            self.refresh(client, actor, notice=notice)

    def opened_elsewhere(self, actor: Actor) -> None:
        """Remember the user as a Home viewer without publishing (they clicked on their Home)."""
        who = (actor.team_id, actor.user_id)
        self._watched.pop(who, None)
        self._watched[who] = (actor, self._now())
        while len(self._watched) > MAX_WATCHED:
            self._watched.popitem(last=False)

    def refresh(self, client: AsyncWebClient, actor: Actor, *, notice: str | None = None) -> None:
        """Publish ``actor``'s Home now, or once at the end of their interval if one went out recently."""
        if self._closed:
            return
        who = (actor.team_id, actor.user_id)
        if who in self._waiting:
            self._waiting[who] = notice or self._waiting[who]
            return
        self._waiting[who] = notice
        delay = max(0.0, self._last.get(who, -1e9) + self.interval - self._now())
        task = asyncio.create_task(self._publish_after(client, actor, delay))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def settle(self) -> None:
        """Wait until every refresh asked for so far has been published (or given up)."""
        while self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def aclose(self) -> None:
        """Stop: refreshes still waiting are dropped, those in flight awaited (cancelled after 5 s)."""
        self._closed = True
        if not self.tasks:
            return
        pending = set(self.tasks)
        for task in pending:
            if task.get_name().startswith("home-wait"):
                task.cancel()
        _, late = await asyncio.wait(pending, timeout=5)
        for task in late:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*pending, return_exceptions=True)

    async def _slot(self, team_id: str) -> None:
        """Wait until the workspace may have one more publish this minute, and take it."""
        sent = self._published.setdefault(team_id, deque())
        while True:
            now = self._now()
            while sent and now - sent[0] >= 60.0:
                sent.popleft()
            if len(sent) < self.budget:
                sent.append(now)
                return
            await asyncio.sleep(sent[0] + 60.0 - now)

    async def _publish_after(self, client: AsyncWebClient, actor: Actor, delay: float) -> None:
        who = (actor.team_id, actor.user_id)
        task = asyncio.current_task()
        if task is not None:
            task.set_name("home-wait")
        try:
            if delay:
                await asyncio.sleep(delay)
            await self._slot(actor.team_id)
        except asyncio.CancelledError:
            self._waiting.pop(who, None)
            raise
        if task is not None:
            task.set_name("home-publish")
        notice = self._waiting.pop(who, None)
        self._last[who] = self._now()
        try:
            view = home.home_view(await self._keybot.home.home(actor), notice=notice)
            token: dict[str, Any] = {}
            if client is self._client and self._tokens is not None:
                installed = await self._tokens.token_for(team_id=actor.team_id, enterprise_id=None)
                if installed is None:
                    return  # keybot is not installed there (now)
                token = {"token": installed}
            await client.views_publish(user_id=actor.user_id, view=view, **token)
        except NotSetUp:
            return
        except Exception as err:  # Slack or the database unreachable: the next opening publishes again
            log.warning("could not publish a Home view: %s", type(err).__name__)

"""Drive a running keybot exactly as Slack does: signed slash commands and button clicks over HTTP.

Used by ``keybot shell``, the end-to-end tests and the benchmark, so all three exercise the
production code path (``POST /slack/events`` → signature check → Bolt → listeners). Replies to
clicks arrive on a ``response_url`` served by the in-process Slack stand-in (bot/shell/fakeslack.py).
"""

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bot.shell.fakeslack import FakeSlack, Response
from bot.shell.wire import (
    block_actions_body,
    block_suggestion_body,
    event_body,
    post_signed,
    shortcut_body,
    slash_command_body,
    view_body,
)

WORKING = "Working on it"  # keybot's ack for a command that outlasts its ack budget (bot/slack/blocks.py)


@dataclass(frozen=True)
class Reply:
    """What Slack got back: the HTTP status, and the message (ack body or response_url post)."""

    status: int
    message: dict[str, Any] = field(repr=False)
    response_url: str

    @property
    def text(self) -> str:
        """All visible text of the message: fallback text and every block's text, joined."""
        return message_text(self.message)

    def buttons(self) -> list[dict[str, Any]]:
        return [
            element
            for block in self.message.get("blocks", [])
            if block.get("type") == "actions"
            for element in block.get("elements", [])
        ]

    def menu_choice(self, label: str) -> dict[str, Any]:
        """The overflow-menu option labelled ``label`` of the first row that has one, as a clickable."""
        for block in self.message.get("blocks", []):
            menu = block.get("accessory") or {}
            for option in menu.get("options", []) if menu.get("type") == "overflow" else []:
                if option.get("text", {}).get("text") == label:
                    return {"action_id": menu["action_id"], "selected_option": option}
        raise LookupError(f"no menu option {label!r} in this message")

    def button(self, action_id: str) -> dict[str, Any]:
        for element in self.buttons():
            if element.get("action_id") == action_id:
                return element
        raise LookupError(f"no button {action_id!r} in this message")


def message_text(message: dict[str, Any]) -> str:
    parts = [str(message.get("text", ""))]
    for block in message.get("blocks", []):
        text = block.get("text")
        if isinstance(text, dict):
            parts.append(str(text.get("text", "")))
        for element in block.get("elements", []) + block.get("fields", []):
            if isinstance(element, dict) and isinstance(element.get("text"), str):
                parts.append(element["text"])
    return "\n".join(parts)


class SlackDriver:
    """Sends what Slack would send to ``events_url`` for one workspace."""

    def __init__(
        self,
        *,
        events_url: str,
        signing_secret: str,
        slack: FakeSlack,
        team_id: str = "T0001",
        session: aiohttp.ClientSession,
    ) -> None:
        self.events_url = events_url
        self.signing_secret = signing_secret
        self.slack = slack
        self.team_id = team_id
        self.session = session
        self._ids = itertools.count(1)

    def _new_response_url(self) -> str:
        return self.slack.response_url(f"r{next(self._ids)}")

    async def command(
        self,
        user_id: str,
        text: str,
        *,
        team_id: str | None = None,
        enterprise_id: str | None = None,
        org_wide: bool = False,
    ) -> Reply:
        """``/apikeys <text>`` typed by ``user_id``; the reply is the ack body. ``enterprise_id``: typed in
        a workspace of that Enterprise Grid org; ``org_wide``: where keybot is installed org-wide."""
        url = self._new_response_url()
        body = slash_command_body(
            text=text,
            user_id=user_id,
            team_id=team_id or self.team_id,
            response_url=url,
            enterprise_id=enterprise_id,
            is_enterprise_install=org_wide,
        )
        status, raw = await post_signed(
            self.session, self.events_url, body, signing_secret=self.signing_secret
        )
        return Reply(status=status, message=_parse(raw), response_url=url)

    async def ask(self, user_id: str, text: str) -> Reply:
        """``/apikeys <text>``'s answer, following a "Working on it" ack to its response_url post."""
        return await self.answered(await self.command(user_id, text))

    async def answered(self, reply: Reply, *, within: float = 60.0) -> Reply:
        """The answer ``reply`` stands for: itself, or — when keybot acked "Working on it" because the
        command outlasted its ack budget (a busy machine) — what it then posted to the response_url."""
        if WORKING not in reply.text:
            return reply
        name = reply.response_url.rsplit("/", 1)[-1]
        posted = await self.slack.wait_for(lambda slack: slack.responses_to(name), timeout=within)
        return Reply(status=reply.status, message=posted[-1].body, response_url=reply.response_url)

    async def click(
        self,
        user_id: str,
        button: dict[str, Any],
        *,
        team_id: str | None = None,
        response_url: str | None = None,
        dm: tuple[str, dict[str, Any]] | None = None,
        view_id: str | None = None,
    ) -> Reply:
        """Press ``button`` (a Block Kit button dict); the reply is what keybot posted to the response_url.
        ``dm``: the button is on a message in a DM (its channel, and the message with its ``ts``), which
        Slack sends along, unlike an ephemeral message. ``view_id``: the button is on a view (the App
        Home), whose clicks come with no ``response_url``."""
        url = "" if view_id is not None else response_url or self._new_response_url()
        name = url.rsplit("/", 1)[-1]
        before = len(self.slack.responses_to(name))
        where: dict[str, Any] = {}
        if view_id is not None:
            where = {"container": {"type": "view", "view_id": view_id}}
        elif dm is not None:
            channel, message = dm
            container = {"type": "message", "message_ts": message.get("ts"), "channel_id": channel, "is_ephemeral": False}
            where = {"channel_id": channel, "message": message, "is_ephemeral": False, "container": container}
        body = block_actions_body(
            user_id=user_id,
            team_id=team_id or self.team_id,
            action_id=str(button.get("action_id", "")),
            value=str(button.get("value", "")),
            response_url=url,
            selected_option=button.get("selected_option"),
            **where,
        )
        status, _ = await post_signed(self.session, self.events_url, body, signing_secret=self.signing_secret)
        posted: list[Response] = self.slack.responses_to(name)[before:] if url else []
        return Reply(status=status, message=posted[-1].body if posted else {}, response_url=url)

    async def _interaction(self, body: bytes, *, json_body: bool = False) -> tuple[int, dict[str, Any]]:
        kind = "application/json" if json_body else "application/x-www-form-urlencoded"
        status, raw = await post_signed(
            self.session, self.events_url, body, signing_secret=self.signing_secret, content_type=kind
        )
        return status, _parse(raw)

    async def home_opened(self, user_id: str) -> int:
        """The user opened the app's Home tab (an ``app_home_opened`` event); the HTTP status."""
        event = {"type": "app_home_opened", "user": user_id, "channel": f"D{user_id}", "tab": "home"}
        return (await self._interaction(event_body(event=event, team_id=self.team_id), json_body=True))[0]

    async def shortcut(self, user_id: str, callback_id: str) -> int:
        """The user ran a global shortcut; the HTTP status."""
        body = shortcut_body(user_id=user_id, team_id=self.team_id, callback_id=callback_id)
        return (await self._interaction(body))[0]

    async def submit(self, user_id: str, view: dict[str, Any], values: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Submit the modal ``view`` with ``values`` as its state; the status and keybot's answer
        (``{}``: the modal closes; ``response_action`` ``errors`` or ``update``)."""
        body = view_body(kind="view_submission", user_id=user_id, team_id=self.team_id, view=view, values=values)
        return await self._interaction(body)

    async def close(self, user_id: str, view: dict[str, Any]) -> int:
        """The user closed the modal ``view`` (``view_closed``); the HTTP status."""
        body = view_body(kind="view_closed", user_id=user_id, team_id=self.team_id, view=view)
        return (await self._interaction(body))[0]

    async def suggestions(self, user_id: str, *, action_id: str, block_id: str, typed: str) -> list[dict[str, Any]]:
        """The options keybot suggests for ``typed`` in an external menu (a ``block_suggestion``)."""
        body = block_suggestion_body(
            user_id=user_id, team_id=self.team_id, action_id=action_id, value=typed, block_id=block_id
        )
        status, answer = await self._interaction(body)
        options = answer.get("options") if status == 200 else None
        return [o for o in options if isinstance(o, dict)] if isinstance(options, list) else []


    async def event(self, event: dict[str, Any], *, team_id: str | None = None) -> int:
        """An Events API event (a message in a channel, a ``user_change``), as Slack posts it; the status."""
        body = event_body(event=event, team_id=team_id or self.team_id)
        status, _ = await post_signed(
            self.session, self.events_url, body, signing_secret=self.signing_secret, content_type="application/json"
        )
        return status


def _parse(raw: str) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {"text": raw}
    return data if isinstance(data, dict) else {"text": raw}

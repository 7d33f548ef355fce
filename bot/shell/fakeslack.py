"""An in-process stand-in for the Slack Web API and for Slack's `response_url` endpoints.

`FakeSlack` is a small aiohttp server on 127.0.0.1 (a free port) that answers the Web API methods
keybot uses, records every call and every `response_url` post, and can be told to fail the next
calls to a method (429 with Retry-After, 5xx, `ok: false`, or a hang) so tests can exercise retries.
The e2e tests, the benchmark and `keybot shell` point `AsyncWebClient(base_url=slack.api_url)` at it::

    async with FakeSlack() as slack:
        client = AsyncWebClient(base_url=slack.api_url, token="xoxb-test")
        await client.chat_postMessage(channel="U1", text="hi")
        dm = (await slack.wait_for(lambda s: s.dms_to("U1")))[0]

It renders nothing: it is only the API.

It also plays Slack's side of installing keybot through OAuth v2: ``grant(code, team_id=…)`` stands for
a user approving the install in Slack, after which ``oauth.v2.access`` trades that code (once, with the
app's client id and secret) for a bot token of that workspace (or of a whole Enterprise Grid org), with
a refresh token when ``expires_in`` is given; ``grant_type=refresh_token`` gives the next token. Tokens
it issued are checked on every call (``token_expired``, ``token_revoked``) and ``auth.test`` answers for
their workspace; ``expire(token)`` and ``revoke(key)`` play Slack expiring or revoking them. Any token
it did not issue is accepted, as before.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

from aiohttp import web

T = TypeVar("T")
Outcome = Literal["ok", "hang", "ratelimited", "server_error", "slack_error"]
_JSON_ARGS = frozenset({"blocks", "attachments", "metadata", "view"})


@dataclass(frozen=True)
class RateLimited:
    retry_after: int = 1


@dataclass(frozen=True)
class ServerError:
    status: int = 500


@dataclass(frozen=True)
class SlackError:
    error: str


@dataclass(frozen=True)
class Hang:
    seconds: float


Failure = RateLimited | ServerError | SlackError | Hang


@dataclass(frozen=True)
class Call:
    method: str
    args: dict[str, Any]
    token: str | None
    outcome: Outcome
    at: float = field(default_factory=time.monotonic)
    answer: dict[str, Any] = field(default_factory=dict, repr=False)  # what Slack answered (ok calls)

    @property
    def delivered(self) -> bool:
        """Whether Slack would have carried the call out (answered normally, possibly late)."""
        return self.outcome in ("ok", "hang")


@dataclass
class Issued:
    """A bot token this Slack issued through ``oauth.v2.access``."""

    team_id: str | None
    enterprise_id: str | None
    org_wide: bool
    refresh_token: str | None = None
    expires_at: float | None = None
    revoked: bool = False

    @property
    def key(self) -> str:
        """The workspace's team id, or the enterprise id of an org-wide install."""
        return str(self.enterprise_id if self.org_wide else self.team_id)


@dataclass(frozen=True)
class Grant:
    """A user's approval of an install, waiting for ``oauth.v2.access`` to trade its code."""

    team_id: str | None
    user_id: str
    enterprise_id: str | None = None
    org_wide: bool = False
    name: str = "Fake"
    expires_in: int | None = None  # seconds: the app has token rotation on


@dataclass(frozen=True)
class Response:
    name: str
    body: dict[str, Any] = field(repr=False)
    at: float = field(default_factory=time.monotonic)


class FakeSlack:
    """The Slack stand-in; use as `async with FakeSlack() as slack:`."""

    def __init__(
        self, *, team_id: str = "T0001", bot_user_id: str = "UKEYBOT", bot_id: str = "BKEYBOT"
    ) -> None:
        self.team_id, self.bot_user_id, self.bot_id = team_id, bot_user_id, bot_id
        self.calls: list[Call] = []
        self.responses: list[Response] = []
        self.users: dict[str, str] = {}
        self.admins: set[str] = set()  # workspace admins, as users.list answers (``is_admin``)
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # posted messages by (channel, ts), as updated
        self._failures: defaultdict[str, deque[Failure]] = defaultdict(deque)
        self._changed = asyncio.Condition()
        self._closing = asyncio.Event()
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._base = ""
        self.client_id, self.client_secret = "1234.5678", "fake-client-secret"
        self.grants: dict[str, Grant] = {}
        self.issued: dict[str, Issued] = {}  # bot tokens by token
        self._refresh: dict[str, str] = {}  # refresh token -> the access token it was issued with
        self._serial = itertools.count(1)

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{name}", self._respond)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self._base = f"http://{host}:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def api_url(self) -> str:
        """Base URL for `AsyncWebClient(base_url=...)`, ending in `/api/`."""
        return f"{self._base}/api/"

    def response_url(self, name: str) -> str:
        """A `response_url` on this server; posts to it are recorded as `Response(name, ...)`."""
        return f"{self._base}/respond/{name}"

    def grant(self, code: str, grant: Grant) -> None:
        """A user approved installing the app: ``code`` is what Slack's redirect carries back."""
        self.grants[code] = grant

    def expire(self, token: str) -> None:
        """Slack considers ``token`` expired from now on (its refresh token still works)."""
        self.issued[token].expires_at = time.time() - 1

    def revoke(self, key: str) -> None:
        """Revoke every token of a workspace (or of an org-wide install, by enterprise id)."""
        for issued in self.issued.values():
            if issued.key == key:
                issued.revoked = True

    def tokens_of(self, key: str) -> list[str]:
        """The tokens issued for a workspace (or org-wide install), oldest first."""
        return [token for token, issued in self.issued.items() if issued.key == key]

    def fail_next(self, method: str, *responses: Failure) -> None:
        """Answer the next calls to `method` with `responses`, in order, then behave normally."""
        self._failures[method].extend(responses)

    def calls_to(self, method: str) -> list[Call]:
        """Every recorded call to `method` (e.g. "chat.postMessage"), failed attempts included."""
        return [call for call in self.calls if call.method == method]

    def dms_to(self, user_id: str) -> list[Call]:
        """Delivered `chat.postMessage` calls to the user's id or to its DM channel ("D" + id)."""
        channels = {user_id, f"D{user_id}"}
        return [
            call
            for call in self.calls_to("chat.postMessage")
            if call.delivered and call.args.get("channel") in channels
        ]

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        """A posted message (``text``, ``blocks``) as it reads now, after any ``chat.update``."""
        return self.messages[(channel, ts)]

    def updates_of(self, channel: str, ts: str) -> list[Call]:
        """Delivered ``chat.update`` calls to the message ``ts`` in ``channel``."""
        return [
            call
            for call in self.calls_to("chat.update")
            if call.delivered and (call.args.get("channel"), call.args.get("ts")) == (channel, ts)
        ]

    def responses_to(self, name: str) -> list[Response]:
        """Every JSON body posted to `response_url(name)`."""
        return [response for response in self.responses if response.name == name]

    async def wait_for(
        self,
        predicate: Callable[[FakeSlack], T],
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> T:
        """Wait until `predicate(self)` is truthy and return its value; TimeoutError otherwise."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                return await self._changed.wait_for(lambda: predicate(self))
        except TimeoutError:
            seen = ", ".join(f"{c.method}({c.outcome})" for c in self.calls) or "none"
            raise TimeoutError(
                f"FakeSlack: condition still false after {timeout}s; calls: {seen}; "
                f"responses: {[r.name for r in self.responses] or 'none'}"
            ) from None

    async def _record(self, item: Call | Response) -> None:
        async with self._changed:
            if isinstance(item, Call):
                self.calls.append(item)
            else:
                self.responses.append(item)
            self._changed.notify_all()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _parse_args(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ") or None
        token = token or args.pop("token", None)
        failure = self._failures[method].popleft() if self._failures[method] else None
        match failure:
            case RateLimited(retry_after=seconds):
                await self._record(Call(method, args, token, "ratelimited"))
                return web.json_response(
                    {"ok": False, "error": "ratelimited"},
                    status=429,
                    headers={"Retry-After": str(seconds)},
                )
            case ServerError(status=status):
                await self._record(Call(method, args, token, "server_error"))
                return web.Response(status=status, text="Slack is having trouble")
            case SlackError(error=error):
                await self._record(Call(method, args, token, "slack_error"))
                return web.json_response({"ok": False, "error": error})
            case Hang(seconds=seconds):
                await self._record(Call(method, args, token, "hang"))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), seconds)
            case None:
                answer = self._oauth(args, request.headers.get("Authorization", "")) if method == "oauth.v2.access" else None
                answer = answer or self._refused(token) or self._answer(method, args, token)
                if answer.get("ok") is False:
                    await self._record(Call(method, args, token, "slack_error", answer=answer))
                    return web.json_response(answer)
                await self._record(Call(method, args, token, "ok", answer=answer))
                return web.json_response({"ok": True, **answer})
        return web.json_response({"ok": True, **self._answer(method, args, token)})

    def _refused(self, token: str | None) -> dict[str, Any] | None:
        issued = self.issued.get(token or "")
        if issued is None:
            return None
        if issued.revoked:
            return {"ok": False, "error": "token_revoked"}
        if issued.expires_at is not None and issued.expires_at <= time.time():
            return {"ok": False, "error": "token_expired"}
        return None

    def _oauth(self, args: dict[str, Any], authorization: str) -> dict[str, Any]:
        """``oauth.v2.access``: a granted code (once), or a refresh token (``grant_type=refresh_token``)."""
        client = (str(args.get("client_id", "")), str(args.get("client_secret", "")))
        if authorization.startswith("Basic "):
            with contextlib.suppress(ValueError):
                client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
                client = (client_id, secret)
        if client != (self.client_id, self.client_secret):
            return {"ok": False, "error": "invalid_client_id"}
        if args.get("grant_type") == "refresh_token":
            old = self._refresh.pop(str(args.get("refresh_token", "")), None)
            if old is None:
                return {"ok": False, "error": "invalid_refresh_token"}
            before = self.issued[old]
            grant = Grant(before.team_id, "", before.enterprise_id, before.org_wide, expires_in=43200)
            return self._issue(grant)
        grant_ = self.grants.pop(str(args.get("code", "")), None)
        if grant_ is None:
            return {"ok": False, "error": "invalid_code"}
        return self._issue(grant_)

    def _issue(self, grant: Grant) -> dict[str, Any]:
        n = next(self._serial)
        key = grant.enterprise_id if grant.org_wide else grant.team_id
        token = f"xoxb-{key}-{n}"
        issued = Issued(grant.team_id, grant.enterprise_id, grant.org_wide)
        answer: dict[str, Any] = {
            "ok": True,
            "access_token": token,
            "token_type": "bot",
            "scope": "commands,chat:write",
            "bot_user_id": self.bot_user_id,
            "app_id": "AKEYBOT",
            "team": None if grant.org_wide else {"id": grant.team_id, "name": grant.name},
            "enterprise": {"id": grant.enterprise_id, "name": grant.name} if grant.enterprise_id else None,
            "is_enterprise_install": grant.org_wide,
            "authed_user": {"id": grant.user_id},
        }
        if grant.expires_in is not None:
            refresh = f"xoxe-1-{key}-{n}"
            issued.refresh_token, issued.expires_at = refresh, time.time() + grant.expires_in
            self._refresh[refresh] = token
            answer |= {"refresh_token": refresh, "expires_in": grant.expires_in}
        self.issued[token] = issued
        return answer

    def _answer(self, method: str, args: dict[str, Any], token: str | None = None) -> dict[str, Any]:
        issued = self.issued.get(token or "")
        match method:
            case "auth.test":
                if issued is not None:
                    return {
                        "url": "https://fake.slack.com/",
                        "team": "Fake",
                        "user": "keybot",
                        "team_id": issued.team_id,
                        "enterprise_id": issued.enterprise_id,
                        "is_enterprise_install": issued.org_wide,
                        "user_id": self.bot_user_id,
                        "bot_id": f"B{issued.key}",
                    }
                return {
                    "url": "https://fake.slack.com/",
                    "team": "Fake",
                    "user": "keybot",
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "bot_id": self.bot_id,
                }
            case "chat.postMessage":
                channel = _dm_channel(str(args.get("channel", "")))
                ts = f"{int(time.time())}.{next(self._ts):06d}"
                message = {"type": "message", "text": args.get("text", ""), "ts": ts}
                if "blocks" in args:
                    message["blocks"] = args["blocks"]
                self.messages[(channel, ts)] = message
                return {"channel": channel, "ts": ts, "message": message}
            case "chat.update":
                key = (str(args.get("channel", "")), str(args.get("ts", "")))
                if key not in self.messages:
                    return {"ok": False, "error": "message_not_found"}
                updated = {**self.messages[key], "text": args.get("text", "")}
                if "blocks" in args:
                    updated["blocks"] = args["blocks"]
                self.messages[key] = updated
                return {"channel": key[0], "ts": key[1], "text": updated["text"]}
            case "chat.postEphemeral":
                return {"message_ts": f"{int(time.time())}.{next(self._ts):06d}"}
            case "chat.getPermalink":
                channel, ts = str(args.get("channel", "")), str(args.get("message_ts", ""))
                return {"channel": channel, "permalink": f"https://fake.slack.com/archives/{channel}/p{ts.replace('.', '')}"}
            case "users.list":
                members = [
                    {"id": user_id, "team_id": self.team_id, "name": user_id.lower(), "deleted": False,
                     "is_bot": False, "is_admin": user_id in self.admins, "is_owner": False}
                    for user_id in sorted({*self.users, *self.admins})
                ]
                return {"members": members, "response_metadata": {"next_cursor": ""}}
            case "views.open" | "views.update" | "views.publish":
                view: dict[str, Any] = args["view"] if isinstance(args.get("view"), dict) else {}
                home = f"VHOME{args['user_id']}" if method == "views.publish" and args.get("user_id") else None
                view_id = str(args.get("view_id") or home or f"V{next(self._ts):08d}")
                return {"view": {**view, "id": view_id, "team_id": self.team_id, "state": {"values": {}}}}
            case "conversations.open":
                user = str(args.get("users", "")).split(",")[0]
                return {"channel": {"id": _dm_channel(user)}}
            case "users.info":
                user_id = str(args.get("user", ""))
                name = self.users.get(user_id, user_id.lower())
                return {
                    "user": {
                        "id": user_id,
                        "team_id": self.team_id,
                        "name": user_id.lower(),
                        "real_name": name,
                        "profile": {"real_name": name, "display_name": name},
                        "is_bot": False,
                        "deleted": False,
                    }
                }
        return {}

    async def _respond(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload")
        await self._record(Response(request.match_info["name"], body))
        return web.Response(text="ok")


async def _parse_args(request: web.Request) -> dict[str, Any]:
    args: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            args.update(body)
    elif request.can_read_body:
        args.update((k, v) for k, v in (await request.post()).items() if isinstance(v, str))
    for key in _JSON_ARGS & args.keys():
        if isinstance(args[key], str) and args[key][:1] in ("[", "{"):
            with contextlib.suppress(ValueError):
                args[key] = json.loads(args[key])
    return args


def _dm_channel(channel: str) -> str:
    return f"D{channel}" if channel[:1] in ("U", "W") else channel

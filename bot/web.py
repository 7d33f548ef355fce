"""The HTTP surface: ``POST /slack/events`` (Bolt), ``POST /v1/keys/verify``, ``GET /healthz``, and with
OAuth (many workspaces) Bolt's ``GET /slack/install`` and ``GET /slack/oauth_redirect``."""

import json
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.payload_utils import (
    to_action,
    to_command,
    to_event,
    to_message,
    to_options,
    to_shortcut,
    to_step,
    to_view,
)
from slack_sdk.signature import SignatureVerifier

from bot.domain.errors import Busy, Unavailable
from bot.observability import RAW_BODY
from bot.ports import Health
from bot.services.verification import MALFORMED, Verifier

log = logging.getLogger("keybot.web")
MAX_BODY = 64 * 1024  # any request, unless its route reads its body with ``read_at_most``
# Slack events: a 40,000-character message with its rich-text copy in ``blocks`` and attachments
# runs past 64 KiB, and an event refused is a message never scanned for keys.
MAX_EVENT_BODY = 1024 * 1024


class TooLarge(Exception):
    """A request body over its route's limit."""


async def read_at_most(request: web.Request, limit: int) -> bytes:
    """The body of ``request``, read as it streams in; TooLarge past ``limit`` bytes (nothing more is read)."""
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"body over {limit} bytes")
    chunks, size = [], 0
    while chunk := await request.content.read(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"body over {limit} bytes")
        chunks.append(chunk)
    body = request[RAW_BODY] = b"".join(chunks)  # for the metrics' labels: request.read() is empty now
    return body


class MalformedRequest(ValueError):
    """A body no Slack request has; answered 400 before Bolt sees it."""


class UnservedRequest(LookupError):
    """A well-formed request of a kind keybot does not serve (events, shortcuts, views); answered 404."""


def _parse_body(raw: str, content_type: str | None) -> dict[str, Any]:
    """Parse a body as Slack sends it: JSON, a form, or a form with ``payload=<JSON object>``."""
    try:
        if content_type == "application/json" or raw.startswith("{"):
            body = json.loads(raw)
        else:
            fields = dict(parse_qsl(raw, keep_blank_values=True))
            body = json.loads(fields["payload"]) if "payload" in fields else fields
    except (ValueError, RecursionError):
        raise MalformedRequest("body is neither a form nor a JSON object") from None
    if not isinstance(body, dict):
        raise MalformedRequest("body is not a JSON object")
    return body


def _served(body: dict[str, Any]) -> bool:
    """Whether ``body`` is a kind keybot serves: a slash command, a button click, or Slack's checks."""
    if "ssl_check" in body or body.get("type") == "url_verification":
        return True
    if "view" in body and not isinstance(body["view"], dict):  # Bolt's unhandled-request log reads view.get
        raise MalformedRequest("view is not an object")
    if body.get("type") == "block_actions":
        actions = body.get("actions")
        if not (isinstance(actions, list) and actions and isinstance(actions[0], dict)):
            raise MalformedRequest("block_actions without actions")
        if not isinstance(actions[0].get("action_id"), str):
            raise MalformedRequest("action without an action_id")
        return True
    if "command" in body:
        if not isinstance(body["command"], str):
            raise MalformedRequest("command is not a string")
        return True
    return _served_surface(body)


# The kinds of App Home and modal requests keybot serves (bot/slack/views.py), by payload type.
SURFACE_TYPES = frozenset({"event_callback", "shortcut", "view_submission", "view_closed", "block_suggestion"})
SERVED_EVENTS = frozenset({"app_home_opened", "app_uninstalled", "tokens_revoked", "message", "user_change"})


def _served_surface(body: dict[str, Any]) -> bool:
    """Events (``app_home_opened``, ``message``, ``user_change``), global shortcuts, modal submissions and closings, and menu
    suggestions, with the fields Bolt indexes into checked first."""
    kind = body.get("type")
    if not isinstance(kind, str) or kind not in SURFACE_TYPES:
        return False
    if kind == "event_callback":
        event = body.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise MalformedRequest("event_callback without an event type")
        user = event.get("user", "")
        if event["type"] == "user_change":
            if not isinstance(user, dict) or not isinstance(user.get("id"), str):
                raise MalformedRequest("user_change without a user id")
        elif not isinstance(user, str):
            raise MalformedRequest("event with a malformed user")
        if not isinstance(body.get("team_id", ""), str):
            raise MalformedRequest("event with a malformed team")
        return event["type"] in SERVED_EVENTS
    user, team = body.get("user"), body.get("team")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str):
        raise MalformedRequest(f"{kind} without a user id")
    if team is not None and not (isinstance(team, dict) and isinstance(team.get("id", ""), str)):
        raise MalformedRequest(f"{kind} with a malformed team")
    if kind == "shortcut":
        if not isinstance(body.get("callback_id"), str) or not isinstance(body.get("trigger_id"), str):
            raise MalformedRequest("shortcut without a callback_id or trigger_id")
    elif kind == "block_suggestion":
        if not isinstance(body.get("action_id"), str) or not isinstance(body.get("value", ""), str):
            raise MalformedRequest("block_suggestion without an action_id")
    else:
        view = body.get("view")
        if not isinstance(view, dict) or not isinstance(view.get("callback_id"), str):
            raise MalformedRequest(f"{kind} without a view callback_id")
        if not isinstance(view.get("state", {}), dict) or not isinstance(view.get("private_metadata", ""), str):
            raise MalformedRequest(f"{kind} with a malformed view")
    return True


def bolt_request(raw: str, *, headers: dict[str, str | Sequence[str]], query: str) -> AsyncBoltRequest:
    """A Bolt request from raw HTTP. Raises MalformedRequest for a body no Slack request has, and
    UnservedRequest for a kind of request keybot has no listener for (Bolt would answer 404).

    Parses the body itself because slack-bolt's ``parse_body`` treats any form body containing the
    substring ``payload`` as an interaction payload (a slash command whose text says "payload" would
    get a 404), and because Bolt indexes into bodies without type checks (``"id" in body["user"]``,
    ``body["actions"][0]["action_id"]``, ``body.get("event", {}).get(...)``): a malformed body would
    otherwise be a 500. The signature is still checked by Bolt, on the raw body."""
    request = AsyncBoltRequest(body="", query=query, headers=headers)
    body = _parse_body(raw, request.content_type)
    if ("event" in body and body.get("type") != "event_callback") or not _served(body):
        raise UnservedRequest("no listener for this kind of request")
    try:
        context = build_async_context(AsyncBoltContext({}), body)
        for extract in (
            to_options,
            to_shortcut,
            to_action,
            to_view,
            to_command,
            to_event,
            to_message,
            to_step,
        ):
            extract(body)
    except (LookupError, TypeError, AttributeError, ValueError) as err:
        raise MalformedRequest(f"unexpected shape ({type(err).__name__})") from None
    request.raw_body, request.body, request.context = raw, body, context
    return request


def _signed(signature: SignatureVerifier, raw: str, headers: Mapping[str, str]) -> bool:
    """Slack's signature check, with any malformed header (a timestamp that is not a number, a
    signature that is not ASCII) counted as a bad signature instead of an exception."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    given = headers.get("X-Slack-Signature", "")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12 and given.isascii()):
        return False
    try:
        return signature.is_valid(body=raw, timestamp=timestamp, signature=given)
    except (ValueError, TypeError, OverflowError):
        return False


def add_install_pages(app: web.Application, flow: AsyncOAuthFlow) -> None:
    """Bolt's OAuth flow on ``GET /slack/install`` (the "Add to Slack" page, with a one-use ``state``
    in the database and in a cookie) and ``GET /slack/oauth_redirect`` (checks both, exchanges the code
    with ``oauth.v2.access``, stores the installation). Slack's signature does not apply: these are a
    browser's requests."""

    async def install(request: web.Request) -> web.Response:
        bolt_req = AsyncBoltRequest(body="", query=request.query_string, headers=dict(request.headers))
        return await to_aiohttp_response(await flow.handle_installation(bolt_req))

    async def redirect(request: web.Request) -> web.Response:
        bolt_req = AsyncBoltRequest(body="", query=request.query_string, headers=dict(request.headers))
        return await to_aiohttp_response(await flow.handle_callback(bolt_req))

    app.router.add_get(flow.install_path, install)
    app.router.add_get(flow.redirect_uri_path, redirect)
def message_event(raw: str) -> dict[str, Any] | None:
    """The body of a ``message`` event (any subtype), or None for any other request. Messages are most
    of what Slack sends a bot in busy channels: they skip Bolt's dispatch (and its middleware) and go
    straight to the leak watch, which costs an ordinary one a regex scan (bot/slack/events.py)."""
    if '"event_callback"' not in raw:
        return None
    try:
        body: Any = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(body, dict) or body.get("type") != "event_callback":
        return None
    event = body.get("event")
    if not isinstance(event, dict) or event.get("type") != "message":
        return None
    message: dict[str, Any] = body
    return message


def _json(data: dict[str, Any], *, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, separators=(",", ":")))


def create_web_app(
    *,
    health: Health,
    verifier: Verifier,
    bolt: AsyncApp | None,
    verify_token: str | None,
    signing_secret: str | None = None,
    on_message: Callable[[dict[str, Any]], None] | None = None,
) -> web.Application:
    """The aiohttp application. ``bolt`` is None in Socket Mode (Slack events arrive over the socket).
    ``on_message`` takes ``message`` events (signed) without Bolt (``message_event``).

    With a ``signing_secret``, ``/slack/events`` checks Slack's signature (and its 5-minute window)
    before it even parses the body, so an unsigned request learns nothing but 401."""
    app = web.Application(client_max_size=MAX_BODY)
    expected_auth = f"Bearer {verify_token}".encode() if verify_token else None
    signature = SignatureVerifier(signing_secret) if signing_secret else None

    async def slack_events(request: web.Request) -> web.Response:
        assert bolt is not None
        try:
            raw = (await read_at_most(request, MAX_EVENT_BODY)).decode()
        except TooLarge as err:
            log.info("refused a request to /slack/events: %s", err)
            return _json({"error": "request body too large"}, status=413)
        except UnicodeDecodeError:
            return _json({"error": "malformed request"}, status=400)
        if signature is not None and not _signed(signature, raw, request.headers):
            log.info("refused a request to /slack/events with a missing or invalid signature")
            return _json({"error": "invalid request signature"}, status=401)
        if on_message is not None and (message := message_event(raw)) is not None:
            try:
                on_message(message)
            except Exception as err:  # a shape no Slack message has: acked, so Slack does not resend it
                log.warning("ignored a message event keybot could not read (%s)", type(err).__name__)
            return web.Response(status=200)
        try:
            headers: dict[str, str | Sequence[str]] = dict(request.headers)
            bolt_req = bolt_request(raw, headers=headers, query=request.query_string)
        except MalformedRequest as err:
            log.info("refused a malformed request to /slack/events: %s", err)
            return _json({"error": "malformed request"}, status=400)
        except UnservedRequest:
            return _json({"error": "unhandled request"}, status=404)
        return await to_aiohttp_response(await bolt.async_dispatch(bolt_req))

    async def verify(request: web.Request) -> web.Response:
        if expected_auth is not None:
            given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
            if not secrets.compare_digest(given, expected_auth):
                return _json({"error": "missing or wrong bearer token"}, status=401)
        try:
            data = json.loads(await request.read())
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            return _json({"error": 'body must be JSON: {"key": "..."}'}, status=400)
        if not isinstance(data, dict) or "key" not in data:
            return _json({"error": 'body must be JSON: {"key": "..."}'}, status=400)
        key = data["key"]
        if not isinstance(key, str):  # a key that is not even a string: malformed, no database query
            return _json(MALFORMED.as_json())
        try:
            verdict = await verifier.verify(key)
        except Busy as err:  # argon2's verify lane is full: say when to come back instead of queueing
            busy = {"error": "busy verifying other keys; retry later", "retry_after": err.retry_after}
            response = _json(busy, status=503)
            response.headers["Retry-After"] = str(err.retry_after)
            return response
        except Unavailable:
            return _json({"error": "key database unavailable; retry"}, status=503)
        return _json(verdict.as_json())

    async def healthz(request: web.Request) -> web.Response:
        try:
            backlog = await health.pending_notifications()
            dead = await health.dead_notifications()  # refused by Slack for good: `keybot outbox`
        except Unavailable:
            return _json({"status": "unavailable", "database": "unreachable"}, status=503)
        return _json({"status": "ok", "database": "ok", "outbox_pending": backlog, "outbox_dead": dead})

    if bolt is not None:
        app.router.add_post("/slack/events", slack_events)
    if bolt is not None and bolt.oauth_flow is not None:
        add_install_pages(app, bolt.oauth_flow)
    app.router.add_post("/v1/keys/verify", verify)
    app.router.add_get("/healthz", healthz)
    return app

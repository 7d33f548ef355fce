"""The HTTP surface: ``POST /slack/events`` (Bolt), ``POST /v1/keys/verify``, ``GET /healthz``."""

import json
import logging
import secrets
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.domain.errors import Unavailable
from bot.ports import Store
from bot.verification import Verifier

log = logging.getLogger("keybot.web")
MAX_BODY = 64 * 1024
FORM = "application/x-www-form-urlencoded"


def bolt_request(raw: str, *, headers: dict[str, str | Sequence[str]], query: str) -> AsyncBoltRequest:
    """A Bolt request from raw HTTP. Fixes slack-bolt's ``parse_body``, which treats any form body
    containing the substring ``payload`` as an interaction payload: a slash command whose text says
    "payload" would otherwise parse to ``{}`` and get a 404."""
    request = AsyncBoltRequest(body=raw, query=query, headers=headers)
    if request.content_type == FORM and not raw.startswith("{"):
        fields = dict(parse_qsl(raw, keep_blank_values=True))
        if "payload" not in fields:
            request.body = fields
            request.context = build_async_context(AsyncBoltContext({}), fields)
    return request


def _json(data: dict[str, Any], *, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, separators=(",", ":")))


def create_web_app(
    *, store: Store, verifier: Verifier, bolt: AsyncApp | None, verify_token: str | None
) -> web.Application:
    """The aiohttp application. ``bolt`` is None in Socket Mode (Slack events arrive over the socket)."""
    app = web.Application(client_max_size=MAX_BODY)
    expected_auth = f"Bearer {verify_token}".encode() if verify_token else None

    async def slack_events(request: web.Request) -> web.Response:
        assert bolt is not None
        raw = await request.text()
        headers: dict[str, str | Sequence[str]] = dict(request.headers)
        bolt_req = bolt_request(raw, headers=headers, query=request.query_string)
        return await to_aiohttp_response(await bolt.async_dispatch(bolt_req))

    async def verify(request: web.Request) -> web.Response:
        if expected_auth is not None:
            given = request.headers.get("Authorization", "").encode()
            if not secrets.compare_digest(given, expected_auth):
                return _json({"error": "missing or wrong bearer token"}, status=401)
        try:
            data = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return _json({"error": 'body must be JSON: {"key": "..."}'}, status=400)
        key = data.get("key") if isinstance(data, dict) else None
        if not isinstance(key, str):
            return _json({"error": 'body must be JSON: {"key": "..."}'}, status=400)
        try:
            verdict = await verifier.verify(key)
        except Unavailable:
            return _json({"error": "key database unavailable; retry"}, status=503)
        return _json(verdict.as_json())

    async def healthz(request: web.Request) -> web.Response:
        try:
            backlog = await store.pending_notifications()
        except Unavailable:
            return _json({"status": "unavailable", "database": "unreachable"}, status=503)
        return _json({"status": "ok", "database": "ok", "outbox_pending": backlog})

    if bolt is not None:
        app.router.add_post("/slack/events", slack_events)
    app.router.add_post("/v1/keys/verify", verify)
    app.router.add_get("/healthz", healthz)
    return app

"""Slack's HTTP wire format for requests Slack sends to an app: signatures and request bodies.

Shared by the e2e tests, the benchmark and `keybot shell`, which drive the real app the way Slack
does: a form-encoded slash command or a `payload=<json>` interaction, signed with the app's signing
secret (https://api.slack.com/authentication/verifying-requests-from-slack).
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

APP_ID = "A0KEYBOT"
TEAM_DOMAIN = "keybot-dev"
VERIFICATION_TOKEN = "fake-verification-token"


def sign(signing_secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """The `X-Slack-Request-Timestamp` and `X-Slack-Signature` (v0, HMAC-SHA256) headers."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=ts, body=body)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": str(signature)}


def slash_command_body(
    *,
    text: str,
    user_id: str,
    team_id: str,
    response_url: str,
    command: str = "/apikeys",
    channel_id: str = "C0123",
    user_name: str | None = None,
    trigger_id: str | None = None,
    enterprise_id: str | None = None,
    is_enterprise_install: bool = False,
) -> bytes:
    """A slash command's form body, with the fields in the order Slack sends them (``enterprise_id``:
    a workspace of an Enterprise Grid org; ``is_enterprise_install``: the app is installed org-wide)."""
    fields = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": _channel_name(channel_id),
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "true" if is_enterprise_install else "false",
        "response_url": response_url,
        "trigger_id": trigger_id or _trigger_id(),
    }
    if enterprise_id is not None:
        fields |= {"enterprise_id": enterprise_id, "enterprise_name": "Grid"}
    return urlencode(fields).encode()


def block_actions_body(
    *,
    user_id: str,
    team_id: str,
    action_id: str,
    value: str,
    response_url: str,
    block_id: str = "b",
    container: dict[str, Any] | None = None,
    is_ephemeral: bool = True,
    channel_id: str = "C0123",
    message: dict[str, Any] | None = None,
    selected_option: dict[str, Any] | None = None,
) -> bytes:
    """The `payload=<json>` body of a button click (or, with ``selected_option``, of a choice in an
    overflow menu); ephemeral messages carry no `message` field."""
    now = f"{time.time():.6f}"
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {
            "id": user_id,
            "username": user_id.lower(),
            "name": user_id.lower(),
            "team_id": team_id,
        },
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "container": container
        or {
            "type": "message",
            "message_ts": now,
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        },
        "trigger_id": _trigger_id(),
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": _channel_name(channel_id)},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "value": value,
                "type": "button",
                "action_ts": now,
            }
            if selected_option is None
            else {
                "action_id": action_id,
                "block_id": block_id,
                "selected_option": selected_option,
                "type": "overflow",
                "action_ts": now,
            }
        ],
        "state": {"values": {}},
    }
    if message is not None:
        payload["message"] = message
    return urlencode({"payload": json.dumps(payload)}).encode()


async def post_signed(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    *,
    signing_secret: str,
    timestamp: int | None = None,
    content_type: str = "application/x-www-form-urlencoded",
) -> tuple[int, str]:
    """Sign `body` and POST it to `url` as Slack would; returns the status and the response text."""
    headers = {"Content-Type": content_type, **sign(signing_secret, body, timestamp=timestamp)}
    async with session.post(url, data=body, headers=headers) as response:
        return response.status, await response.text()


def _channel_name(channel_id: str) -> str:
    return "directmessage" if channel_id.startswith("D") else "general"


def _trigger_id() -> str:
    return f"{secrets.randbelow(10**10)}.{secrets.randbelow(10**10)}.{secrets.token_hex(16)}"


def _user(user_id: str, team_id: str) -> dict[str, Any]:
    return {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": team_id}


def _interaction(payload: dict[str, Any]) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def event_body(
    *, event: dict[str, Any], team_id: str | None, enterprise_id: str | None = None, org_wide: bool = False
) -> bytes:
    """An Events API `event_callback` (JSON), e.g. ``{"type": "app_home_opened", "user": ..., "tab": "home"}``;
    ``org_wide``: for an app installed in a whole Enterprise Grid org (``enterprise_id``)."""
    authorization = {"enterprise_id": enterprise_id, "team_id": None if org_wide else team_id, "user_id": "UKEYBOT",
                     "is_bot": True, "is_enterprise_install": org_wide}
    return json.dumps(
        {
            "token": VERIFICATION_TOKEN,
            "team_id": team_id,
            "api_app_id": APP_ID,
            "event": {"event_ts": f"{time.time():.6f}", **event},
            "type": "event_callback",
            "event_id": f"Ev{secrets.token_hex(5).upper()}",
            "event_time": int(time.time()),
            "authorizations": [authorization],
        }
    ).encode()


def shortcut_body(*, user_id: str, team_id: str, callback_id: str) -> bytes:
    """The `payload=<json>` body of a global shortcut."""
    return _interaction(
        {
            "type": "shortcut",
            "token": VERIFICATION_TOKEN,
            "action_ts": f"{time.time():.6f}",
            "team": {"id": team_id, "domain": TEAM_DOMAIN},
            "user": _user(user_id, team_id),
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": callback_id,
            "trigger_id": _trigger_id(),
        }
    )


def view_body(
    *, kind: str, user_id: str, team_id: str, view: dict[str, Any], values: dict[str, dict[str, Any]] | None = None
) -> bytes:
    """A `view_submission` or `view_closed` of ``view`` (as the app opened it) with ``values`` as its state:
    ``{block_id: {action_id: {"type": ..., "value" | "selected_option": ...}}}``."""
    submitted = {
        "id": f"V{secrets.token_hex(5).upper()}",
        "team_id": team_id,
        "app_id": APP_ID,
        "hash": secrets.token_hex(8),
        "private_metadata": "",
        **view,
        "state": {"values": values or {}},
    }
    payload = {
        "type": kind,
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "user": _user(user_id, team_id),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": _trigger_id(),
        "view": submitted,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    if kind == "view_closed":
        payload["is_cleared"] = False
    return _interaction(payload)


def block_suggestion_body(*, user_id: str, team_id: str, action_id: str, value: str, block_id: str = "b") -> bytes:
    """The `payload=<json>` body of an external_select asking for options matching ``value``."""
    return _interaction(
        {
            "type": "block_suggestion",
            "user": _user(user_id, team_id),
            "team": {"id": team_id, "domain": TEAM_DOMAIN},
            "container": {"type": "view", "view_id": "V0"},
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "action_id": action_id,
            "block_id": block_id,
            "value": value,
            "action_ts": f"{time.time():.6f}",
            "is_enterprise_install": False,
            "enterprise": None,
        }
    )

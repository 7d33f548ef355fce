"""A slash command over Socket Mode gets its reply in the envelope's ack, as over HTTP: the listener hands
Bolt a ready ``BoltResponse`` (JSON written by orjson), which Bolt's Socket Mode adapter turns into the
envelope's payload."""

import json
from time import time
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app, send_async_response
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.shell.wire import slash_command_body
from tests.e2e.conftest import OWNER, TEAM, Harness


class RecordingSocket:
    """The part of a Socket Mode client that Bolt's adapter answers through."""

    def __init__(self, logger: Any) -> None:
        self.logger = logger
        self.responses: list[SocketModeResponse] = []

    async def send_socket_mode_response(self, response: SocketModeResponse) -> None:
        self.responses.append(response)


async def _over_the_socket(h: Harness, text: str) -> dict[str, Any]:
    form = slash_command_body(text=text, user_id=OWNER, team_id=TEAM, response_url=f"{h.base_url}/unused")
    payload = dict(parse_qsl(form.decode(), keep_blank_values=True))
    request = SocketModeRequest(type="slash_commands", envelope_id="env-1", payload=payload)
    socket = RecordingSocket(h.runtime.bolt.logger)
    response = await run_async_bolt_app(h.runtime.bolt, request)
    await send_async_response(socket, request, response, time())  # type: ignore[arg-type]
    [sent] = socket.responses
    assert sent.envelope_id == "env-1"
    assert isinstance(sent.payload, dict), sent.payload
    return sent.payload


async def test_a_list_over_socket_mode_is_acked_with_the_same_page_as_over_http(harness: Harness) -> None:
    await harness.as_owner("project create payments")
    await harness.as_owner("create payments checkout")

    over_socket = await _over_the_socket(harness, "list payments")
    over_http = (await harness.as_owner("list payments")).message

    assert over_socket["response_type"] == "ephemeral"
    assert "checkout" in json.dumps(over_socket["blocks"]) and "default" in json.dumps(over_socket["blocks"])
    assert over_socket == over_http


async def test_an_error_over_socket_mode_is_a_private_reply_in_the_ack(harness: Harness) -> None:
    payload = await _over_the_socket(harness, "list nope")

    assert payload["response_type"] == "ephemeral"
    assert payload["text"].startswith(":warning:") and "nope" in payload["text"]

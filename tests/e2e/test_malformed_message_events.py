"""Message events take their own path past Bolt (``bot.web`` → ``message_event`` → the leak watch):
signed events of shapes Slack never sends are acked or refused, never a 5xx, and a real key in them
is still found when the odd field is not the message's own."""

import json
from typing import Any

import pytest

from bot.shell.wire import post_signed
from tests.e2e.conftest import SIGNING_SECRET, TEAM, Harness

KEYISH = "kb_AAAAAAAAAA_" + "A" * 28  # key-shaped, of no key


def body(event: Any, **top: Any) -> bytes:
    envelope = {
        "token": "x", "team_id": TEAM, "api_app_id": "A0KEYBOT", "type": "event_callback", "event_id": "Ev1",
        "event_time": 1, "event": event,
        "authorizations": [{"enterprise_id": None, "team_id": TEAM, "user_id": "UKEYBOT", "is_bot": True,
                            "is_enterprise_install": False}],
    }  # fmt: skip
    envelope.update(top)
    return json.dumps(envelope).encode()


async def post(h: Harness, payload: bytes) -> tuple[int, str]:
    return await post_signed(
        h.session, h.driver.events_url, payload, signing_secret=SIGNING_SECRET, content_type="application/json"
    )


EVENTS = {
    "subtype a list": {"type": "message", "subtype": [], "channel": "C1", "user": "U1", "text": KEYISH, "ts": "1.1"},
    "subtype an object": {"type": "message", "subtype": {}, "channel": "C1", "user": "U1", "text": "hi", "ts": "1.1"},
    "text a number": {"type": "message", "channel": "C1", "user": "U1", "text": 12345, "ts": "1.1"},
    "user a list": {"type": "message", "channel": "C1", "user": ["x"], "text": KEYISH, "ts": "1.1"},
    "user an object": {"type": "message", "channel": "C1", "user": {"id": "U"}, "text": KEYISH, "ts": "1.1"},
    "edit of a list": {"type": "message", "subtype": "message_changed", "channel": "C1", "message": []},
    "no fields": {"type": "message"},
}


@pytest.mark.parametrize("name", list(EVENTS))
async def test_an_odd_message_event_is_not_a_5xx(harness: Harness, name: str) -> None:
    status, text = await post(harness, body(EVENTS[name]))
    assert status < 500, (status, text)
    await harness.runtime.watch.idle()


ENVELOPES = {
    "bot user id a list": {"authorizations": [{"user_id": ["x"], "is_bot": True}]},
    "bot user id an object": {"authorizations": [{"user_id": {}, "is_bot": True}]},
    "team id a list": {"team_id": ["T"]},
    "app id a list": {"api_app_id": []},
    "enterprise id a list": {"enterprise_id": ["E"]},
    "authorizations a string": {"authorizations": "x"},
    "authorizations of strings": {"authorizations": ["x"]},
}


@pytest.mark.parametrize("name", list(ENVELOPES))
async def test_an_odd_envelope_around_a_message_is_not_a_5xx(harness: Harness, name: str) -> None:
    event = {"type": "message", "channel": "C1", "user": "U1", "text": KEYISH, "ts": "1.1"}
    status, text = await post(harness, body(event, **ENVELOPES[name]))
    assert status < 500, (status, text)
    await harness.runtime.watch.idle()

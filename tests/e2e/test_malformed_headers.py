"""Malformed authentication headers, sent byte for byte over a raw TCP connection: a timestamp that is
not a number or has 5,000 digits, a signature that is not ASCII, a bearer token that is not UTF-8.
Each is refused with 401 and one log line, never a 500 or a traceback."""

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.shell.fakeslack import FakeSlack
from bot.shell.wire import sign, slash_command_body
from tests.e2e.conftest import OWNER, SIGNING_SECRET, TEAM, e2e_settings
from tests.e2e.rawhttp import raw_post, serving

VERIFY_TOKEN = "verify-token-for-header-tests"


@pytest.fixture
async def port(tmp_path: Path, slack: FakeSlack) -> AsyncIterator[int]:
    """A keybot with a verify token, serving on a free port."""
    async with serving(e2e_settings(slack, tmp_path / "keybot.db", verify_token=VERIFY_TOKEN)) as free_port:
        yield free_port


def slack_headers(body: bytes) -> dict[str, bytes]:
    return {name: value.encode() for name, value in sign(SIGNING_SECRET, body).items()}


def command() -> bytes:
    return slash_command_body(text="projects", user_id=OWNER, team_id=TEAM, response_url="http://127.0.0.1:9/r")


SLACK_CASES = {
    "timestamp abc": {"X-Slack-Request-Timestamp": b"abc"},
    "timestamp of 5,000 digits": {"X-Slack-Request-Timestamp": b"1" * 5000},
    "timestamp with a sign": {"X-Slack-Request-Timestamp": b"-1"},
    "timestamp in Arabic-Indic digits": {"X-Slack-Request-Timestamp": "١٧٠٠٠٠٠٠٠٠".encode()},
    "signature v0=é in UTF-8": {"X-Slack-Signature": "v0=é".encode()},
    "signature v0=é in Latin-1": {"X-Slack-Signature": b"v0=\xe9"},
    "signature of raw bytes": {"X-Slack-Signature": b"v0=\xff\xfe"},
    "no signature": {"X-Slack-Signature": b""},
}


@pytest.mark.parametrize("case", list(SLACK_CASES))
async def test_a_slack_request_with_a_malformed_signature_header_gets_401_and_one_log_line(
    port: int, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    caplog.set_level(logging.DEBUG)
    body = command()
    headers = {**slack_headers(body), "Content-Type": b"application/x-www-form-urlencoded", **SLACK_CASES[case]}

    status, rest = await raw_post(port, "/slack/events", list(headers.items()), body)

    assert status == 401, rest
    assert b"Traceback" not in rest
    assert "Traceback" not in caplog.text
    assert [r.levelno for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []
    refused = [r.getMessage() for r in caplog.records if r.name == "keybot.web"]
    assert len(refused) == 1 and "signature" in refused[0], refused


async def test_a_well_signed_slack_request_over_the_same_raw_connection_is_served(port: int) -> None:
    body = command()
    headers = {**slack_headers(body), "Content-Type": b"application/x-www-form-urlencoded"}

    status, rest = await raw_post(port, "/slack/events", list(headers.items()), body)

    assert status == 200, rest  # so the 401s above are the headers' doing, not the harness's


@pytest.mark.parametrize(
    "authorization",
    [b"Bearer \xff\xfe", "Bearer é".encode(), b"Bearer \xe9", b"\xff", b"Bearer " + b"\x80" * 4000],
)
async def test_a_verify_request_with_a_bearer_token_that_is_not_utf8_gets_401(
    port: int, caplog: pytest.LogCaptureFixture, authorization: bytes
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = [("Authorization", authorization), ("Content-Type", b"application/json")]

    status, rest = await raw_post(port, "/v1/keys/verify", headers, b'{"key": "kb_x"}')

    assert status == 401, rest
    assert b"missing or wrong bearer token" in rest
    assert "Traceback" not in caplog.text
    assert [r.levelno for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []


async def test_the_right_bearer_token_over_the_same_raw_connection_is_let_through(port: int) -> None:
    headers = [("Authorization", f"Bearer {VERIFY_TOKEN}".encode()), ("Content-Type", b"application/json")]

    status, rest = await raw_post(port, "/v1/keys/verify", headers, b'{"key": "kb_x"}')

    assert status == 200, rest

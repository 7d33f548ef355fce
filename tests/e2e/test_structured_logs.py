"""``KEYBOT_LOG_FORMAT=json``: one JSON object per line, and a request id that follows a command from
its receipt to the DM it caused."""

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.domain.tracing import REQUEST_ID
from bot.logs import JsonFormatter, formatter
from bot.settings import SettingsError, load_settings
from tests.e2e.conftest import Harness

SECOND = "USECOND01"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Everything logged at INFO and above meanwhile, formatted as KEYBOT_LOG_FORMAT=json does."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter("json"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


async def test_the_dm_a_command_caused_is_logged_with_that_commands_request_id(
    harness: Harness, json_log: io.StringIO
) -> None:
    await harness.as_owner("project create payments")
    await harness.as_owner(f"grant <@{SECOND}> member")  # SECOND gets a DM about it
    await harness.outbox_drained()

    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert lines and all(set(line) >= {"timestamp", "level", "logger", "message", "request_id"} for line in lines)
    [grant] = [line for line in lines if line["message"].startswith("command grant answered 200")]
    [project] = [line for line in lines if line["message"].startswith("command project answered 200")]
    assert grant["request_id"] and project["request_id"] and grant["request_id"] != project["request_id"]
    sent = [line for line in lines if line["message"].startswith("outbox: DM ") and line["message"].endswith(" sent")]
    assert [line["request_id"] for line in sent] == [grant["request_id"]]
    assert [c.args["channel"] for c in harness.slack.calls_to("chat.postMessage")] == [SECOND]


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    return logging.LogRecord("keybot.test", logging.WARNING, __file__, 1, message, args, exc_info)


def test_a_json_line_holds_the_fields_and_the_request_id_in_effect() -> None:
    token = REQUEST_ID.set("abc-1")
    try:
        line = JsonFormatter().format(record("DM %s not sent", 7))
    finally:
        REQUEST_ID.reset(token)
    data = json.loads(line)
    assert data["message"] == "DM 7 not sent"
    assert (data["level"], data["logger"], data["request_id"]) == ("WARNING", "keybot.test", "abc-1")
    assert data["timestamp"].endswith("+00:00")


def test_a_multi_line_message_and_a_traceback_stay_on_one_line() -> None:
    line = JsonFormatter().format(record("first\nsecond", exc=True))
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "first\nsecond"
    assert "ValueError: boom" in data["exception"]
    assert data["request_id"] is None


def test_the_text_format_stays_the_default() -> None:
    assert load_settings({}).log_format == "text"
    assert load_settings({"KEYBOT_LOG_FORMAT": "JSON"}).log_format == "json"
    assert not isinstance(formatter("text"), JsonFormatter)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"KEYBOT_LOG_FORMAT": "yaml"}, "KEYBOT_LOG_FORMAT"),
        ({"KEYBOT_METRICS": "maybe"}, "KEYBOT_METRICS"),
        ({"KEYBOT_METRICS_PORT": "http"}, "KEYBOT_METRICS_PORT"),
        ({"KEYBOT_METRICS_PORT": "70000"}, "KEYBOT_METRICS_PORT"),
    ],
)
def test_a_wrong_observability_setting_is_one_clear_line(env: dict[str, str], says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        load_settings(env)


def test_the_metrics_settings_are_read() -> None:
    settings = load_settings({"KEYBOT_METRICS": "off", "KEYBOT_METRICS_PORT": "9464"})
    assert (settings.metrics, settings.metrics_port) == (False, 9464)
    assert (load_settings({}).metrics, load_settings({}).metrics_port) == (True, None)

"""The operator's view: `keybot bootstrap`, `keybot serve`, `keybot db upgrade` as real processes."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

KEYBOT = [sys.executable, "-m", "bot.cli"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "KEYBOT_", "DATABASE_URL"))}
    env.update(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'kb.db'}", KEYBOT_ARGON2_PROFILE="cheapest")
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KEYBOT, *args], env=env, capture_output=True, text=True, timeout=60)


def test_bootstrap_is_idempotent(tmp_path: Path) -> None:
    env = _env(tmp_path)
    first = _run(["bootstrap", "--team-id", "T0001", "--owner", "U0001", "--org", "Acme"], env)
    second = _run(["bootstrap", "--team-id", "T0001", "--owner", "U0001", "--org", "Acme"], env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "is ready" in first.stdout
    assert "Nothing to do" in second.stdout


def test_bootstrap_rejects_ids_that_are_not_slack_ids(tmp_path: Path) -> None:
    result = _run(["bootstrap", "--team-id", "acme", "--owner", "U0001"], _env(tmp_path))
    assert result.returncode == 2
    assert "--team-id" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("env_extra", "expected"),
    [
        ({}, "SLACK_BOT_TOKEN is not set"),
        ({"SLACK_BOT_TOKEN": "nope"}, "SLACK_BOT_TOKEN must be a bot token"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET is not set"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "bad"}, "SLACK_APP_TOKEN must be"),
        (
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "PORT": "http"},
            "PORT must be a whole number",
        ),
        (
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "DATABASE_URL": "mysql://x"},
            "DATABASE_URL must",
        ),
    ],
)
def test_serve_with_a_missing_or_malformed_setting_stops_with_one_clear_line(
    tmp_path: Path, env_extra: dict[str, str], expected: str
) -> None:
    result = _run(["serve"], _env(tmp_path, **env_extra))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]


def test_serve_with_an_unreachable_database_stops_with_one_clear_line(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_SIGNING_SECRET="s",
        DATABASE_URL=f"postgresql+asyncpg://postgres:hunter2@127.0.0.1:{_free_port()}/nope",
    )
    result = _run(["serve"], env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "cannot reach the database" in lines[0]
    assert "hunter2" not in result.stderr


def test_serve_answers_healthz_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    env = _env(
        tmp_path,
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_SIGNING_SECRET="s",
        PORT=str(port),
        KEYBOT_HOST="127.0.0.1",
        SLACK_API_URL="http://127.0.0.1:9/api/",
    )
    assert _run(["bootstrap", "--team-id", "T0001", "--owner", "U0001"], env).returncode == 0
    proc = subprocess.Popen(
        [*KEYBOT, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        body = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    body = resp.read()
                    break
            except OSError:
                time.sleep(0.1)
        assert b'"status":"ok"' in body
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "keybot stopped" in err


def test_db_upgrade_migrates_the_embedded_database(tmp_path: Path) -> None:
    result = _run(["db", "upgrade"], _env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "kb.db").exists()
    assert "latest schema" in result.stdout


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://u:hunter2@host:notaport/db",
        "postgresql+asyncpg://u:hunter2@host:99999/db",
        "postgresql+asyncpg://u:hunter2@[::1/db",
    ],
)
@pytest.mark.parametrize("command", [["serve"], ["db", "upgrade"]])
def test_a_malformed_database_url_stops_with_one_clear_line_that_does_not_repeat_it(
    tmp_path: Path, url: str, command: list[str]
) -> None:
    result = _run(command, _env(tmp_path, SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s", DATABASE_URL=url))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DATABASE_URL is malformed" in lines[0]
    assert "hunter2" not in result.stderr


def test_serve_with_the_cheapest_argon2_profile_warns_once_that_it_is_for_tests_only(tmp_path: Path) -> None:
    port = _free_port()
    env = _env(
        tmp_path,
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_SIGNING_SECRET="s",
        PORT=str(port),
        KEYBOT_HOST="127.0.0.1",
        SLACK_API_URL="http://127.0.0.1:9/api/",
    )
    assert env["KEYBOT_ARGON2_PROFILE"] == "cheapest"
    proc = subprocess.Popen([*KEYBOT, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60  # a deadline, not a measure
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    warnings = [line for line in err.splitlines() if " WARNING " in line]
    assert len(warnings) == 1, err
    assert "KEYBOT_ARGON2_PROFILE=cheapest" in warnings[0] and "tests only" in warnings[0]


@pytest.mark.parametrize("org", ["", "   ", "x" * 65, "Acme\nInc", "Acme\x1b[2J"])
def test_bootstrap_refuses_an_org_name_that_is_empty_too_long_or_not_printable(tmp_path: Path, org: str) -> None:
    result = _run(["bootstrap", "--team-id", "T0001", "--owner", "U0001", "--org", org], _env(tmp_path))
    assert result.returncode == 2
    assert "--org" in result.stderr and "printable" in result.stderr
    assert "Traceback" not in result.stderr and "\x1b" not in result.stderr
    assert not (tmp_path / "kb.db").exists()


def test_bootstrap_accepts_an_org_name_with_spaces_and_punctuation(tmp_path: Path) -> None:
    result = _run(["bootstrap", "--team-id", "T0001", "--owner", "U0001", "--org", "Acme Corp. (EU)"], _env(tmp_path))
    assert result.returncode == 0, result.stderr


def _socket_mode_env(tmp_path: Path, api_url: str) -> dict[str, str]:
    return _env(
        tmp_path,
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_APP_TOKEN="xapp-1-A0-1-bad",
        PORT=str(_free_port()),
        KEYBOT_HOST="127.0.0.1",
        SLACK_API_URL=api_url,
    )


def test_serve_in_socket_mode_with_an_app_token_slack_refuses_stops_with_one_clear_line(tmp_path: Path) -> None:
    import http.server
    import threading

    class Refusing(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # every Web API method: as Slack answers a wrong token
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"ok": false, "error": "invalid_auth"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = _run(["serve"], _socket_mode_env(tmp_path, f"http://127.0.0.1:{server.server_port}/api/"))
    finally:
        server.shutdown()
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    [line] = [ln for ln in result.stderr.splitlines() if ln.startswith("keybot:")]
    assert "Slack refused SLACK_APP_TOKEN (invalid_auth)" in line and "xapp-1-A0-1-bad" not in result.stderr


def test_serve_in_socket_mode_while_slack_is_unreachable_retries_and_still_stops_on_sigterm(tmp_path: Path) -> None:
    env = _socket_mode_env(tmp_path, "http://127.0.0.1:9/api/")  # nothing listens on port 9
    proc = subprocess.Popen([*KEYBOT, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{env['PORT']}/healthz", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        time.sleep(1.5)  # at least one attempt to reach Slack
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "cannot reach Slack for Socket Mode" in err and "keybot stopped" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql+asyncpg://postgres@127.0.0.1:5432/keybot_no_such_db", 'database "keybot_no_such_db" does not exist'),
        ("postgresql+asyncpg://keybot_no_such_role@127.0.0.1:5432/test", 'role "keybot_no_such_role" does not exist'),
    ],
)
@pytest.mark.parametrize("command", [["serve"], ["db", "upgrade"], ["audit", "export", "--since", "2026-01-01"]])
def test_a_postgres_url_naming_a_database_or_role_that_does_not_exist_stops_with_one_clear_line(
    tmp_path: Path, url: str, said: str, command: list[str]
) -> None:
    result = _run(command, _env(tmp_path, SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s", DATABASE_URL=url))
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("keybot: cannot reach the database") and said in lines[0] and "sqlalchemy" not in lines[0]

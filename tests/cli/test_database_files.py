"""The SQLite database holds key hashes: real keybot processes create its files (main, -wal, -shm)
readable by their owner only, whatever the umask, and say once when an existing one is not."""

import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

KEYBOT = [sys.executable, "-m", "bot.cli"]
USUAL_UMASK = 0o022  # files would be 0644 without keybot's care


def _env(db: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "KEYBOT_", "DATABASE_URL", "PORT"))}
    env.update(DATABASE_URL=f"sqlite+aiosqlite:///{db}", **extra)  # owasp: nothing here hashes
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KEYBOT, *args], env=env, capture_output=True, text=True, timeout=60, umask=USUAL_UMASK
    )


def _mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_keybot_creates_the_database_and_its_wal_and_shm_files_readable_by_their_owner_only(
    tmp_path: Path,
) -> None:
    db = tmp_path / "keybot.db"
    upgraded = _run(["db", "upgrade"], _env(db))
    assert upgraded.returncode == 0, upgraded.stderr
    assert _mode(db) == "0o600"

    port = _free_port()
    env = _env(
        db,
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_SIGNING_SECRET="s",
        PORT=str(port),
        KEYBOT_HOST="127.0.0.1",
        SLACK_API_URL="http://127.0.0.1:9/api/",
    )
    serve = subprocess.Popen(
        [*KEYBOT, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, umask=USUAL_UMASK
    )
    try:
        deadline = time.monotonic() + 60  # a deadline, not a measure
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        written = _run(["bootstrap", "--team-id", "T0001", "--owner", "U0001"], env)  # a write, while serving
        assert written.returncode == 0, written.stderr
        files = {p.name: _mode(p) for p in tmp_path.iterdir() if p.name.startswith("keybot.db")}
    finally:
        serve.send_signal(signal.SIGTERM)
        _, err = serve.communicate(timeout=60)
    assert serve.returncode == 0, err
    assert files == {"keybot.db": "0o600", "keybot.db-wal": "0o600", "keybot.db-shm": "0o600"}
    assert "WARNING" not in err + upgraded.stderr + written.stderr


def test_an_existing_database_file_that_others_can_read_gets_one_warning_line(tmp_path: Path) -> None:
    db = tmp_path / "keybot.db"
    assert _run(["db", "upgrade"], _env(db)).returncode == 0
    db.chmod(0o644)

    warned = _run(["db", "upgrade"], _env(db))

    assert warned.returncode == 0, warned.stderr
    lines = warned.stderr.strip().splitlines()
    assert len(lines) == 1, warned.stderr
    assert "WARNING" in lines[0] and "other users" in lines[0] and f"chmod 600 {db}" in lines[0]
    assert "latest schema" in warned.stdout
    db.chmod(0o600)
    assert _run(["db", "upgrade"], _env(db)).stderr == ""

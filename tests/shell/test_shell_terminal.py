"""``keybot shell`` in a real pseudo-terminal: readline input, the bootstrap question, a command, Ctrl-C, Ctrl-D."""

import fcntl
import os
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CTRL_C = b"\x03"
CTRL_D = b"\x04"


def _controlling_terminal() -> None:
    """In the child: a new session whose controlling terminal is the pty, so Ctrl-C raises SIGINT."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """A child process on a pty; ``expect`` reads until a string appears."""

    def __init__(self, args: list[str], *, env: dict[str, str], cwd: Path) -> None:
        self.master, slave = os.openpty()
        self.process = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, preexec_fn=_controlling_terminal
        )
        os.close(slave)
        self.seen = b""
        self.position = 0

    def expect(self, text: str, timeout: float = 30.0) -> str:
        """Read until ``text`` appears after the previous match; return the output up to its end."""
        deadline = time.monotonic() + timeout
        while text.encode() not in self.seen[self.position :]:
            left = deadline - time.monotonic()
            assert left > 0, (
                f"{text!r} never appeared; the terminal shows:\n{self.seen.decode(errors='replace')}"
            )
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the child exited and closed the pty
                    chunk = b""
                assert chunk, (
                    f"{text!r} never appeared; the terminal shows:\n{self.seen.decode(errors='replace')}"
                )
                self.seen += chunk
        start = self.position
        self.position = self.seen.index(text.encode(), start) + len(text.encode())
        return self.seen[start : self.position].decode(errors="replace")

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        os.close(self.master)


def test_the_shell_runs_in_a_terminal_bootstraps_runs_a_command_and_survives_ctrl_c_and_exits_on_ctrl_d(
    tmp_path: Path,
) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "TERM": "xterm",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'keybot.db'}",
        "KEYBOT_ARGON2_PROFILE": "cheapest",
    }
    terminal = Terminal([sys.executable, "-m", "bot.cli", "shell", "--as", "ana"], env=env, cwd=tmp_path)
    try:
        terminal.expect("Create one with you as its owner? [Y/n] ")
        terminal.send(b"y\r")
        terminal.expect("@ana> ")
        terminal.send(b"grant @bob owner\r")  # another owner, to be told of the project by DM
        terminal.expect("@ana> ")
        terminal.send(b"project create payments\r")
        shown = terminal.expect("DM to @bob:")
        assert "only you (@ana) see:" in shown
        assert "DM to @ana" not in shown
        terminal.expect("@ana> ")
        time.sleep(0.5)  # as a person would: readline sets up the terminal just after the prompt shows
        terminal.send(CTRL_C)
        assert terminal.expect("@ana> ").strip() == "^C\r\n@ana>"
        terminal.send(CTRL_D)
        assert terminal.process.wait(timeout=30) == 0
    finally:
        terminal.close()
    history = (tmp_path / ".keybot_history").read_text()
    assert "project create payments" in history

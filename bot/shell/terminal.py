"""``run_shell``: the terminal loop of ``keybot shell`` around one ``Shell``.

keybot runs on an event loop in a background thread; the calling thread reads lines (readline and a
history in ~/.keybot_history on a terminal), so Ctrl-C at the prompt just gives a new prompt.
"""

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TextIO, TypeVar

from bot.runtime import StartupError
from bot.settings import Settings
from bot.shell.repl import Shell
from bot.shell.users import user_id_for

T = TypeVar("T")

HISTORY_FILE = Path("~/.keybot_history")


@contextlib.contextmanager
def _history(enabled: bool) -> Iterator[None]:
    """readline line editing and a history in ~/.keybot_history, on a terminal."""
    if not enabled:
        yield
        return
    try:
        import readline
    except ImportError:  # no readline on this platform: plain input()
        yield
        return
    path = HISTORY_FILE.expanduser()
    with contextlib.suppress(OSError):
        readline.read_history_file(path)
    readline.set_history_length(1000)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            readline.write_history_file(path)


def _line_reader(source: TextIO, out: TextIO, *, terminal: bool) -> Callable[[str], str]:
    """``read(prompt)`` → a line; EOFError at the end. Off a terminal, echoes lines into ``out``."""
    if terminal:
        return input

    def read(prompt: str) -> str:
        out.write(prompt)
        out.flush()
        line = source.readline()
        if not line:
            raise EOFError
        out.write(line if line.endswith("\n") else line + "\n")
        return line.rstrip("\r\n")

    return read


def _print(out: TextIO, text: str) -> None:
    if text:
        out.write(text if text.endswith("\n") else text + "\n")
    out.flush()


def _quiet_logs(settings: Settings) -> None:
    """Keep the transcript readable: warnings and errors only, minus Bolt's harmless startup notice."""
    if settings.log_level == "INFO":
        logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("keybot.bolt").addFilter(_drop_token_notice)


def _drop_token_notice(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("As `installation_store` or `authorize`")


def run_shell(
    settings: Settings,
    *,
    user: str | None = None,
    production: bool = False,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """``keybot shell``: the line loop on stdin/stdout; returns the exit code (0 on /quit or Ctrl-D,
    1 when keybot cannot start or the database holds a real workspace and ``production`` is False)."""
    name = user.removeprefix("@") if user else None
    try:
        user_id_for(name or "you")
    except ValueError:
        print(
            f"keybot: --as {user!r} is neither a name nor a Slack user id (like ana or U0123ABC).",
            file=sys.stderr,
        )
        return 2
    out = stdout or sys.stdout
    source = stdin or sys.stdin
    terminal = stdin is None and stdout is None and source.isatty()
    _quiet_logs(settings)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="keybot-shell-loop", daemon=True)
    thread.start()

    def wait(work: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(work, loop)
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            raise

    try:
        try:
            shell = wait(Shell.open(settings, user=name, production=production))
        except StartupError as err:
            print(f"keybot: {err}", file=sys.stderr)
            return 1
        try:
            with _history(terminal):
                return _loop(shell, wait, _line_reader(source, out, terminal=terminal), out)
        finally:
            wait(shell.aclose())
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def _loop(
    shell: Shell,
    wait: Callable[[Coroutine[Any, Any, str]], str],
    read: Callable[[str], str],
    out: TextIO,
) -> int:
    _print(out, wait(shell.start()))
    while not shell.finished:
        try:
            line = read(shell.prompt)
        except EOFError:
            _print(out, "\n")
            return 0
        except KeyboardInterrupt:
            out.write("^C\n")
            continue
        try:
            _print(out, wait(shell.handle(line)))
        except KeyboardInterrupt:
            _print(out, "(interrupted)")
    return 0

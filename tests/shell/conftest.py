"""A fresh SQLite database per test and a helper that runs ``keybot shell``'s line loop on a script."""

import io
import re
from pathlib import Path

import pytest

from bot.domain.hashing import HashParams
from bot.settings import Settings
from bot.shell import run_shell

SECRET_RE = re.compile(r"kb_[A-Za-z0-9]{10}_[A-Za-z0-9]{28}")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'keybot.db'}", hash_params=HashParams.cheapest()
    )


def transcript(settings: Settings, *lines: str, user: str = "ana", production: bool = False) -> str:
    """Run the shell on ``lines`` (then end of input); return everything it printed. Exit code must be 0."""
    out = io.StringIO()
    code = run_shell(
        settings,
        user=user,
        production=production,
        stdin=io.StringIO("".join(f"{line}\n" for line in lines)),
        stdout=out,
    )
    assert code == 0, out.getvalue()
    return out.getvalue()


def after(text: str, marker: str) -> str:
    """The part of a transcript after the last ``marker`` (which must be there)."""
    assert marker in text, text
    return text.rsplit(marker, 1)[1]


_PROMPT_RE = re.compile(r"^(@\S+> |.*\[[yY]/[nN]\] |✎ .*?> )", re.MULTILINE)


def reply_to(text: str, line: str, *, occurrence: int = 1) -> str:
    """What the shell printed for the ``occurrence``-th time ``line`` was typed, up to the next prompt."""
    start = -1
    for _ in range(occurrence):
        start = text.index(f"> {line}\n", start + 1)
    rest = text[start + len(f"> {line}\n") :]
    prompt = _PROMPT_RE.search(rest)
    return rest[: prompt.start()] if prompt else rest

"""Project and key names: 1–64 letters, digits, ``-``, ``_``, ``.``; starting with a letter or digit."""

import re
import unicodedata

from bot.domain.errors import InvalidInput

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


def shown(raw: str, *, limit: int = 40) -> str:
    """A user-typed word made safe to echo back: printable, short, no backticks or mention brackets."""
    text = "".join(ch if ch.isprintable() else "?" for ch in raw[:limit])
    text = text.replace("`", "'").replace("<", "‹").replace(">", "›")
    return text + ("…" if len(raw) > limit else "")


ORG_NAME_MAX = 64
_UNSTORABLE = frozenset({"Cc", "Cs"})  # control characters (NUL among them) and lone surrogates


def unstorable_replaced(text: str) -> str:
    """``text`` with each character a database cannot keep (see ``storable_text``) shown as ``?``: for
    text keybot records but nobody typed to keybot, such as the location in a GitHub report."""
    return "".join("?" if unicodedata.category(ch) in _UNSTORABLE else ch for ch in text)


def storable_text(text: str, *, what: str) -> str:
    """``text`` (whitespace already made single spaces) if a database can keep it as typed, else
    InvalidInput: PostgreSQL refuses NUL in text and UTF-8 has no lone surrogates. Emoji, joiners and
    every script pass."""
    if any(unicodedata.category(ch) in _UNSTORABLE for ch in text):
        raise InvalidInput(f"{what} cannot hold control characters (such as NUL). Retype it without them.")
    return text


def validate_org_name(raw: str) -> str:
    """Return ``raw`` if it can name an organization (1–64 printable characters, not only spaces), else
    raise InvalidInput. It is still shown through ``shown``: backticks and brackets are allowed."""
    if not raw.strip() or len(raw) > ORG_NAME_MAX or not raw.isprintable():
        raise InvalidInput(
            f"`{shown(raw)}` is not a valid organization name. Use 1–{ORG_NAME_MAX} printable characters."
        )
    return raw


def validate_name(raw: str, *, kind: str) -> str:
    """Return ``raw`` if it is a valid name, else raise InvalidInput saying what a name may contain."""
    if NAME_RE.fullmatch(raw) is None:
        raise InvalidInput(
            f"`{shown(raw)}` is not a valid {kind} name. Use 1–64 ASCII letters (a–z, A–Z), digits, `-`, `_` or `.`, "
            "starting with a letter or digit."
        )
    return raw

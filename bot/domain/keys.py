"""The API key format: ``<prefix>_<key id>_<secret><checksum>``, only ``[A-Za-z0-9_]``.

- key id: 10 base62 characters, public, indexed; finds the row in O(1).
- secret: 22 base62 characters from ``secrets`` (≥ 130 bits).
- checksum: CRC32 of everything before it, as 6 base62 characters, so a mistyped or
  truncated key is rejected without touching the database.

Masked form: ``kb_7Hq2Lm9xAb_…a81Z`` — prefix, key id and the last 4 characters only.
"""

import functools
import re
import secrets
import zlib
from dataclasses import dataclass, field

from bot.domain.errors import InvalidInput

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
KEY_ID_LEN = 10
SECRET_LEN = 22
CHECKSUM_LEN = 6
PREFIX_RE = re.compile(r"[a-z][a-z0-9]{0,15}")
_BASE62_SET = frozenset(BASE62)


def _random_base62(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))


def _base62(number: int, *, width: int) -> str:
    out = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        out.append(BASE62[digit])
    return "".join(reversed(out))


def checksum(body: str) -> str:
    """CRC32 of ``body`` as 6 base62 characters."""
    return _base62(zlib.crc32(body.encode()), width=CHECKSUM_LEN)


@dataclass(frozen=True, slots=True)
class ParsedKey:
    """A syntactically valid key. ``plaintext`` is hidden from repr so it never reaches a log."""

    key_id: str
    plaintext: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly generated key; the plaintext is shown once and never stored or logged."""

    key_id: str
    plaintext: str = field(repr=False)
    masked: str


@dataclass(frozen=True, slots=True)
class KeyFormat:
    """Generates, parses and masks keys with one configurable prefix."""

    prefix: str = "kb"

    def __post_init__(self) -> None:
        if PREFIX_RE.fullmatch(self.prefix) is None:
            raise ValueError("key prefix must be 1–16 lowercase letters or digits, starting with a letter")

    @property
    def length(self) -> int:
        return len(self.prefix) + 2 + KEY_ID_LEN + SECRET_LEN + CHECKSUM_LEN

    def generate(self) -> NewKey:
        key_id = _random_base62(KEY_ID_LEN)
        body = f"{self.prefix}_{key_id}_{_random_base62(SECRET_LEN)}"
        plaintext = body + checksum(body)
        return NewKey(key_id=key_id, plaintext=plaintext, masked=self.mask(plaintext))

    def parse(self, text: str) -> ParsedKey:
        """Validate shape and checksum; raise InvalidInput (no details about the secret) otherwise."""
        if len(text) != self.length or not text.startswith(self.prefix + "_"):
            raise InvalidInput("malformed key")
        rest = text[len(self.prefix) + 1 :]
        key_id, sep, tail = rest[:KEY_ID_LEN], rest[KEY_ID_LEN], rest[KEY_ID_LEN + 1 :]
        if sep != "_" or not _BASE62_SET.issuperset(key_id) or not _BASE62_SET.issuperset(tail):
            raise InvalidInput("malformed key")
        body, check = text[:-CHECKSUM_LEN], text[-CHECKSUM_LEN:]
        if not secrets.compare_digest(checksum(body), check):
            raise InvalidInput("malformed key")
        return ParsedKey(key_id=key_id, plaintext=text)

    def candidates(self, text: str) -> list[str]:
        """Every string in ``text`` shaped like a key of this prefix (one regular-expression scan; the
        checksum is not checked here). A key split across lines is not one: it is not found."""
        return _candidate_re(self.prefix).findall(text)

    def holds_key(self, text: str) -> bool:
        """Whether ``text`` holds a key of this format (shape and checksum: no query, no argon2)."""
        for candidate in self.candidates(text):
            try:
                self.parse(candidate)
            except InvalidInput:
                continue
            return True
        return False

    def refuse_key_in(self, text: str, *, what: str) -> str:
        """``text`` if it holds no key, else InvalidInput: text people type (a note, a reason) is stored
        and shown to others, and a key's plaintext must never be."""
        if self.holds_key(text):
            raise InvalidInput(
                f"{what} cannot hold an API key: it is stored and shown to other people. Remove the key "
                "(and if it is a real one, roll it: it was pasted somewhere)."
            )
        return text

    def mask(self, plaintext: str) -> str:
        return self.masked_from(key_id=plaintext[len(self.prefix) + 1 :][:KEY_ID_LEN], tail=plaintext[-4:])

    def masked_from(self, *, key_id: str, tail: str) -> str:
        return f"{self.prefix}_{key_id}_…{tail}"


@functools.cache
def _candidate_re(prefix: str) -> re.Pattern[str]:
    """SECURITY.md's scanner regex for ``prefix``: the whole key between word boundaries."""
    return re.compile(rf"\b{re.escape(prefix)}_[0-9A-Za-z]{{{KEY_ID_LEN}}}_[0-9A-Za-z]{{{SECRET_LEN + CHECKSUM_LEN}}}\b")

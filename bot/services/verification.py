"""Key verification for the services that receive keys (``POST /v1/keys/verify``).

Cost model: a malformed key (wrong prefix, length, charset or CRC) is refused without any I/O.
A well-formed key is looked up by its public key id (one indexed query) and checked with argon2id
in a worker thread. Once a key verifies, a process-local cache keyed by SHA-256(key) remembers it,
so warm verifications skip argon2. Revocation still wins: the instance that deletes a key drops it
from its cache at once (``forget``), and every cached entry is re-checked against the database
(one indexed existence query, no argon2) when it is older than ``recheck_after`` seconds — 0.5 s by
default, well inside DESIGN.md's 1-second bound for other instances.
"""

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.errors import InvalidInput
from bot.domain.hashing import Hasher
from bot.domain.keys import KeyFormat
from bot.ports import VerifyReads

TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Verdict:
    valid: bool
    code: str | None = None
    key_id: str | None = None
    project: str | None = None
    org: str | None = None
    name: str | None = None

    def as_json(self) -> dict[str, object]:
        if self.valid:
            return {
                "valid": True,
                "key_id": self.key_id,
                "project": self.project,
                "org": self.org,
                "name": self.name,
            }
        return {"valid": False, "code": self.code}


MALFORMED = Verdict(valid=False, code="MALFORMED")
NOT_FOUND = Verdict(valid=False, code="NOT_FOUND")


@dataclass(slots=True)
class _Entry:
    row_id: int
    verdict: Verdict
    checked_at: float
    touched_at: datetime | None


class Verifier:
    """Answers "is this key valid?" fast, without ever holding or logging plaintexts."""

    def __init__(
        self,
        store: VerifyReads,
        *,
        hasher: Hasher,
        key_format: KeyFormat,
        clock: Callable[[], datetime],
        recheck_after: float = 0.5,
        max_entries: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._hasher = hasher
        self._format = key_format
        self._recheck_after = recheck_after
        self._max = max_entries
        self._monotonic = monotonic
        self._clock = clock
        self._valid: OrderedDict[bytes, _Entry] = OrderedDict()
        self._by_key_id: dict[str, bytes] = {}
        self._invalid: OrderedDict[bytes, None] = OrderedDict()
        self._background: set[asyncio.Task[None]] = set()
        self._forgotten = 0  # bumped by forget(); a lookup that straddles one re-checks before caching

    def forget(self, key_id: str) -> None:
        """Drop a deleted key from the cache, so it fails on this instance at once."""
        self._forgotten += 1
        digest = self._by_key_id.pop(key_id, None)
        if digest is not None:
            self._valid.pop(digest, None)

    async def verify(self, text: str) -> Verdict:
        try:
            parsed = self._format.parse(text)
        except InvalidInput:
            return MALFORMED
        digest = hashlib.sha256(text.encode()).digest()
        if digest in self._invalid:
            return NOT_FOUND
        entry = self._valid.get(digest)
        now = self._monotonic()
        if entry is not None:
            if now - entry.checked_at < self._recheck_after:
                self._maybe_touch(entry)
                return entry.verdict
            if await self._store.key_exists(entry.row_id):
                entry.checked_at = self._monotonic()
                self._maybe_touch(entry)
                return entry.verdict
            self.forget(parsed.key_id)
            self._remember_invalid(digest)
            return NOT_FOUND
        generation = self._forgotten
        record = await self._store.verify_record(parsed.key_id)
        if record is None or not await self._hasher.verify(record.secret_hash, parsed.plaintext):
            self._remember_invalid(digest)
            return NOT_FOUND
        if generation != self._forgotten and not await self._store.key_exists(record.id):
            return NOT_FOUND  # deleted on this instance while we were hashing: do not revive it
        verdict = Verdict(
            valid=True, key_id=record.key_id, project=record.project, org=record.org, name=record.name
        )
        entry = _Entry(
            row_id=record.id, verdict=verdict, checked_at=self._monotonic(), touched_at=record.last_used_at
        )
        self._remember_valid(digest, parsed.key_id, entry)
        self._maybe_touch(entry)
        return verdict

    def _remember_valid(self, digest: bytes, key_id: str, entry: _Entry) -> None:
        self._valid[digest] = entry
        self._by_key_id[key_id] = digest
        while len(self._valid) > self._max:
            _, old = self._valid.popitem(last=False)
            if old.verdict.key_id is not None:
                self._by_key_id.pop(old.verdict.key_id, None)

    def _remember_invalid(self, digest: bytes) -> None:
        self._invalid[digest] = None
        while len(self._invalid) > self._max:
            self._invalid.popitem(last=False)

    def _maybe_touch(self, entry: _Entry) -> None:
        now = self._clock()
        if entry.touched_at is not None and now - entry.touched_at < TOUCH_EVERY:
            return
        entry.touched_at = now
        task = asyncio.create_task(self._store.touch_key(entry.row_id, at=now))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def aclose(self) -> None:
        """Wait for pending ``last_used_at`` updates."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

"""Key verification for the services that receive keys (``POST /v1/keys/verify``).

Cost model: a malformed key (wrong prefix, length, charset or CRC) is refused without any I/O.
A well-formed key is looked up by its public key id (one indexed query) and checked with argon2id
in a worker thread. Once a key verifies, a process-local cache keyed by SHA-256(key) remembers it,
so warm verifications skip argon2. Revocation still wins: the instance that deletes a key drops it
from its cache at once (``forget``), and every cached entry is re-checked against the database
(one indexed existence query, no argon2) when it is older than ``recheck_after`` seconds — 0.5 s by
default, well inside DESIGN.md's 1-second bound for other instances.

Abuse model: key ids are public (every masked key shows one), so anyone can send well-formed keys
with a real key id and a guessed secret, each of which would cost an argon2 verify. Three bounds keep
that cheap:

- a refusal cache: a key that failed is remembered (by SHA-256, at most ``max_refused`` of them, the
  oldest evicted first), so repeating it costs nothing;
- a failure budget per key id: once ``max_failures`` secrets for one key id have failed (or are being
  checked) within ``failure_window`` seconds — 20 per minute by default — further unknown secrets for
  that key id are answered ``NOT_FOUND`` at once, without a query or argon2, until the oldest failure
  leaves the window. Budgets exist only for key ids whose row exists (argon2 ran), at most
  ``max_budgets`` of them, least recently failed evicted first. A key already in the cache keeps
  verifying (no query, no argon2); a key first seen on this instance while its key id is over budget
  is refused like a guess until the window passes;
- the argon2 lane itself is bounded (bot/domain/hashing.py): when it is full, ``verify`` raises
  ``Busy`` at once (the verify API answers 503 with Retry-After).
"""

import asyncio
import hashlib
import time
from collections import OrderedDict, deque
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


@dataclass(slots=True)
class _Tally:
    failures: deque[float]  # monotonic times of the latest failures, at most max_failures of them
    in_flight: int = 0


class FailureBudget:
    """How many wrong secrets each key id may cost argon2: ``limit`` per ``window`` seconds, counting
    checks still in flight, for at most ``max_key_ids`` key ids (least recently failed evicted)."""

    def __init__(
        self, *, limit: int, window: float, max_key_ids: int, monotonic: Callable[[], float]
    ) -> None:
        self._limit = limit
        self._window = window
        self._max = max_key_ids
        self._monotonic = monotonic
        self._tallies: OrderedDict[str, _Tally] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tallies)

    def exhausted(self, key_id: str) -> bool:
        tally = self._tallies.get(key_id)
        if tally is None:
            return False
        cutoff = self._monotonic() - self._window
        recent = sum(1 for at in tally.failures if at > cutoff)
        return recent + tally.in_flight >= self._limit

    def begin(self, key_id: str) -> None:
        """An argon2 check for ``key_id`` starts: it counts against the budget until it ends."""
        tally = self._tallies.get(key_id)
        if tally is None:
            tally = self._tallies[key_id] = _Tally(failures=deque(maxlen=self._limit))
            while len(self._tallies) > self._max:
                self._tallies.popitem(last=False)
        tally.in_flight += 1

    def end(self, key_id: str, *, failed: bool) -> None:
        tally = self._tallies.get(key_id)
        if tally is None:  # evicted meanwhile
            return
        tally.in_flight = max(0, tally.in_flight - 1)
        if failed:
            tally.failures.append(self._monotonic())
            self._tallies.move_to_end(key_id)
        elif not tally.failures and not tally.in_flight:
            del self._tallies[key_id]


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
        max_refused: int = 100_000,
        max_failures: int = 20,
        failure_window: float = 60.0,
        max_budgets: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``max_entries`` bounds the cache of valid keys, ``max_refused`` the refusal cache;
        ``max_failures`` wrong secrets per key id within ``failure_window`` seconds may cost argon2
        (see the module docstring), tracked for at most ``max_budgets`` key ids."""
        self._store = store
        self._hasher = hasher
        self._format = key_format
        self._recheck_after = recheck_after
        self._max = max_entries
        self._max_refused = max_refused
        self._monotonic = monotonic
        self._clock = clock
        self._valid: OrderedDict[bytes, _Entry] = OrderedDict()
        self._by_key_id: dict[str, bytes] = {}
        self._invalid: OrderedDict[bytes, None] = OrderedDict()
        self._budget = FailureBudget(
            limit=max_failures, window=failure_window, max_key_ids=max_budgets, monotonic=monotonic
        )
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
        if self._budget.exhausted(parsed.key_id):
            return NOT_FOUND  # too many wrong secrets for this key id lately: no query, no argon2
        generation = self._forgotten
        record = await self._store.verify_record(parsed.key_id)
        if record is None:
            self._remember_invalid(digest)
            return NOT_FOUND
        if self._budget.exhausted(parsed.key_id):  # others used it up during the lookup
            return NOT_FOUND
        self._budget.begin(parsed.key_id)
        matched: bool | None = None  # stays None if the lane is full (Busy) or the caller gave up
        try:
            matched = await self._hasher.verify(record.secret_hash, parsed.plaintext)
        finally:
            self._budget.end(parsed.key_id, failed=matched is False)
        if not matched:
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
        while len(self._invalid) > self._max_refused:
            self._invalid.popitem(last=False)  # the oldest refusal goes first

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

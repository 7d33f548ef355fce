"""Key verification for the services that receive keys (``POST /v1/keys/verify``).

Cost model: a malformed key (wrong prefix, length, charset or CRC) is refused without any I/O.
A well-formed key is looked up by its public key id (one indexed query; a second one, in
``retired_secrets``, only when no key has that id: it may be a rolled key's old secret) and checked
with argon2id in a worker thread. Once a secret matches, a process-local cache keyed by SHA-256(key)
remembers it with its key's state (disabled, expiry, and for an old secret when its grace ends), so
warm verifications skip argon2 and the database: expiry is checked against the injected clock.

Revocation wins in both directions: the instance that changes a key (delete, disable, enable, roll,
expiry) drops its cached entries at once (``forget``, ``forget_row``), and every cached entry — valid
or refused as DISABLED or EXPIRED alike — is re-checked against the database (one indexed state query,
no argon2) when it is older than ``recheck_after`` seconds: 0.5 s by default, well inside DESIGN.md's
1-second bound for other instances. A secret that matched is never put in the refusal cache and never
counts against the failure budget, so a key enabled again verifies again everywhere within that bound.

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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.domain.errors import InvalidInput
from bot.domain.hashing import Hasher
from bot.domain.keys import KeyFormat
from bot.domain.lifecycle import KeyStatus, secret_status
from bot.domain.model import KeyState, VerifyRecord
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
    expires_at: datetime | None = None
    retiring_at: datetime | None = None  # only for a rolled key's old secret, in its grace period

    def as_json(self) -> dict[str, object]:
        if self.valid:
            body: dict[str, object] = {
                "valid": True,
                "key_id": self.key_id,
                "project": self.project,
                "org": self.org,
                "name": self.name,
                "expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
            }
            if self.retiring_at is not None:
                body["retiring_at"] = self.retiring_at.isoformat()
            return body
        return {"valid": False, "code": self.code}


MALFORMED = Verdict(valid=False, code="MALFORMED")
NOT_FOUND = Verdict(valid=False, code="NOT_FOUND")
EXPIRED = Verdict(valid=False, code="EXPIRED")
DISABLED = Verdict(valid=False, code="DISABLED")


@dataclass(slots=True)
class _Entry:
    """A secret that matched its hash, with its key's state as last read. ``key_id`` is the secret's
    own (an old secret keeps its old key id); ``retiring_at`` is set once the secret was rolled away."""

    row_id: int
    key_id: str
    valid: Verdict  # the answer while the secret is usable
    disabled: bool
    expires_at: datetime | None
    retiring_at: datetime | None
    checked_at: float
    touched_at: datetime | None
    timeless: bool = True  # enabled, no expiry, not retiring: valid whatever the clock says

    @classmethod
    def of(cls, record: VerifyRecord, *, checked_at: float) -> "_Entry":
        valid = Verdict(
            valid=True, key_id=record.key_id, project=record.project, org=record.org, name=record.name
        )
        entry = cls(
            row_id=record.id,
            key_id=record.key_id,
            valid=valid,
            disabled=False,
            expires_at=None,
            retiring_at=None,
            checked_at=checked_at,
            touched_at=record.last_used_at,
        )
        entry.set_state(
            disabled=record.disabled_at is not None,
            expires_at=record.expires_at,
            retiring_at=record.retiring_at,
        )
        return entry

    def set_state(self, *, disabled: bool, expires_at: datetime | None, retiring_at: datetime | None) -> None:
        self.disabled, self.expires_at, self.retiring_at = disabled, expires_at, retiring_at
        self.timeless = not disabled and expires_at is None and retiring_at is None
        self.valid = replace(self.valid, expires_at=expires_at, retiring_at=retiring_at)

    def apply(self, state: KeyState) -> bool:
        """Take the key's current state; False if this secret no longer belongs to it."""
        if state.key_id == self.key_id:
            retiring_at = None
        elif state.retiring_at is not None:
            retiring_at = state.retiring_at  # rolled away (on another instance): in or past its grace
        else:
            return False
        self.set_state(
            disabled=state.disabled_at is not None, expires_at=state.expires_at, retiring_at=retiring_at
        )
        return True

    def verdict(self, now: datetime) -> Verdict:
        if self.timeless:
            return self.valid
        status = secret_status(
            disabled=self.disabled, expires_at=self.expires_at, retiring_at=self.retiring_at, now=now
        )
        if status is KeyStatus.DISABLED:
            return DISABLED
        if status is KeyStatus.EXPIRED:
            return EXPIRED
        return self.valid


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
        """``max_entries`` bounds the cache of matched secrets, ``max_refused`` the refusal cache;
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
        self._by_row: dict[int, set[bytes]] = {}
        self._invalid: OrderedDict[bytes, None] = OrderedDict()
        self._budget = FailureBudget(
            limit=max_failures, window=failure_window, max_key_ids=max_budgets, monotonic=monotonic
        )
        self._background: set[asyncio.Task[None]] = set()
        self._forgotten = 0  # bumped by forget(); a lookup that straddles one re-checks before caching
        # read by the metrics (bot/observability.py): answers by code ("VALID" for a valid key), and
        # answers straight from the cache of matched secrets or from the refusal cache
        self.outcomes: dict[str, int] = dict.fromkeys(("VALID", "MALFORMED", "NOT_FOUND", "EXPIRED", "DISABLED"), 0)
        self.cache_hits = 0
        self.refusal_hits = 0

    def forget(self, key_id: str) -> None:
        """Drop a deleted key from the cache, so it fails on this instance at once."""
        self._forgotten += 1
        digest = self._by_key_id.get(key_id)
        if digest is not None:
            self._drop(digest)

    def forget_row(self, row_id: int) -> None:
        """Drop every cached secret of the key with this row id (its current and rolled-away secrets)
        after a change to it on this instance, so the next verification reads its new state."""
        self._forgotten += 1
        for digest in list(self._by_row.get(row_id, ())):
            self._drop(digest)

    def knows_valid(self, text: str) -> bool:
        """Whether ``text`` is a secret this instance verified as valid lately (no query, no argon2)."""
        return hashlib.sha256(text.encode()).digest() in self._valid

    async def budgeted_match(self, key_id: str, check: Callable[[], Awaitable[bool]]) -> bool | None:
        """Run ``check`` (an argon2 comparison of a secret of ``key_id``) within the key id's failure
        budget, as a verification would: None, without running it, when the budget is spent."""
        if self._budget.exhausted(key_id):
            return None
        self._budget.begin(key_id)
        matched: bool | None = None
        try:
            matched = await check()
        finally:
            self._budget.end(key_id, failed=matched is False)
        return matched

    async def verify(self, text: str) -> Verdict:
        verdict = await self._verify(text)
        self.outcomes[verdict.code or "VALID"] += 1
        return verdict

    async def _verify(self, text: str) -> Verdict:
        try:
            parsed = self._format.parse(text)
        except InvalidInput:
            return MALFORMED
        digest = hashlib.sha256(text.encode()).digest()
        if digest in self._invalid:
            self.refusal_hits += 1
            return NOT_FOUND
        entry = self._valid.get(digest)
        if entry is not None:
            self.cache_hits += 1
            if self._monotonic() - entry.checked_at >= self._recheck_after:
                state = await self._store.key_state(entry.row_id, key_id=entry.key_id)
                if state is None or not entry.apply(state):
                    self._drop(digest)
                    self._remember_invalid(digest)
                    return NOT_FOUND
                entry.checked_at = self._monotonic()
            return self._answer(entry)
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
        entry = _Entry.of(record, checked_at=self._monotonic())
        if generation != self._forgotten:  # changed on this instance while we were hashing: read it again
            state = await self._store.key_state(record.id, key_id=record.key_id)
            if state is None or not entry.apply(state):
                return NOT_FOUND  # deleted meanwhile: do not revive it
        self._remember_valid(digest, entry)
        return self._answer(entry)

    def _answer(self, entry: _Entry) -> Verdict:
        now = self._clock()
        verdict = entry.verdict(now)
        if verdict.valid:
            self._maybe_touch(entry, now)
        return verdict

    def _remember_valid(self, digest: bytes, entry: _Entry) -> None:
        self._valid[digest] = entry
        self._by_key_id[entry.key_id] = digest
        self._by_row.setdefault(entry.row_id, set()).add(digest)
        while len(self._valid) > self._max:
            self._drop(next(iter(self._valid)))  # the oldest

    def _drop(self, digest: bytes) -> None:
        entry = self._valid.pop(digest, None)
        if entry is None:
            return
        if self._by_key_id.get(entry.key_id) == digest:
            del self._by_key_id[entry.key_id]
        digests = self._by_row.get(entry.row_id)
        if digests is not None:
            digests.discard(digest)
            if not digests:
                del self._by_row[entry.row_id]

    def _remember_invalid(self, digest: bytes) -> None:
        self._invalid[digest] = None
        while len(self._invalid) > self._max_refused:
            self._invalid.popitem(last=False)  # the oldest refusal goes first

    def _maybe_touch(self, entry: _Entry, now: datetime) -> None:
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

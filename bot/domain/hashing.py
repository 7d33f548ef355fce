"""argon2id hashing of key secrets, always off the event loop, in bounded lanes of their own.

A ``Hasher`` is one lane: a small thread pool (one thread per core: argon2 is CPU-bound and releases
the GIL, so more threads only add memory, 19 MiB each) whose threads run, on Linux, at a lower
scheduling priority than the event loop, so a burst of hashing cannot starve the requests that need
no argon2 (list, help, warm verifies) of CPU.

A lane is bounded: when ``max_pending`` hashes are already queued or running, ``hash``/``verify``
raise ``Busy`` at once instead of queueing, so no caller can pile up unbounded work (and latency) for
everyone behind it. keybot runs two lanes (bot/runtime/wiring.py): one for key creation, one for first-time
verification, so a flood on the public verify endpoint can never delay a create, nor the reverse.
"""

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bot.domain.errors import Busy

T = TypeVar("T")

CREATE_LANE_DEPTH = 256
"""Key creations queued or running at most: a few seconds of work on 2 cores. Creators are
authenticated owners; a create that waits past Slack's ack budget is acked "working on it" and its
key follows on the response_url, so a burst is served rather than refused, up to this bound."""
VERIFY_LANE_DEPTH = 32
"""First-time verifications queued or running at most: ~0.4 s of work on 2 cores; beyond it the
verify API answers 503 with Retry-After instead of making every caller wait longer."""
RETRY_AFTER_SECONDS = 1


@dataclass(frozen=True, slots=True)
class HashParams:
    """argon2id cost. The default is OWASP's minimum (m=19 MiB, t=2, p=1)."""

    time_cost: int = 2
    memory_kib: int = 19 * 1024
    parallelism: int = 1

    @classmethod
    def cheapest(cls) -> "HashParams":
        """argon2's cheapest profile, for tests only."""
        return cls(time_cost=1, memory_kib=8, parallelism=1)


def _lower_priority() -> None:
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


class Hasher:
    """Hashes and verifies key plaintexts with argon2id, in one bounded lane.

    ``threads`` defaults to one per core; ``max_pending`` is how many hashes may be queued or running
    at once before ``hash``/``verify`` raise ``Busy`` (the synchronous ``*_sync`` methods bypass the
    lane and its bound); ``name`` names the lane's threads."""

    def __init__(
        self,
        params: HashParams | None = None,
        *,
        threads: int | None = None,
        max_pending: int = CREATE_LANE_DEPTH,
        name: str = "argon2",
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        p = params or HashParams()
        self.params = p
        self.max_pending = max_pending
        self._ph = PasswordHasher(
            time_cost=p.time_cost, memory_cost=p.memory_kib, parallelism=p.parallelism, type=Type.ID
        )
        self._pool = ThreadPoolExecutor(
            max_workers=threads or os.cpu_count() or 2,
            thread_name_prefix=name,
            initializer=_lower_priority,
        )
        self._lock = threading.Lock()
        self._pending = 0
        self.name = name
        # read by the metrics (bot/observability.py); plain numbers, so the domain knows no exporter
        self.completed = 0  # hashes and verifies finished in the lane
        self.seconds = 0.0  # argon2 time they took, in their threads
        self.refused = 0  # calls refused with Busy because the lane was full

    @property
    def pending(self) -> int:
        """Hashes queued or running in this lane now."""
        return self._pending

    def hash_sync(self, plaintext: str) -> str:
        return self._ph.hash(plaintext)

    def verify_sync(self, digest: str, plaintext: str) -> bool:
        try:
            return self._ph.verify(digest, plaintext)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def hash(self, plaintext: str) -> str:
        return await self._run(self.hash_sync, plaintext)

    async def verify(self, digest: str, plaintext: str) -> bool:
        return await self._run(self.verify_sync, digest, plaintext)

    async def _run(self, work: Callable[..., T], *args: str) -> T:
        """Run ``work(*args)`` in the lane, or raise ``Busy`` at once if the lane is full.

        The slot is held until the thread is done with the work, not until the caller stops
        waiting: a caller that gives up (cancelled) does not make room while argon2 still runs."""
        with self._lock:
            if self._pending >= self.max_pending:
                self.refused += 1
                raise Busy(
                    "keybot is busy hashing other keys right now, so nothing changed. "
                    "Try again in a moment.",
                    retry_after=RETRY_AFTER_SECONDS,
                )
            self._pending += 1
        try:
            future = self._pool.submit(self._timed, work, *args)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def _timed(self, work: Callable[..., T], *args: str) -> T:
        started = time.perf_counter()
        try:
            return work(*args)
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                self.completed += 1
                self.seconds += elapsed

    def _release(self, _: object = None) -> None:
        with self._lock:
            self._pending -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False)

"""argon2id hashing of key secrets, always off the event loop, in a small pool of its own.

The pool has one thread per core (argon2 is CPU-bound and releases the GIL, so more threads only
add memory: 19 MiB each) and, on Linux, its threads run at a lower scheduling priority than the
event loop, so a burst of key creations cannot starve the requests that need no argon2 (list,
help, warm verifies) of CPU.
"""

import asyncio
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


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
    """Hashes and verifies key plaintexts with argon2id."""

    def __init__(self, params: HashParams | None = None, *, threads: int | None = None) -> None:
        p = params or HashParams()
        self._ph = PasswordHasher(
            time_cost=p.time_cost, memory_cost=p.memory_kib, parallelism=p.parallelism, type=Type.ID
        )
        self._pool = ThreadPoolExecutor(
            max_workers=threads or os.cpu_count() or 2,
            thread_name_prefix="argon2",
            initializer=_lower_priority,
        )

    def hash_sync(self, plaintext: str) -> str:
        return self._ph.hash(plaintext)

    def verify_sync(self, digest: str, plaintext: str) -> bool:
        try:
            return self._ph.verify(digest, plaintext)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def hash(self, plaintext: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.hash_sync, plaintext)

    async def verify(self, digest: str, plaintext: str) -> bool:
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self.verify_sync, digest, plaintext
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False)

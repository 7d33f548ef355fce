"""argon2id hashing of key secrets, always off the event loop (``asyncio.to_thread``)."""

import asyncio
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


class Hasher:
    """Hashes and verifies key plaintexts with argon2id."""

    def __init__(self, params: HashParams | None = None) -> None:
        p = params or HashParams()
        self._ph = PasswordHasher(
            time_cost=p.time_cost, memory_cost=p.memory_kib, parallelism=p.parallelism, type=Type.ID
        )

    def hash_sync(self, plaintext: str) -> str:
        return self._ph.hash(plaintext)

    def verify_sync(self, digest: str, plaintext: str) -> bool:
        try:
            return self._ph.verify(digest, plaintext)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def hash(self, plaintext: str) -> str:
        return await asyncio.to_thread(self.hash_sync, plaintext)

    async def verify(self, digest: str, plaintext: str) -> bool:
        return await asyncio.to_thread(self.verify_sync, digest, plaintext)

"""Clocks that move only when told to, and an argon2 hasher that counts its work."""

from datetime import UTC, datetime, timedelta

from bot.domain.hashing import Hasher, HashParams


class FakeClock:
    """A wall clock (aware UTC)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2025, 1, 15, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta | None = None, /, **kwargs: float) -> datetime:
        self.now += delta if delta is not None else timedelta(**kwargs)
        return self.now


class FakeMonotonic:
    """A monotonic clock in seconds."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


class CountingHasher(Hasher):
    """A real argon2id hasher (cheapest profile by default) that counts hashes and verifications."""

    def __init__(self, params: HashParams | None = None) -> None:
        super().__init__(params or HashParams.cheapest())
        self.hashes = 0
        self.verifications = 0

    def hash_sync(self, plaintext: str) -> str:
        self.hashes += 1
        return super().hash_sync(plaintext)

    def verify_sync(self, digest: str, plaintext: str) -> bool:
        self.verifications += 1
        return super().verify_sync(digest, plaintext)

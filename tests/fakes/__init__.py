"""Hand-written fakes for unit tests: an in-memory store implementing ``bot/ports.py``, clocks that
move only when told to, and an argon2 hasher that counts its work."""

from bot.ports import DeadLetters, Health, KeyListing, Outbox, Retention, Transaction, UnitOfWork, VerifyReads
from tests.fakes.clocks import CountingHasher, FakeClock, FakeMonotonic
from tests.fakes.state import OutboxRow, State
from tests.fakes.store import MemoryStore
from tests.fakes.transaction import MemoryTransaction

__all__ = [
    "CountingHasher",
    "FakeClock",
    "FakeMonotonic",
    "MemoryStore",
    "MemoryTransaction",
    "OutboxRow",
    "State",
]


def _conforms(
    store: MemoryStore, tx: MemoryTransaction
) -> tuple[UnitOfWork, KeyListing, VerifyReads, Outbox, Health, DeadLetters, Retention, Transaction]:
    """Never called: lets mypy check that the fakes implement the ports."""
    return store, store, store, store, store, store, store, tx

"""Fixtures shared by the unit tests: an in-memory store, a controllable clock, argon2's cheapest profile."""

import sys
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:  # `bot` and `tests.fakes` importable without installing the project
    sys.path.insert(0, ROOT)

from bot.domain.hashing import HashParams  # noqa: E402
from bot.domain.keys import KeyFormat  # noqa: E402
from bot.domain.model import Actor  # noqa: E402
from bot.services import Keybot  # noqa: E402
from tests.fakes import CountingHasher, FakeClock, MemoryStore  # noqa: E402

TEAM = "T0001"
ORG_OWNER = Actor(team_id=TEAM, user_id="U0OWNER")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher(HashParams.cheapest())


@pytest.fixture
def key_format() -> KeyFormat:
    return KeyFormat()


@pytest.fixture
def keybot(store: MemoryStore, hasher: CountingHasher, key_format: KeyFormat, clock: FakeClock) -> Keybot:
    return Keybot(store, hasher=hasher, key_format=key_format, clock=clock)


@pytest.fixture
async def org(keybot: Keybot) -> Actor:
    """A bootstrapped workspace; returns its first org owner."""
    await keybot.bootstrap(team_id=ORG_OWNER.team_id, owner=ORG_OWNER.user_id, org_name="Acme")
    return ORG_OWNER

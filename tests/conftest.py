"""Fixtures shared by the unit tests: an in-memory store, a controllable clock, argon2's cheapest profile."""

import pytest

from bot.domain.keys import KeyFormat
from bot.domain.model import Actor
from bot.services import Context, Keybot, build_services
from tests.fakes import CountingHasher, FakeClock, MemoryStore

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
    return CountingHasher()


@pytest.fixture
def key_format() -> KeyFormat:
    return KeyFormat()


@pytest.fixture
def keybot(store: MemoryStore, hasher: CountingHasher, key_format: KeyFormat, clock: FakeClock) -> Keybot:
    return build_services(
        Context(uow=store, clock=clock), listing=store, hasher=hasher, key_format=key_format
    )


@pytest.fixture
async def org(keybot: Keybot) -> Actor:
    """A bootstrapped workspace; returns its first org owner."""
    await keybot.operators.bootstrap(team_id=ORG_OWNER.team_id, owner=ORG_OWNER.user_id, org_name="Acme")
    return ORG_OWNER

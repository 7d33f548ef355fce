"""The Verifier and the key lifecycle (DESIGN.md §5.1), on the in-memory store: EXPIRED on the injected
clock with no query on a warm key, DISABLED, ``expires_at`` / ``retiring_at`` in the answer, rolled
secrets, and revocation in both directions — at once on this instance, within ``recheck_after`` on
another (a key enabled again verifies again; nothing keeps a refusal)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from bot.domain.keys import KeyFormat
from bot.domain.model import Actor
from bot.services import Context, Keybot, build_services
from bot.services.verification import DISABLED, EXPIRED, NOT_FOUND, Verifier
from tests.fakes import CountingHasher, FakeClock, FakeMonotonic, MemoryStore

PROJECT = "payments"


@dataclass
class World:
    keybot: Keybot
    store: MemoryStore
    hasher: CountingHasher
    clock: FakeClock
    monotonic: FakeMonotonic
    owner: Actor
    here: Verifier  # the instance the changes go through (wired to the services' hooks)

    def instance(self) -> Verifier:
        """Another keybot instance on the same database."""
        return Verifier(
            self.store, hasher=self.hasher, key_format=KeyFormat(), clock=self.clock, monotonic=self.monotonic
        )

    async def key(self, name: str, **options: str) -> str:
        return (await self.keybot.keys.create(self.owner, project=PROJECT, name=name, **options)).plaintext

    def queries(self) -> int:
        return sum(self.store.calls[m] for m in ("verify_record", "key_state"))


@pytest.fixture
async def world(store: MemoryStore, hasher: CountingHasher, clock: FakeClock, key_format: KeyFormat) -> World:
    monotonic = FakeMonotonic()
    here = Verifier(store, hasher=hasher, key_format=key_format, clock=clock, monotonic=monotonic)
    keybot = build_services(
        Context(uow=store, clock=clock, on_key_revoked=here.forget, on_key_changed=here.forget_row),
        listing=store,
        hasher=hasher,
        key_format=key_format,
    )
    owner = Actor(team_id="T0001", user_id="U0OWNER")
    await keybot.operators.bootstrap(team_id=owner.team_id, owner=owner.user_id, org_name="Acme")
    await keybot.projects.create(owner, name=PROJECT)
    return World(keybot, store, hasher, clock, monotonic, owner, here)


async def test_a_valid_answer_carries_the_keys_expiry(world: World) -> None:
    key = await world.key("ci", expires="2025-03-01")
    answer = (await world.here.verify(key)).as_json()
    assert answer["valid"] is True and answer["expires_at"] == "2025-03-01T23:59:59+00:00"
    assert "retiring_at" not in answer
    assert (await world.here.verify(await world.key("forever"))).as_json()["expires_at"] is None


async def test_a_warm_key_answers_expired_from_the_first_second_after_its_expiry_with_no_query(
    world: World,
) -> None:
    key = await world.key("ci", expires="12h")
    expires_at = world.clock() + timedelta(hours=12)
    assert (await world.here.verify(key)).valid
    queries = world.queries()

    world.clock.now = expires_at
    assert (await world.here.verify(key)).valid  # its last valid moment
    world.clock.now = expires_at + timedelta(seconds=1)
    assert await world.here.verify(key) == EXPIRED
    assert await world.here.verify(key) == EXPIRED
    assert world.queries() == queries
    assert world.hasher.verifications == 1


async def test_a_cold_instance_answers_expired_only_for_the_right_secret(world: World) -> None:
    key = await world.key("ci", expires="1h")
    world.clock.advance(hours=2)
    assert await world.instance().verify(key) == EXPIRED
    wrong = key[:20] + ("A" if key[20] != "A" else "B") + key[21:]
    assert await world.instance().verify(KeyFormat().generate().plaintext) == NOT_FOUND
    assert wrong != key


async def test_a_disabled_key_answers_disabled_here_at_once_and_elsewhere_within_the_recheck(
    world: World,
) -> None:
    key = await world.key("ci")
    there = world.instance()
    assert (await world.here.verify(key)).valid and (await there.verify(key)).valid

    await world.keybot.lifecycle.disable(world.owner, project=PROJECT, name="ci")
    assert await world.here.verify(key) == DISABLED
    world.monotonic.advance(0.4)
    assert (await there.verify(key)).valid  # still inside recheck_after
    world.monotonic.advance(0.2)
    assert await there.verify(key) == DISABLED


async def test_a_key_enabled_again_verifies_again_everywhere_and_no_refusal_is_kept(world: World) -> None:
    key = await world.key("ci")
    there = world.instance()
    await world.keybot.lifecycle.disable(world.owner, project=PROJECT, name="ci")
    for _ in range(30):  # more than the failure budget, on both instances
        assert await world.here.verify(key) == DISABLED
        assert await there.verify(key) == DISABLED
    assert len(world.here._invalid) == len(there._invalid) == 0
    assert len(world.here._budget) == len(there._budget) == 0

    await world.keybot.lifecycle.enable(world.owner, project=PROJECT, name="ci")
    assert (await world.here.verify(key)).valid  # at once here
    assert await there.verify(key) == DISABLED  # cached there…
    world.monotonic.advance(0.5)
    assert (await there.verify(key)).valid  # …for at most recheck_after


async def test_disabled_answers_are_rechecked_like_valid_ones(world: World) -> None:
    key = await world.key("ci")
    await world.keybot.lifecycle.disable(world.owner, project=PROJECT, name="ci")
    there = world.instance()
    assert await there.verify(key) == DISABLED
    world.store.calls.clear()
    for _ in range(5):
        assert await there.verify(key) == DISABLED
    assert sum(world.store.calls.values()) == 0  # warm: no query inside recheck_after
    world.monotonic.advance(0.6)
    assert await there.verify(key) == DISABLED
    assert world.store.calls["key_state"] == 1 and world.store.calls["verify_record"] == 0


async def test_a_longer_expiry_set_elsewhere_makes_an_expired_key_verify_again(world: World) -> None:
    key = await world.key("ci", expires="1h")
    there = world.instance()
    assert (await there.verify(key)).valid
    world.clock.advance(hours=2)
    assert await there.verify(key) == EXPIRED
    assert await world.here.verify(key) == EXPIRED

    change = await world.keybot.lifecycle.set_expiry(world.owner, project=PROJECT, name="ci", when="30d")
    assert (await world.here.verify(key)).as_json()["expires_at"] == change.expires_at.isoformat()  # type: ignore[union-attr]
    assert await there.verify(key) == EXPIRED
    world.monotonic.advance(0.5)
    assert (await there.verify(key)).valid


async def test_a_rolled_keys_old_secret_works_until_its_grace_ends_then_answers_expired(world: World) -> None:
    old = await world.key("ci")
    assert (await world.here.verify(old)).valid
    rolled = await world.keybot.lifecycle.roll(world.owner, project=PROJECT, name="ci", grace="2h")

    new_answer = (await world.here.verify(rolled.plaintext)).as_json()
    old_answer = (await world.here.verify(old)).as_json()
    assert new_answer["valid"] is True and "retiring_at" not in new_answer
    assert old_answer["valid"] is True and old_answer["retiring_at"] == rolled.retiring_at.isoformat()
    assert old_answer["key_id"] != new_answer["key_id"] and old_answer["name"] == new_answer["name"] == "ci"

    queries = world.queries()
    world.clock.now = rolled.retiring_at - timedelta(seconds=1)
    assert (await world.here.verify(old)).valid
    world.clock.now = rolled.retiring_at
    assert await world.here.verify(old) == EXPIRED  # the grace is over: no query needed to know it
    assert world.queries() == queries
    assert (await world.here.verify(rolled.plaintext)).valid
    assert await world.instance().verify(old) == EXPIRED  # cold too


async def test_a_roll_with_no_grace_retires_the_old_secret_at_once(world: World) -> None:
    old = await world.key("ci")
    assert (await world.here.verify(old)).valid
    rolled = await world.keybot.lifecycle.roll(world.owner, project=PROJECT, name="ci", grace="0")
    assert await world.here.verify(old) == EXPIRED
    assert (await world.here.verify(rolled.plaintext)).valid


async def test_another_instance_learns_of_a_roll_within_the_recheck(world: World) -> None:
    old = await world.key("ci")
    there = world.instance()
    assert "retiring_at" not in (await there.verify(old)).as_json()
    rolled = await world.keybot.lifecycle.roll(world.owner, project=PROJECT, name="ci", grace="0")
    world.monotonic.advance(0.5)
    assert await there.verify(old) == EXPIRED
    grace = await world.keybot.lifecycle.roll(world.owner, project=PROJECT, name="ci", grace="1h")
    assert (await there.verify(rolled.plaintext)).valid
    world.monotonic.advance(0.5)
    assert (await there.verify(rolled.plaintext)).as_json()["retiring_at"] == grace.retiring_at.isoformat()
    assert (await there.verify(grace.plaintext)).valid


async def test_disabling_a_key_in_its_grace_disables_its_old_secret_too(world: World) -> None:
    old = await world.key("ci")
    rolled = await world.keybot.lifecycle.roll(world.owner, project=PROJECT, name="ci")
    there = world.instance()
    assert (await world.here.verify(old)).valid and (await there.verify(old)).valid
    await world.keybot.lifecycle.disable(world.owner, project=PROJECT, name="ci")
    assert await world.here.verify(old) == DISABLED
    assert await world.here.verify(rolled.plaintext) == DISABLED
    world.monotonic.advance(0.5)
    assert await there.verify(old) == DISABLED


async def test_deleting_a_rolled_key_fails_its_old_secret_at_once_here(world: World) -> None:
    old = await world.key("ci")
    rolled = await world.keybot.lifecycle.roll(world.owner, project=PROJECT, name="ci")
    assert (await world.here.verify(old)).valid and (await world.here.verify(rolled.plaintext)).valid
    ask = await world.keybot.keys.request_delete(world.owner, project=PROJECT, name="ci")
    await world.keybot.keys.confirm_delete(world.owner, token=ask.token)
    assert await world.here.verify(old) == NOT_FOUND
    assert await world.here.verify(rolled.plaintext) == NOT_FOUND


async def test_a_change_while_a_first_verification_hashes_is_not_undone_by_it(world: World) -> None:
    """The generation guard: a disable committed on this instance during the argon2 check wins."""
    key = await world.key("ci")
    verifier = world.here
    original = world.hasher.verify

    async def verify_then_disable(digest: str, plaintext: str) -> bool:
        matched = await original(digest, plaintext)
        await world.keybot.lifecycle.disable(world.owner, project=PROJECT, name="ci")
        return matched

    world.hasher.verify = verify_then_disable  # type: ignore[method-assign]
    assert await verifier.verify(key) == DISABLED
    world.hasher.verify = original  # type: ignore[method-assign]
    assert await verifier.verify(key) == DISABLED


def _at(answer: dict[str, object], field: str) -> datetime:
    value = answer[field]
    assert isinstance(value, str)
    return datetime.fromisoformat(value)


async def test_answer_times_are_iso_8601_with_their_offset(world: World) -> None:
    key = await world.key("ci", expires="2w")
    answer = (await world.here.verify(key)).as_json()
    assert _at(answer, "expires_at") == world.clock() + timedelta(weeks=2)
    assert _at(answer, "expires_at").utcoffset() == timedelta(0)

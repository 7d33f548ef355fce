"""The verifier's rules that mutation testing (``make mutate``) showed no test held: a verification that
overlaps a delete on this instance, ``forget`` of a key never cached, the revocation hook, the bounded
caches and the failure budget's bookkeeping, the recheck boundary, and answers as the API sends them."""

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from bot.domain.hashing import Hasher
from bot.domain.keys import BASE62, KEY_ID_LEN, SECRET_LEN, KeyFormat, checksum
from bot.domain.model import Actor
from bot.services import Context, Keybot, build_services
from bot.services.results import CreatedKey
from bot.services.verification import FailureBudget, Verifier
from tests.fakes import CountingHasher, FakeClock, FakeMonotonic, MemoryStore

NOT_FOUND_JSON = {"valid": False, "code": "NOT_FOUND"}


class GatedHasher(CountingHasher):
    """argon2 whose every ``verify`` waits until the test opens ``gate``; ``waiting`` counts arrivals."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.waiting = 0

    async def verify(self, digest: str, plaintext: str) -> bool:
        self.waiting += 1
        await self.gate.wait()
        return await super().verify(digest, plaintext)


@dataclass
class World:
    store: MemoryStore
    hasher: CountingHasher
    clock: FakeClock
    monotonic: FakeMonotonic
    owner: Actor
    revoked: list[str]

    def keybot(self, **hooks: Any) -> Keybot:
        context = Context(uow=self.store, clock=self.clock, **hooks)
        return build_services(context, listing=self.store, hasher=self.hasher, key_format=KeyFormat())

    def verifier(self, *, hasher: Hasher | None = None, **bounds: Any) -> Verifier:
        return Verifier(
            self.store,
            hasher=hasher or self.hasher,
            key_format=KeyFormat(),
            clock=self.clock,
            monotonic=self.monotonic,
            **bounds,
        )

    async def create(self, name: str) -> CreatedKey:
        return await self.keybot().keys.create(self.owner, project="payments", name=name)

    async def delete(self, name: str, keybot: Keybot | None = None) -> None:
        bot = keybot or self.keybot()
        request = await bot.keys.request_delete(self.owner, project="payments", name=name)
        await bot.keys.confirm_delete(self.owner, token=request.token)


@pytest.fixture
async def world(store: MemoryStore, hasher: CountingHasher, clock: FakeClock, org: Actor, keybot: Keybot) -> World:
    await keybot.projects.create(org, name="payments")
    return World(store, hasher, clock, FakeMonotonic(), org, [])


def key_id_of(key: CreatedKey) -> str:
    return key.plaintext.split("_")[1]


def minted(n: int) -> str:
    """A well-formed key whose key id no key has."""
    body = f"kb_{'Y' * (KEY_ID_LEN - 2)}{BASE62[n % 62]}{BASE62[n // 62 % 62]}_{'Q' * SECRET_LEN}"
    return body + checksum(body)


async def wait_until(condition: Any) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0)


# --- a verification that overlaps a delete on this instance -------------------------------------------


async def test_a_key_deleted_and_forgotten_while_its_argon2_runs_is_not_revived(world: World) -> None:
    key = await world.create("ci")
    hasher = GatedHasher()
    verifier = world.verifier(hasher=hasher)
    pending = asyncio.create_task(verifier.verify(key.plaintext))
    await wait_until(lambda: hasher.waiting == 1)  # the row was read; argon2 is running

    await world.delete("ci")
    verifier.forget(key_id_of(key))
    hasher.gate.set()

    assert (await pending).as_json() == NOT_FOUND_JSON
    assert (await verifier.verify(key.plaintext)).as_json() == NOT_FOUND_JSON
    await verifier.aclose()


async def test_a_second_forget_during_argon2_still_stops_the_revival(world: World) -> None:
    """The guard compares a counter: it must move on every forget, not only on the first one."""
    key = await world.create("ci")
    hasher = GatedHasher()
    verifier = world.verifier(hasher=hasher)
    verifier.forget("AAAAAAAAAA")  # an earlier, unrelated forget
    pending = asyncio.create_task(verifier.verify(key.plaintext))
    await wait_until(lambda: hasher.waiting == 1)

    await world.delete("ci")
    verifier.forget(key_id_of(key))
    hasher.gate.set()

    assert (await pending).as_json() == NOT_FOUND_JSON
    await verifier.aclose()


async def test_forgetting_another_key_during_argon2_does_not_refuse_this_one(world: World) -> None:
    key = await world.create("ci")
    other = await world.create("web")
    hasher = GatedHasher()
    verifier = world.verifier(hasher=hasher)
    pending = asyncio.create_task(verifier.verify(key.plaintext))
    await wait_until(lambda: hasher.waiting == 1)

    await world.delete("web")
    verifier.forget(key_id_of(other))
    hasher.gate.set()

    verdict = await pending
    assert verdict.valid and verdict.name == "ci"
    world.store.calls.clear()
    assert (await verifier.verify(key.plaintext)).valid  # and it was cached: no query, no argon2
    assert sum(world.store.calls.values()) == 0
    assert hasher.verifications == 1
    await verifier.aclose()


async def test_a_verification_that_overlaps_no_forget_pays_no_extra_query(world: World) -> None:
    key = await world.create("ci")
    verifier = world.verifier()
    world.store.calls.clear()
    assert (await verifier.verify(key.plaintext)).valid
    assert world.store.calls["verify_record"] == 1
    assert sum(world.store.calls.values()) - world.store.calls["touch_key"] == 1
    await verifier.aclose()


# --- forget, and the hook that calls it after a delete --------------------------------------------------


def test_forgetting_a_key_this_instance_never_cached_is_harmless(world: World) -> None:
    verifier = world.verifier()
    verifier.forget("NEVERSEEN1")
    verifier.forget("NEVERSEEN1")


async def test_the_delete_hook_gets_the_public_key_id_of_the_deleted_key(world: World) -> None:
    key = await world.create("ci")
    revoked: list[str] = []
    await world.delete("ci", world.keybot(on_key_revoked=revoked.append))
    assert revoked == [key_id_of(key)]


async def test_a_cancelled_or_refused_delete_calls_no_hook(world: World) -> None:
    await world.create("ci")
    revoked: list[str] = []
    keybot = world.keybot(on_key_revoked=revoked.append)
    request = await keybot.keys.request_delete(world.owner, project="payments", name="ci")
    await keybot.keys.cancel_delete(world.owner, token=request.token)
    assert revoked == []


async def test_deleting_a_key_this_instance_never_verified_completes_with_the_verifier_wired(
    world: World,
) -> None:
    await world.create("ci")
    verifier = world.verifier()
    keybot = world.keybot(on_key_revoked=verifier.forget)
    request = await keybot.keys.request_delete(world.owner, project="payments", name="ci")
    deleted = await keybot.keys.confirm_delete(world.owner, token=request.token)
    assert deleted.name == "ci"
    assert not [r for r in world.store.state.keys.values() if r.name == "ci"]


async def test_with_the_hook_wired_a_cached_key_fails_at_once_after_its_delete(world: World) -> None:
    key = await world.create("ci")
    other = await world.create("web")
    verifier = world.verifier()
    assert (await verifier.verify(key.plaintext)).valid
    assert (await verifier.verify(other.plaintext)).valid

    await world.delete("ci", world.keybot(on_key_revoked=verifier.forget))

    assert (await verifier.verify(key.plaintext)).as_json() == NOT_FOUND_JSON  # no recheck was due
    world.store.calls.clear()
    assert (await verifier.verify(other.plaintext)).valid
    assert sum(world.store.calls.values()) == 0
    await verifier.aclose()


# --- the recheck of a cached key -------------------------------------------------------------------------


async def test_a_cached_key_is_rechecked_once_exactly_recheck_after_has_passed(world: World) -> None:
    key = await world.create("ci")
    verifier = world.verifier(recheck_after=0.5)
    assert (await verifier.verify(key.plaintext)).valid
    world.monotonic.advance(0.25)
    world.store.calls.clear()
    assert (await verifier.verify(key.plaintext)).valid
    assert sum(world.store.calls.values()) == 0
    world.monotonic.advance(0.25)  # exactly 0.5 s after it was checked
    assert (await verifier.verify(key.plaintext)).valid
    assert sum(world.store.calls.values()) == 1
    assert world.hasher.verifications == 1
    await verifier.aclose()


async def test_a_key_found_deleted_on_recheck_is_refused_afterwards_without_a_query(world: World) -> None:
    key = await world.create("ci")
    verifier = world.verifier()
    assert (await verifier.verify(key.plaintext)).valid
    await world.delete("ci")
    world.monotonic.advance(1)
    assert (await verifier.verify(key.plaintext)).as_json() == NOT_FOUND_JSON
    world.store.calls.clear()
    for _ in range(3):
        assert (await verifier.verify(key.plaintext)).as_json() == NOT_FOUND_JSON
    assert sum(world.store.calls.values()) == 0
    await verifier.aclose()


async def test_a_key_found_deleted_on_recheck_leaves_the_cache(world: World) -> None:
    """Once its refusal is evicted, the deleted key is looked up by key id again, like any unknown key,
    instead of being answered from a stale cache entry."""
    key = await world.create("ci")
    verifier = world.verifier(max_refused=1)
    assert (await verifier.verify(key.plaintext)).valid
    await world.delete("ci")
    world.monotonic.advance(1)
    assert (await verifier.verify(key.plaintext)).as_json() == NOT_FOUND_JSON
    assert (await verifier.verify(minted(1))).as_json() == NOT_FOUND_JSON  # evicts that refusal
    world.store.calls.clear()
    assert (await verifier.verify(key.plaintext)).as_json() == NOT_FOUND_JSON
    assert world.store.calls["verify_record"] == 1
    await verifier.aclose()


# --- the bounded cache of valid keys ---------------------------------------------------------------------


async def test_the_cache_of_valid_keys_holds_max_entries_and_evicts_the_oldest(world: World) -> None:
    first, second, third = [await world.create(name) for name in ("a", "b", "c")]
    verifier = world.verifier(max_entries=2)
    for key in (first, second, third):
        assert (await verifier.verify(key.plaintext)).valid
    assert world.hasher.verifications == 3

    assert (await verifier.verify(third.plaintext)).valid  # the newest two stay warm
    assert (await verifier.verify(second.plaintext)).valid
    assert world.hasher.verifications == 3
    assert (await verifier.verify(first.plaintext)).valid  # the oldest was evicted: argon2 again
    assert world.hasher.verifications == 4
    await verifier.aclose()


async def test_forgetting_an_evicted_key_leaves_the_keys_still_cached_warm(world: World) -> None:
    first, second, third = [await world.create(name) for name in ("a", "b", "c")]
    verifier = world.verifier(max_entries=2)
    for key in (first, second, third):
        assert (await verifier.verify(key.plaintext)).valid
    verifier.forget(key_id_of(first))
    world.store.calls.clear()
    assert (await verifier.verify(second.plaintext)).valid
    assert (await verifier.verify(third.plaintext)).valid
    assert sum(world.store.calls.values()) == 0
    assert world.hasher.verifications == 3
    await verifier.aclose()


async def test_a_cache_of_one_keeps_only_the_latest_key(world: World) -> None:
    first, second = await world.create("a"), await world.create("b")
    verifier = world.verifier(max_entries=1)
    for _ in range(2):
        assert (await verifier.verify(first.plaintext)).valid
        assert (await verifier.verify(second.plaintext)).valid
    assert world.hasher.verifications == 4
    await verifier.aclose()


def test_the_default_bounds_are_the_documented_ones(world: World) -> None:
    """100,000 cached keys and refusals, 20 wrong secrets per key id a minute for 10,000 key ids (the
    module docstring of bot/services/verification.py)."""
    verifier = Verifier(world.store, hasher=world.hasher, key_format=KeyFormat(), clock=world.clock)
    assert (verifier._max, verifier._max_refused) == (100_000, 100_000)
    assert (verifier._budget._limit, verifier._budget._window, verifier._budget._max) == (20, 60.0, 10_000)
    assert verifier._recheck_after == 0.5


async def test_the_key_id_and_row_indexes_never_outgrow_the_cache(world: World) -> None:
    keys = [await world.create(name) for name in ("a", "b", "c", "d")]
    verifier = world.verifier(max_entries=2)
    for key in keys:
        assert (await verifier.verify(key.plaintext)).valid
    await world.delete("d")
    world.monotonic.advance(1)
    assert (await verifier.verify(keys[3].plaintext)).as_json() == NOT_FOUND_JSON  # dropped on recheck
    assert len(verifier._valid) == 1
    assert set(verifier._by_key_id) == {key_id_of(keys[2])}
    assert verifier._by_row == {r: ds for r, ds in verifier._by_row.items() if ds} and len(verifier._by_row) == 1
    assert sum(len(ds) for ds in verifier._by_row.values()) == 1
    await verifier.aclose()


class YieldingStates:
    """The verifier's reads, with every state query giving way to other tasks first (as a database
    round trip does), so that two verifications can both be inside one."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner

    async def verify_record(self, key_id: str) -> Any:
        return await self.inner.verify_record(key_id)

    async def key_state(self, row_id: int, *, key_id: str) -> Any:
        await asyncio.sleep(0)
        return await self.inner.key_state(row_id, key_id=key_id)

    async def touch_key(self, row_id: int, *, at: Any) -> None:
        await self.inner.touch_key(row_id, at=at)


async def test_two_rechecks_that_both_find_a_key_deleted_both_answer_not_found(world: World) -> None:
    key = await world.create("ci")
    verifier = Verifier(
        YieldingStates(world.store), hasher=world.hasher, key_format=KeyFormat(), clock=world.clock,
        monotonic=world.monotonic,
    )
    assert (await verifier.verify(key.plaintext)).valid
    await world.delete("ci")
    world.monotonic.advance(1)
    answers = await asyncio.gather(verifier.verify(key.plaintext), verifier.verify(key.plaintext))
    assert [a.as_json() for a in answers] == [NOT_FOUND_JSON, NOT_FOUND_JSON]
    await verifier.aclose()


# --- rolled and changed keys ------------------------------------------------------------------------------


async def test_a_second_forget_row_during_argon2_still_stops_the_revival(world: World) -> None:
    await world.create("ci")
    key = await world.create("web")
    hasher = GatedHasher()
    verifier = world.verifier(hasher=hasher)
    verifier.forget_row(12345)  # an earlier, unrelated change on this instance
    pending = asyncio.create_task(verifier.verify(key.plaintext))
    await wait_until(lambda: hasher.waiting == 1)
    await world.delete("web", world.keybot(on_key_changed=verifier.forget_row))
    hasher.gate.set()
    assert (await pending).as_json() == NOT_FOUND_JSON
    await verifier.aclose()


async def test_an_old_secret_first_verified_while_another_key_changes_here_still_verifies(world: World) -> None:
    old = await world.create("ci")
    rolled = await world.keybot().lifecycle.roll(world.owner, project="payments", name="ci", grace="2h")
    hasher = GatedHasher()
    verifier = world.verifier(hasher=hasher)
    pending = asyncio.create_task(verifier.verify(old.plaintext))
    await wait_until(lambda: hasher.waiting == 1)
    verifier.forget_row(12345)  # a change to some other key on this instance, while argon2 runs
    hasher.gate.set()
    answer = (await pending).as_json()
    assert answer["valid"] is True
    assert answer["retiring_at"] == rolled.retiring_at.isoformat()  # type: ignore[union-attr]
    await verifier.aclose()


async def test_a_cached_secret_that_no_longer_belongs_to_its_key_is_refused_on_recheck(world: World) -> None:
    """The key was rolled elsewhere and its old secret's record is gone (purged, as after its grace):
    the cached old secret must not keep verifying on the state it had."""
    first = await world.create("ci")
    there = world.verifier()
    assert (await there.verify(first.plaintext)).valid
    await world.keybot().lifecycle.roll(world.owner, project="payments", name="ci", grace="1h")
    del world.store.state.retired[key_id_of(first)]
    world.monotonic.advance(0.5)
    assert (await there.verify(first.plaintext)).as_json() == NOT_FOUND_JSON
    await there.aclose()


async def test_a_shorter_expiry_set_elsewhere_expires_a_cached_key_within_the_recheck(world: World) -> None:
    key = await world.create("ci")
    there = world.verifier()
    assert (await there.verify(key.plaintext)).valid
    await world.keybot().lifecycle.set_expiry(world.owner, project="payments", name="ci", when="1h")
    world.clock.advance(hours=2)
    world.monotonic.advance(0.5)
    assert (await there.verify(key.plaintext)).as_json() == {"valid": False, "code": "EXPIRED"}
    await there.aclose()


# --- the failure budget's bookkeeping ---------------------------------------------------------------------


def test_a_check_that_ends_leaves_the_others_in_flight_counted() -> None:
    budget = FailureBudget(limit=2, window=60, max_key_ids=10, monotonic=FakeMonotonic())
    budget.begin("a")
    budget.begin("a")
    budget.end("a", failed=True)
    assert budget.exhausted("a")  # one failure and one check still running


def test_a_success_while_another_check_runs_keeps_its_tally() -> None:
    budget = FailureBudget(limit=1, window=60, max_key_ids=10, monotonic=FakeMonotonic())
    budget.begin("a")
    budget.begin("a")
    budget.end("a", failed=False)
    assert len(budget) == 1
    budget.end("a", failed=True)
    assert budget.exhausted("a")


def test_a_key_id_under_a_long_attack_keeps_at_most_its_limit_of_failure_times() -> None:
    clock = FakeMonotonic()
    budget = FailureBudget(limit=3, window=60, max_key_ids=10, monotonic=clock)
    for _ in range(50):  # 50 windows, each used up
        for _ in range(3):
            budget.begin("a")
            budget.end("a", failed=True)
        clock.advance(61)
    assert len(budget._tallies["a"].failures) == 3


# --- answers and background work ---------------------------------------------------------------------------


async def test_refusals_carry_their_code_in_the_api_body(world: World) -> None:
    verifier = world.verifier()
    assert (await verifier.verify("not a key")).as_json() == {"valid": False, "code": "MALFORMED"}
    assert (await verifier.verify(minted(2))).as_json() == {"valid": False, "code": "NOT_FOUND"}


async def test_a_failing_last_used_update_never_breaks_shutdown(world: World) -> None:
    key = await world.create("ci")
    verifier = world.verifier()
    assert (await verifier.verify(key.plaintext)).valid  # schedules the last-used update
    world.store.down = True
    await verifier.aclose()
    assert world.store.calls["touch_key"] == 1  # it ran, and raised Unavailable


async def test_finished_last_used_updates_are_not_kept(world: World) -> None:
    keys = [await world.create(name) for name in ("a", "b", "c")]
    verifier = world.verifier()
    for key in keys:
        assert (await verifier.verify(key.plaintext)).valid
    await verifier.aclose()
    await asyncio.sleep(0)  # done callbacks run
    assert world.store.calls["touch_key"] == 3
    assert not verifier._background

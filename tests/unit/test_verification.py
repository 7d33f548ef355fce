"""The Verifier (bot/services/verification.py) on the in-memory store: cost model, cache and revocation."""

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from bot.domain.errors import Busy
from bot.domain.hashing import Hasher
from bot.domain.keys import BASE62, KEY_ID_LEN, SECRET_LEN, KeyFormat, checksum
from bot.domain.model import Actor, KeyState, VerifyRecord
from bot.services import Keybot
from bot.services.results import CreatedKey
from bot.services.verification import MALFORMED, NOT_FOUND, FailureBudget, Verifier
from tests.fakes import CountingHasher, FakeClock, FakeMonotonic, MemoryStore


@dataclass
class Setup:
    keybot: Keybot
    store: MemoryStore
    hasher: CountingHasher
    clock: FakeClock
    monotonic: FakeMonotonic
    owner: Actor
    key: CreatedKey

    def verifier(self, *, recheck_after: float = 0.5, hasher: Hasher | None = None, **bounds: Any) -> Verifier:
        return Verifier(
            self.store,
            hasher=hasher or self.hasher,
            key_format=KeyFormat(),
            recheck_after=recheck_after,
            monotonic=self.monotonic,
            clock=self.clock,
            **bounds,
        )

    async def delete(self, name: str = "default") -> None:
        request = await self.keybot.keys.request_delete(self.owner, project="payments", name=name)
        await self.keybot.keys.confirm_delete(self.owner, token=request.token)

    def key_row(self) -> int:
        [row_id] = [r.id for r in self.store.state.keys.values() if r.masked == self.key.masked]
        return row_id


@pytest.fixture
async def setup(
    keybot: Keybot, store: MemoryStore, hasher: CountingHasher, clock: FakeClock, org: Actor
) -> Setup:
    key = await keybot.projects.create(org, name="payments")
    return Setup(keybot, store, hasher, clock, FakeMonotonic(), org, key)


def key_id_of(plaintext: str) -> str:
    return plaintext.split("_")[1]


async def test_a_valid_key_verifies(setup: Setup) -> None:
    verifier = setup.verifier()
    verdict = await verifier.verify(setup.key.plaintext)
    assert verdict.valid
    assert verdict.as_json() == {
        "valid": True,
        "key_id": key_id_of(setup.key.plaintext),
        "project": "payments",
        "org": "Acme",
        "name": "default",
        "expires_at": None,
    }
    await verifier.aclose()


@pytest.mark.parametrize(
    "text",
    ["", "kb_", "hello", "kb_" + "A" * 38, "sk_live_abcdef", "kb_\x00", " " * 41],
)
async def test_a_malformed_key_costs_no_store_call_and_no_argon2(setup: Setup, text: str) -> None:
    verifier = setup.verifier()
    setup.store.calls.clear()
    hashed = setup.hasher.verifications
    assert await verifier.verify(text) == MALFORMED
    assert sum(setup.store.calls.values()) == 0
    assert setup.hasher.verifications == hashed


async def test_a_mistyped_real_key_is_malformed_without_a_store_call(setup: Setup) -> None:
    verifier = setup.verifier()
    key = setup.key.plaintext
    setup.store.calls.clear()
    for i in range(len(key)):
        for c in "0aZ_-":
            if c != key[i]:
                assert await verifier.verify(key[:i] + c + key[i + 1 :]) == MALFORMED
    assert await verifier.verify(key[:-1]) == MALFORMED
    assert await verifier.verify(key + "0") == MALFORMED
    assert sum(setup.store.calls.values()) == 0
    assert setup.hasher.verifications == 0


async def test_an_unknown_key_id_and_a_wrong_secret_get_the_same_verdict(setup: Setup) -> None:
    verifier = setup.verifier()
    fmt = KeyFormat()
    unknown = fmt.generate().plaintext
    body = f"kb_{key_id_of(setup.key.plaintext)}_{fmt.generate().plaintext.split('_')[2][:22]}"
    wrong_secret = body + checksum(body)
    assert fmt.parse(wrong_secret).key_id == key_id_of(setup.key.plaintext)

    unknown_verdict = await verifier.verify(unknown)
    wrong_verdict = await verifier.verify(wrong_secret)
    assert unknown_verdict == wrong_verdict == NOT_FOUND
    assert unknown_verdict.as_json() == wrong_verdict.as_json() == {"valid": False, "code": "NOT_FOUND"}
    assert setup.hasher.verifications == 1  # argon2 only where a row exists
    assert (await verifier.verify(setup.key.plaintext)).valid
    await verifier.aclose()


async def test_a_rejected_key_is_not_hashed_again(setup: Setup) -> None:
    verifier = setup.verifier()
    body = f"kb_{key_id_of(setup.key.plaintext)}_{'A' * 22}"
    wrong = body + checksum(body)
    assert await verifier.verify(wrong) == NOT_FOUND
    assert await verifier.verify(wrong) == NOT_FOUND
    assert setup.hasher.verifications == 1
    assert setup.store.calls["verify_record"] == 1


async def test_a_warm_key_skips_argon2_and_the_lookup(setup: Setup) -> None:
    verifier = setup.verifier()
    for _ in range(5):
        assert (await verifier.verify(setup.key.plaintext)).valid
    assert setup.hasher.verifications == 1
    assert setup.store.calls["verify_record"] == 1
    assert setup.store.calls["key_state"] == 0
    await verifier.aclose()


async def test_an_old_cache_entry_is_rechecked_by_its_state_not_argon2(setup: Setup) -> None:
    verifier = setup.verifier()
    assert (await verifier.verify(setup.key.plaintext)).valid
    setup.monotonic.advance(0.6)
    assert (await verifier.verify(setup.key.plaintext)).valid
    assert setup.store.calls["key_state"] == 1
    assert setup.hasher.verifications == 1
    assert (await verifier.verify(setup.key.plaintext)).valid
    assert setup.store.calls["key_state"] == 1  # fresh again after the recheck
    await verifier.aclose()


async def test_forget_makes_a_deleted_key_fail_at_once(setup: Setup) -> None:
    verifier = setup.verifier()
    assert (await verifier.verify(setup.key.plaintext)).valid
    await setup.delete()
    verifier.forget(key_id_of(setup.key.plaintext))
    assert await verifier.verify(setup.key.plaintext) == NOT_FOUND
    await verifier.aclose()


async def test_without_forget_the_cache_would_still_pass_a_deleted_key(setup: Setup) -> None:
    """The control for the test above: the cache really is what forget() clears."""
    verifier = setup.verifier()
    assert (await verifier.verify(setup.key.plaintext)).valid
    await setup.delete()
    assert (await verifier.verify(setup.key.plaintext)).valid
    await verifier.aclose()


async def test_forget_leaves_other_keys_cached(setup: Setup) -> None:
    other = await setup.keybot.keys.create(setup.owner, project="payments", name="ci")
    verifier = setup.verifier()
    assert (await verifier.verify(setup.key.plaintext)).valid
    assert (await verifier.verify(other.plaintext)).valid
    verifier.forget(key_id_of(setup.key.plaintext))
    assert (await verifier.verify(other.plaintext)).valid
    assert setup.hasher.verifications == 2
    await verifier.aclose()


async def test_another_instance_rejects_a_deleted_key_once_recheck_after_has_elapsed(setup: Setup) -> None:
    here, there = setup.verifier(), setup.verifier()
    assert (await here.verify(setup.key.plaintext)).valid
    assert (await there.verify(setup.key.plaintext)).valid
    await setup.delete()
    here.forget(key_id_of(setup.key.plaintext))
    assert await here.verify(setup.key.plaintext) == NOT_FOUND

    setup.monotonic.advance(0.4)
    assert (await there.verify(setup.key.plaintext)).valid  # still inside recheck_after
    setup.monotonic.advance(0.2)
    assert await there.verify(setup.key.plaintext) == NOT_FOUND
    assert await there.verify(setup.key.plaintext) == NOT_FOUND
    await here.aclose()
    await there.aclose()


async def test_with_default_settings_another_instance_rejects_a_deleted_key_within_one_second(
    setup: Setup,
) -> None:
    there = Verifier(
        setup.store, hasher=setup.hasher, key_format=KeyFormat(), clock=setup.clock, monotonic=setup.monotonic
    )
    assert (await there.verify(setup.key.plaintext)).valid
    await setup.delete()
    setup.monotonic.advance(1.0)
    assert await there.verify(setup.key.plaintext) == NOT_FOUND
    await there.aclose()


async def test_a_deleted_key_never_verifies_on_a_cold_instance(setup: Setup) -> None:
    await setup.delete()
    assert await setup.verifier().verify(setup.key.plaintext) == NOT_FOUND


async def test_last_used_is_touched_at_most_once_a_minute(setup: Setup) -> None:
    verifier = setup.verifier()
    row_id = setup.key_row()
    assert setup.store.state.keys[row_id].last_used_at is None
    first = setup.clock()
    assert (await verifier.verify(setup.key.plaintext)).valid
    await verifier.aclose()
    assert setup.store.state.keys[row_id].last_used_at == first
    assert setup.store.calls["touch_key"] == 1

    for _ in range(5):
        setup.clock.advance(seconds=10)
        setup.monotonic.advance(1.0)  # past recheck_after too: rechecks do not touch either
        assert (await verifier.verify(setup.key.plaintext)).valid
    await verifier.aclose()
    assert setup.store.calls["touch_key"] == 1
    assert setup.store.state.keys[row_id].last_used_at == first

    setup.clock.advance(seconds=10)
    assert (await verifier.verify(setup.key.plaintext)).valid
    await verifier.aclose()
    assert setup.store.calls["touch_key"] == 2
    assert setup.store.state.keys[row_id].last_used_at == setup.clock()


async def test_a_cold_instance_does_not_touch_a_key_used_within_the_minute(setup: Setup) -> None:
    first = setup.verifier()
    assert (await first.verify(setup.key.plaintext)).valid
    await first.aclose()
    setup.clock.advance(seconds=30)
    second = setup.verifier()
    assert (await second.verify(setup.key.plaintext)).valid
    await second.aclose()
    assert setup.store.calls["touch_key"] == 1


async def test_verdicts_never_carry_the_plaintext(setup: Setup) -> None:
    verifier = setup.verifier()
    verdict = await verifier.verify(setup.key.plaintext)
    secret = setup.key.plaintext.split("_", 2)[2][:22]
    assert secret not in repr(verdict) and secret not in str(verdict.as_json())
    await verifier.aclose()


# --- abuse: the per-key-id failure budget, the bounded refusal cache, a full argon2 lane -------------


def guess(key_id: str, n: int) -> str:
    """A well-formed key (right CRC) for ``key_id`` with the ``n``-th made-up secret."""
    body = f"kb_{key_id}_{BASE62[n % 62]}{BASE62[n // 62 % 62]}{'G' * (SECRET_LEN - 2)}"
    return body + checksum(body)


def minted(n: int) -> str:
    """A well-formed key whose key id no key has."""
    body = f"kb_{'Z' * (KEY_ID_LEN - 2)}{BASE62[n % 62]}{BASE62[n // 62 % 62]}_{'Q' * SECRET_LEN}"
    return body + checksum(body)


class GatedHasher(CountingHasher):
    """Counts argon2 verifies; each waits inside ``verify`` until the test opens ``gate``."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.waiting = 0

    async def verify(self, digest: str, plaintext: str) -> bool:
        self.waiting += 1
        await self.gate.wait()
        return await super().verify(digest, plaintext)


class FullLane(CountingHasher):
    """A verify lane that is full until ``full`` is set to False."""

    full = True

    async def verify(self, digest: str, plaintext: str) -> bool:
        if self.full:
            raise Busy("busy", retry_after=1)
        return await super().verify(digest, plaintext)


async def test_past_the_budget_a_wrong_secret_costs_no_argon2_and_no_query(setup: Setup) -> None:
    verifier = setup.verifier(max_failures=3, failure_window=60)
    key_id = key_id_of(setup.key.plaintext)
    for n in range(3):
        assert await verifier.verify(guess(key_id, n)) == NOT_FOUND
    assert setup.hasher.verifications == 3
    setup.store.calls.clear()

    for n in range(3, 50):
        assert await verifier.verify(guess(key_id, n)) == NOT_FOUND
    assert setup.hasher.verifications == 3
    assert sum(setup.store.calls.values()) == 0


async def test_the_default_budget_is_twenty_wrong_secrets_a_minute(setup: Setup) -> None:
    verifier = setup.verifier()
    key_id = key_id_of(setup.key.plaintext)
    for n in range(40):
        assert await verifier.verify(guess(key_id, n)) == NOT_FOUND
    assert setup.hasher.verifications == 20
    setup.monotonic.advance(59.9)
    assert await verifier.verify(guess(key_id, 40)) == NOT_FOUND
    assert setup.hasher.verifications == 20
    setup.monotonic.advance(0.2)
    assert await verifier.verify(guess(key_id, 41)) == NOT_FOUND
    assert setup.hasher.verifications == 21


async def test_a_cached_valid_key_keeps_verifying_with_no_argon2_and_no_query_when_its_id_is_over_budget(
    setup: Setup,
) -> None:
    verifier = setup.verifier(max_failures=2)
    assert (await verifier.verify(setup.key.plaintext)).valid
    key_id = key_id_of(setup.key.plaintext)
    for n in range(10):
        assert await verifier.verify(guess(key_id, n)) == NOT_FOUND
    setup.store.calls.clear()
    hashed = setup.hasher.verifications
    for _ in range(5):
        assert (await verifier.verify(setup.key.plaintext)).valid
    assert setup.hasher.verifications == hashed
    assert sum(setup.store.calls.values()) == 0
    await verifier.aclose()


async def test_a_key_id_over_budget_leaves_other_key_ids_alone(setup: Setup) -> None:
    other = await setup.keybot.keys.create(setup.owner, project="payments", name="ci")
    verifier = setup.verifier(max_failures=2)
    for n in range(10):
        assert await verifier.verify(guess(key_id_of(setup.key.plaintext), n)) == NOT_FOUND
    assert (await verifier.verify(other.plaintext)).valid  # first time here: pays its argon2
    assert setup.hasher.verifications == 3
    assert await verifier.verify(guess(key_id_of(other.plaintext), 0)) == NOT_FOUND
    assert setup.hasher.verifications == 4
    await verifier.aclose()


async def test_a_key_first_seen_while_its_id_is_over_budget_is_refused_until_the_window_passes(
    setup: Setup,
) -> None:
    """The price of the budget, stated: a key not yet cached on this instance is refused like a guess
    while its key id is under attack, and verifies again once the failures leave the window."""
    verifier = setup.verifier(max_failures=2, failure_window=60)
    for n in range(2):
        assert await verifier.verify(guess(key_id_of(setup.key.plaintext), n)) == NOT_FOUND
    assert await verifier.verify(setup.key.plaintext) == NOT_FOUND
    setup.monotonic.advance(61)
    assert (await verifier.verify(setup.key.plaintext)).valid
    await verifier.aclose()


async def test_checks_in_flight_count_against_the_budget(setup: Setup) -> None:
    """Many guesses at once for one key id: only ``max_failures`` reach argon2 even before any fails."""
    hasher = GatedHasher()
    verifier = setup.verifier(hasher=hasher, max_failures=3)
    key_id = key_id_of(setup.key.plaintext)
    guesses = [asyncio.create_task(verifier.verify(guess(key_id, n))) for n in range(30)]
    await asyncio.sleep(0)  # let every guess run up to its first real wait
    async with asyncio.timeout(5):
        while hasher.waiting < 3 or sum(t.done() for t in guesses) < 27:
            await asyncio.sleep(0)
    assert hasher.waiting == 3
    hasher.gate.set()
    assert await asyncio.gather(*guesses) == [NOT_FOUND] * 30
    assert hasher.verifications == 3


class SlowLookups:
    """The verifier's reads, with every key lookup held until ``gate`` opens (as a database would)."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.waiting = 0

    async def verify_record(self, key_id: str) -> VerifyRecord | None:
        self.waiting += 1
        await self.gate.wait()
        return await self.inner.verify_record(key_id)

    async def key_state(self, row_id: int, *, key_id: str) -> KeyState | None:
        return await self.inner.key_state(row_id, key_id=key_id)

    async def touch_key(self, row_id: int, *, at: datetime) -> None:
        await self.inner.touch_key(row_id, at=at)


async def test_guesses_that_were_all_looking_up_their_key_at_once_still_get_only_the_budget(
    setup: Setup,
) -> None:
    store = SlowLookups(setup.store)
    verifier = Verifier(store, hasher=setup.hasher, key_format=KeyFormat(), clock=setup.clock,
                        monotonic=setup.monotonic, max_failures=3)
    key_id = key_id_of(setup.key.plaintext)
    guesses = [asyncio.create_task(verifier.verify(guess(key_id, n))) for n in range(30)]
    async with asyncio.timeout(5):
        while store.waiting < 30:  # every guess passed the budget check before any lookup returned
            await asyncio.sleep(0)
    store.gate.set()
    assert await asyncio.gather(*guesses) == [NOT_FOUND] * 30
    assert setup.hasher.verifications == 3


async def test_a_full_argon2_lane_raises_busy_and_uses_no_budget(setup: Setup) -> None:
    verifier = setup.verifier(hasher=FullLane(), max_failures=2)
    for _ in range(5):
        with pytest.raises(Busy):
            await verifier.verify(setup.key.plaintext)
    working = setup.verifier(max_failures=2)  # same key id, a lane with room: nothing was used up
    assert (await working.verify(setup.key.plaintext)).valid
    await working.aclose()


async def test_a_busy_answer_is_not_remembered_as_a_refusal(setup: Setup) -> None:
    lane = FullLane()
    verifier = setup.verifier(hasher=lane)
    with pytest.raises(Busy):
        await verifier.verify(setup.key.plaintext)
    lane.full = False  # the lane has room again
    assert (await verifier.verify(setup.key.plaintext)).valid
    assert lane.verifications == 1
    await verifier.aclose()


async def test_the_refusal_cache_is_bounded_and_evicts_the_oldest_refusal_first(setup: Setup) -> None:
    verifier = setup.verifier(max_refused=2)
    first, second, third = minted(1), minted(2), minted(3)
    for key in (first, second, third):
        assert await verifier.verify(key) == NOT_FOUND
    assert setup.store.calls["verify_record"] == 3

    assert await verifier.verify(third) == NOT_FOUND  # the newest survived: no lookup
    assert await verifier.verify(second) == NOT_FOUND
    assert setup.store.calls["verify_record"] == 3
    assert await verifier.verify(first) == NOT_FOUND  # the oldest was evicted: looked up again
    assert setup.store.calls["verify_record"] == 4


async def test_minted_keys_never_grow_the_refusal_cache_past_its_bound(setup: Setup) -> None:
    verifier = setup.verifier(max_refused=50)
    for n in range(500):
        assert await verifier.verify(minted(n)) == NOT_FOUND
    assert len(verifier._invalid) == 50
    assert len(verifier._budget) == 0  # key ids without a row never get a budget


def test_the_budget_tracks_a_bounded_number_of_key_ids_evicting_the_least_recently_failed() -> None:
    clock = FakeMonotonic()
    budget = FailureBudget(limit=1, window=60, max_key_ids=2, monotonic=clock)
    for key_id in ("a", "b", "c"):
        budget.begin(key_id)
        budget.end(key_id, failed=True)
    assert len(budget) == 2
    assert not budget.exhausted("a")  # evicted: the oldest
    assert budget.exhausted("b") and budget.exhausted("c")  # the newest survive

    budget.begin("b")
    budget.end("b", failed=True)  # b failed again: now c is the least recent
    budget.begin("d")
    budget.end("d", failed=True)
    assert budget.exhausted("b") and budget.exhausted("d") and not budget.exhausted("c")


def test_a_success_leaves_no_budget_behind_and_failures_age_out() -> None:
    clock = FakeMonotonic()
    budget = FailureBudget(limit=2, window=60, max_key_ids=10, monotonic=clock)
    budget.begin("a")
    assert len(budget) == 1
    budget.end("a", failed=False)
    assert len(budget) == 0
    for _ in range(2):
        budget.begin("a")
        budget.end("a", failed=True)
    assert budget.exhausted("a")
    clock.advance(60)
    assert not budget.exhausted("a")

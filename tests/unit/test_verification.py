"""The Verifier (bot/services/verification.py) on the in-memory store: cost model, cache and revocation."""

from dataclasses import dataclass

import pytest

from bot.domain.keys import KeyFormat, checksum
from bot.domain.model import Actor
from bot.services import Keybot
from bot.services.results import CreatedKey
from bot.services.verification import MALFORMED, NOT_FOUND, Verifier
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

    def verifier(self, *, recheck_after: float = 0.5) -> Verifier:
        return Verifier(
            self.store,
            hasher=self.hasher,
            key_format=KeyFormat(),
            recheck_after=recheck_after,
            monotonic=self.monotonic,
            clock=self.clock,
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
    assert setup.store.calls["key_exists"] == 0
    await verifier.aclose()


async def test_an_old_cache_entry_is_rechecked_by_existence_not_argon2(setup: Setup) -> None:
    verifier = setup.verifier()
    assert (await verifier.verify(setup.key.plaintext)).valid
    setup.monotonic.advance(0.6)
    assert (await verifier.verify(setup.key.plaintext)).valid
    assert setup.store.calls["key_exists"] == 1
    assert setup.hasher.verifications == 1
    assert (await verifier.verify(setup.key.plaintext)).valid
    assert setup.store.calls["key_exists"] == 1  # fresh again after the recheck
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

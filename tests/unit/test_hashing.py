"""argon2id lanes (bot/domain/hashing.py): production cost, the bound on queued work, and two lanes
that do not share capacity. Blocking hashers stand in for slow argon2; nothing here measures time."""

import asyncio
import threading

import pytest
from argon2 import extract_parameters

from bot.domain.errors import Busy, Unavailable
from bot.domain.hashing import CREATE_LANE_DEPTH, VERIFY_LANE_DEPTH, Hasher, HashParams
from bot.settings import load_settings


class BlockingHasher(Hasher):
    """argon2 whose every hash and verify waits, in its worker thread, until the test opens ``gate``."""

    def __init__(self, *, max_pending: int, threads: int = 1) -> None:
        super().__init__(HashParams.cheapest(), threads=threads, max_pending=max_pending)
        self.gate = threading.Event()
        self.started = threading.Semaphore(0)

    def hash_sync(self, plaintext: str) -> str:
        self.started.release()
        self.gate.wait(timeout=30)
        return super().hash_sync(plaintext)

    def verify_sync(self, digest: str, plaintext: str) -> bool:
        self.started.release()
        self.gate.wait(timeout=30)
        return super().verify_sync(digest, plaintext)

    async def wait_started(self, count: int = 1) -> None:
        """Until ``count`` more calls have entered a worker thread."""
        for _ in range(count):
            assert await asyncio.to_thread(self.started.acquire, timeout=10), "argon2 work never started"


async def until_idle(hasher: Hasher) -> None:
    async with asyncio.timeout(10):
        while hasher.pending:
            await asyncio.sleep(0.01)


def test_the_production_argon2_cost_is_owasps_minimum_exactly() -> None:
    assert HashParams() == HashParams(time_cost=2, memory_kib=19 * 1024, parallelism=1)
    assert load_settings({}).hash_params == HashParams()
    assert load_settings({"KEYBOT_ARGON2_PROFILE": "owasp"}).hash_params == HashParams()


def test_a_default_hasher_really_hashes_at_m_19_mib_t_2_p_1_with_argon2id() -> None:
    hasher = Hasher()
    try:
        digest = hasher.hash_sync("a secret")
        params = extract_parameters(digest)
        assert digest.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert (params.memory_cost, params.time_cost, params.parallelism) == (19456, 2, 1)
        assert hasher.verify_sync(digest, "a secret")
        assert not hasher.verify_sync(digest, "another secret")
    finally:
        hasher.close()


def test_the_cheapest_profile_is_only_what_tests_ask_for() -> None:
    assert HashParams.cheapest() != HashParams()
    assert load_settings({"KEYBOT_ARGON2_PROFILE": "cheapest"}).hash_params == HashParams.cheapest()


def test_busy_is_a_kind_of_unavailable_that_says_when_to_retry() -> None:
    err = Busy("try again in a moment", retry_after=3)
    assert isinstance(err, Unavailable)
    assert err.retry_after == 3
    assert str(err) == "try again in a moment"


def test_a_lane_needs_room_for_at_least_one_hash() -> None:
    with pytest.raises(ValueError, match="max_pending"):
        Hasher(HashParams.cheapest(), max_pending=0)


def test_the_verify_lane_is_bounded_tighter_than_the_create_lane() -> None:
    assert 1 <= VERIFY_LANE_DEPTH <= CREATE_LANE_DEPTH
    assert CREATE_LANE_DEPTH > 50  # fifty owners racing for one key name all get an answer about the name


async def test_a_full_lane_refuses_at_once_instead_of_queueing() -> None:
    hasher = BlockingHasher(max_pending=2)
    try:
        running = asyncio.create_task(hasher.hash("one"))  # takes the only thread
        queued = asyncio.create_task(hasher.hash("two"))  # waits for it
        await hasher.wait_started()
        assert hasher.pending == 2

        with pytest.raises(Busy) as refused:
            await hasher.hash("three")
        assert refused.value.retry_after >= 1
        with pytest.raises(Busy):
            await hasher.verify("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA", "four")
        assert hasher.pending == 2  # refusals took no slot

        hasher.gate.set()
        digests = await asyncio.gather(running, queued)
        assert hasher.verify_sync(digests[0], "one") and hasher.verify_sync(digests[1], "two")
        assert hasher.pending == 0
        assert hasher.verify_sync(await hasher.hash("five"), "five")  # room again
    finally:
        hasher.gate.set()
        hasher.close()


async def test_a_caller_that_gives_up_keeps_its_slot_until_argon2_is_done() -> None:
    hasher = BlockingHasher(max_pending=1)
    try:
        waiting = asyncio.create_task(hasher.hash("one"))
        await hasher.wait_started()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        with pytest.raises(Busy):  # the thread still works on it
            await hasher.hash("two")
        hasher.gate.set()
        await until_idle(hasher)
        assert hasher.verify_sync(await hasher.hash("three"), "three")
    finally:
        hasher.gate.set()
        hasher.close()


async def test_a_failing_hash_gives_its_slot_back() -> None:
    hasher = Hasher(HashParams.cheapest(), max_pending=1)
    try:
        with pytest.raises(AttributeError):
            await hasher.hash(None)  # type: ignore[arg-type]
        assert hasher.pending == 0
        assert hasher.verify_sync(await hasher.hash("after"), "after")
    finally:
        hasher.close()


async def test_two_lanes_do_not_share_capacity() -> None:
    """A verify lane full of blocked work leaves the create lane's threads and slots untouched."""
    verify_lane = BlockingHasher(max_pending=2, threads=2)
    create_lane = Hasher(HashParams.cheapest(), max_pending=2)
    try:
        blocked = [asyncio.create_task(verify_lane.verify("$argon2id$x", f"guess{i}")) for i in range(2)]
        await verify_lane.wait_started(2)  # both of its threads are busy and it has no free slot
        with pytest.raises(Busy):
            await verify_lane.verify("$argon2id$x", "guess3")

        made = await asyncio.gather(create_lane.hash("new key a"), create_lane.hash("new key b"))
        assert create_lane.verify_sync(made[0], "new key a") and create_lane.verify_sync(made[1], "new key b")
        assert not any(task.done() for task in blocked)

        verify_lane.gate.set()
        assert await asyncio.gather(*blocked) == [False, False]
    finally:
        verify_lane.gate.set()
        verify_lane.close()
        create_lane.close()

"""Making keybot run argon2 at will, over the wire: a flood of wrong secrets for a real (public) key id,
a full verify lane, a full create lane, and the start-up warning of an open verify endpoint.

Blocking hashers stand in for a busy argon2 so that "full" is a state the test sets, not a race."""

import asyncio
import json
import re
import secrets
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.domain.hashing import Hasher, HashParams
from bot.domain.keys import BASE62, KEY_ID_LEN, SECRET_LEN, checksum
from bot.runtime import build_runtime
from bot.shell.driver import SlackDriver
from bot.shell.fakeslack import FakeSlack
from tests.e2e.conftest import OWNER, SIGNING_SECRET, TEAM, Harness, ShiftedClock, e2e_settings
from tests.fakes import CountingHasher
from tests.procs import running_keybot

KEY_RE = re.compile(r"kb_[A-Za-z0-9]{10}_[A-Za-z0-9]{28}")
NOT_FOUND = {"valid": False, "code": "NOT_FOUND"}
WORKING = "Working on it"


def key_id_of(key: str) -> str:
    return key[3 : 3 + KEY_ID_LEN]


def wrong_guess(key_id: str) -> str:
    """What an attacker sends: a real key id, a random secret, a valid checksum."""
    body = f"kb_{key_id}_{''.join(secrets.choice(BASE62) for _ in range(SECRET_LEN))}"
    return body + checksum(body)


class BlockingHasher(Hasher):
    """argon2 (cheapest) whose hashes and verifies wait in their worker thread until ``gate`` opens."""

    def __init__(self, *, max_pending: int, threads: int = 2) -> None:
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

    async def wait_started(self, count: int) -> None:
        for _ in range(count):
            assert await asyncio.to_thread(self.started.acquire, timeout=10), "argon2 work never started"


@dataclass
class Lanes:
    create: Hasher
    verify: Hasher


@pytest.fixture
def lanes() -> Lanes:
    """The hashers the ``abuse`` fixture wires; a test replaces them before asking for ``abuse``."""
    return Lanes(create=CountingHasher(), verify=CountingHasher())


@pytest.fixture
async def abuse(tmp_path: Path, slack: FakeSlack, lanes: Lanes) -> AsyncIterator[Harness]:
    """Like the ``harness`` fixture, with the argon2 lanes of ``lanes``."""
    db_path = tmp_path / "keybot.db"
    clock = ShiftedClock()
    runtime = await build_runtime(e2e_settings(slack, db_path), clock=clock, hasher=lanes.create,
                                  verify_hasher=lanes.verify)
    runner = web.AppRunner(runtime.web_app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runtime.keybot.operators.bootstrap(team_id=TEAM, owner=OWNER, org_name="Acme")
    try:
        async with aiohttp.ClientSession() as session:
            driver = SlackDriver(events_url=f"{base_url}/slack/events", signing_secret=SIGNING_SECRET,
                                 slack=slack, team_id=TEAM, session=session)
            yield Harness(runtime=runtime, clock=clock, slack=slack, driver=driver, base_url=base_url,
                          session=session, db_path=db_path)
    finally:
        for lane in (lanes.create, lanes.verify):
            if isinstance(lane, BlockingHasher):
                lane.gate.set()
        await runner.cleanup()
        await runtime.aclose()


async def new_key(h: Harness, text: str) -> str:
    reply = await h.as_owner(text)
    assert WORKING not in reply.text, reply.text
    [key] = set(KEY_RE.findall(reply.text))
    return key


async def post_verify(h: Harness, key: str) -> tuple[int, dict[str, str], dict[str, object]]:
    async with h.session.post(f"{h.base_url}/v1/keys/verify", json={"key": key}) as response:
        return response.status, dict(response.headers), json.loads(await response.read())


async def verdict(h: Harness, key: str) -> dict[str, object]:
    status, _, body = await post_verify(h, key)
    assert status == 200, body
    return body


async def test_a_flood_of_wrong_secrets_for_a_real_key_id_costs_20_argon2_and_stops_no_real_key(
    abuse: Harness, lanes: Lanes
) -> None:
    attacked = await new_key(abuse, "project create payments")
    other = await new_key(abuse, "create payments checkout")
    assert (await verdict(abuse, attacked))["valid"] is True  # in use before the attack
    counting = lanes.verify
    assert isinstance(counting, CountingHasher)
    assert counting.verifications == 1

    limit = asyncio.Semaphore(64)

    async def attack() -> dict[str, object]:
        async with limit:
            return await verdict(abuse, wrong_guess(key_id_of(attacked)))

    flood = [asyncio.create_task(attack()) for _ in range(300)]
    during = await asyncio.gather(verdict(abuse, other), verdict(abuse, attacked))
    answers = await asyncio.gather(*flood)

    assert answers == [NOT_FOUND] * 300
    assert [v["valid"] for v in during] == [True, True]
    assert during[0]["key_id"] == key_id_of(other)
    assert counting.verifications == 1 + 20 + 1  # the warm-up, the key id's budget, the other key
    assert (await verdict(abuse, attacked))["valid"] is True
    assert (await verdict(abuse, other))["valid"] is True
    assert counting.verifications == 22


@pytest.fixture
def full_verify_lane(lanes: Lanes) -> BlockingHasher:
    lanes.verify = BlockingHasher(max_pending=2)
    return lanes.verify


async def test_a_full_verify_lane_answers_503_with_retry_after_while_creates_and_warm_keys_still_answer(
    full_verify_lane: BlockingHasher, abuse: Harness
) -> None:
    warm = await new_key(abuse, "project create payments")
    cold = [await new_key(abuse, f"create payments k{i}") for i in range(3)]
    full_verify_lane.gate.set()
    assert (await verdict(abuse, warm))["valid"] is True
    await full_verify_lane.wait_started(1)
    full_verify_lane.gate.clear()

    blocked = [asyncio.create_task(verdict(abuse, key)) for key in cold[:2]]
    await full_verify_lane.wait_started(2)  # both slots of the lane hold a running argon2

    status, headers, body = await post_verify(abuse, cold[2])
    assert status == 503
    assert headers["Retry-After"] == "1"
    assert headers["Content-Type"].startswith("application/json")
    assert body == {"error": "busy verifying other keys; retry later", "retry_after": 1}
    assert cold[2] not in json.dumps(body) and key_id_of(cold[2]) not in json.dumps(body)

    assert (await verdict(abuse, warm))["valid"] is True  # a cached key needs no argon2
    assert await verdict(abuse, wrong_guess("0" * KEY_ID_LEN)) == NOT_FOUND  # nor does an unknown id
    created = await abuse.as_owner("create payments during")  # creates have a lane of their own
    assert WORKING not in created.text and KEY_RE.search(created.text), created.text
    assert created.message["response_type"] == "ephemeral"
    assert not any(task.done() for task in blocked)

    full_verify_lane.gate.set()
    assert [(await task)["valid"] for task in blocked] == [True, True]
    assert (await verdict(abuse, cold[2]))["valid"] is True  # it was refused, not remembered as bad


@pytest.fixture
def full_create_lane(lanes: Lanes) -> BlockingHasher:
    lanes.create = BlockingHasher(max_pending=1, threads=1)
    return lanes.create


async def test_a_create_that_meets_a_full_create_lane_gets_a_private_busy_reply_and_changes_nothing(
    full_create_lane: BlockingHasher, abuse: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    full_create_lane.gate.set()
    key = await new_key(abuse, "project create payments")
    await full_create_lane.wait_started(1)
    full_create_lane.gate.clear()
    occupying = asyncio.create_task(abuse.runtime.keybot.hasher.hash("someone else's new key"))
    await full_create_lane.wait_started(1)

    busy = await abuse.as_owner("create payments ci")
    assert busy.status == 200
    assert busy.message["response_type"] == "ephemeral"
    assert busy.text.startswith(":warning:") and "busy" in busy.text and "Try again in a moment" in busy.text
    assert "nothing changed" in busy.text
    assert "database unavailable" not in caplog.text  # busy is not an outage: no operator warning
    assert (await verdict(abuse, key))["valid"] is True  # verifies have a lane of their own

    full_create_lane.gate.set()
    await occupying
    listing = await abuse.as_owner("list payments")
    assert "*ci*" not in listing.text and "*default*" in listing.text
    await new_key(abuse, "create payments ci")  # room again: the same command now works


# --- the start-up warning of an open verify endpoint (a real `keybot serve`) ------------------------


@pytest.mark.parametrize(
    ("host", "token", "warned"),
    [("0.0.0.0", None, True), ("127.0.0.1", None, False), ("0.0.0.0", "a-verify-token", False)],
    ids=["every interface, no token", "loopback, no token", "every interface, a token"],
)
async def test_serve_warns_once_when_the_verify_api_is_open_to_the_network_without_a_token(
    tmp_path: Path, slack: FakeSlack, host: str, token: str | None, warned: bool
) -> None:
    extra = {"KEYBOT_HOST": host, **({"KEYBOT_VERIFY_TOKEN": token} if token else {})}
    async with running_keybot(database_url=f"sqlite+aiosqlite:///{tmp_path / 'kb.db'}",
                              slack_api_url=slack.api_url, log_path=tmp_path / "kb.log", **extra) as kb:
        code, log = await kb.stop()
    assert code == 0, log
    warnings = [line for line in log.splitlines() if " WARNING " in line and "KEYBOT_VERIFY_TOKEN" in line]
    if warned:
        assert len(warnings) == 1, log
        assert "0.0.0.0" in warnings[0] and "/v1/keys/verify" in warnings[0]
    else:
        assert warnings == [], log
    if token:
        assert token not in log

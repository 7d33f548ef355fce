"""``POST /v1/keys/verify`` under normal use and abuse: exact answers, malformed keys refused before the
database is touched, no difference between an unknown key id and a wrong secret, revocation at once,
the optional bearer token, ``last_used_at``, and a flood of bad keys among valid ones."""

import asyncio
import json
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.domain.keys import BASE62, KEY_ID_LEN, SECRET_LEN, checksum
from bot.runtime import build_runtime
from bot.shell.driver import SlackDriver
from bot.shell.fakeslack import FakeSlack
from bot.slack.codec import ActionId
from tests.e2e.conftest import OWNER, SIGNING_SECRET, TEAM, Harness, ShiftedClock, e2e_settings

KEY_RE = re.compile(r"kb_[A-Za-z0-9]{10}_[A-Za-z0-9]{28}")
MALFORMED = {"valid": False, "code": "MALFORMED"}
NOT_FOUND = {"valid": False, "code": "NOT_FOUND"}
VERIFY_TOKEN = "s3cret"


def _random(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))


def well_formed(*, key_id: str | None = None, secret: str | None = None) -> str:
    """A key with a correct checksum: unknown unless ``key_id`` names a real key (and ``secret`` is its own)."""
    body = f"kb_{key_id or _random(KEY_ID_LEN)}_{secret or _random(SECRET_LEN)}"
    return body + checksum(body)


def key_id_of(key: str) -> str:
    return key[3 : 3 + KEY_ID_LEN]


async def _new_key(h: Harness, text: str) -> str:
    reply = await h.as_owner(text)
    [key] = set(KEY_RE.findall(reply.text))
    return key


async def verify(h: Harness, body: Any, *, raw: bytes | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    data = raw if raw is not None else json.dumps(body).encode()
    async with h.session.post(f"{h.base_url}/v1/keys/verify", data=data,
                              headers={"Content-Type": "application/json", **(headers or {})}) as response:
        return response.status, await response.read()


async def verdict(h: Harness, key: Any, **kwargs: Any) -> dict[str, Any]:
    status, body = await verify(h, {"key": key}, **kwargs)
    assert status == 200, body
    answer: dict[str, Any] = json.loads(body)
    return answer


class CountingStore:
    """The verifier's store, counting every call the verifier makes to it (its only way to the database)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attr(*args, **kwargs)

        return counted


@pytest.fixture
def store_calls(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> CountingStore:
    counting = CountingStore(harness.runtime.verifier._store)
    monkeypatch.setattr(harness.runtime.verifier, "_store", counting)
    return counting


async def test_a_valid_key_verifies_with_exactly_its_id_project_org_and_name(harness: Harness) -> None:
    await _new_key(harness, "project create payments")
    key = await _new_key(harness, "create payments checkout")
    status, body = await verify(harness, {"key": key})
    assert status == 200
    assert json.loads(body) == {
        "valid": True, "key_id": key_id_of(key), "project": "payments", "org": "Acme", "name": "checkout",
        "expires_at": None,
    }
    assert key not in body.decode()


def _malformed_variants(key: str) -> dict[str, Any]:
    return {
        "wrong prefix": "kc" + key[2:],
        "upper-case prefix": "KB" + key[2:],
        "no prefix": key[3:],
        "truncated": key[:-1],
        "one character too many": key + "A",
        "bad checksum": key[:-1] + ("A" if key[-1] != "A" else "B"),
        "mistyped secret": key[:20] + ("x" if key[20] != "x" else "y") + key[21:],
        "character outside the alphabet": key[:15] + "-" + key[16:],
        "separator missing": key.replace("_", "", 2) + "__",
        "surrounding spaces": f" {key} ",
        "empty": "",
        "a number": 12345,
        "null": None,
        "a list": [key],
        "an object": {"key": key},
        "true": True,
    }


async def test_malformed_keys_are_refused_without_a_database_query(
    harness: Harness, store_calls: CountingStore
) -> None:
    key = await _new_key(harness, "project create payments")
    for name, bad in _malformed_variants(key).items():
        assert await verdict(harness, bad) == MALFORMED, name
    assert store_calls.calls == []
    assert await verdict(harness, well_formed()) == NOT_FOUND
    assert store_calls.calls == ["verify_record"], "the counter sees the lookup a well-formed key needs"


async def test_an_unknown_key_id_and_a_wrong_secret_get_byte_identical_responses(harness: Harness) -> None:
    key = await _new_key(harness, "project create payments")
    assert (await verdict(harness, key))["valid"] is True
    answers = set()
    for _ in range(3):  # cold, and again once each verdict may be cached
        for probe in (well_formed(), well_formed(key_id=key_id_of(key))):
            async with harness.session.post(f"{harness.base_url}/v1/keys/verify", json={"key": probe}) as response:
                answers.add((response.status, response.content_type, response.headers.get("Content-Length"),
                             await response.read()))
    assert answers == {(200, "application/json", str(len(b'{"valid":false,"code":"NOT_FOUND"}')),
                        b'{"valid":false,"code":"NOT_FOUND"}')}


async def test_the_same_wrong_key_twice_is_still_not_found(harness: Harness) -> None:
    key = await _new_key(harness, "project create payments")
    wrong = well_formed(key_id=key_id_of(key))
    assert [await verdict(harness, wrong) for _ in range(2)] == [NOT_FOUND, NOT_FOUND]
    assert (await verdict(harness, key))["valid"] is True


async def test_a_key_deleted_through_the_slack_confirmation_fails_verification_at_once(harness: Harness) -> None:
    await _new_key(harness, "project create payments")
    key = await _new_key(harness, "create payments checkout")
    for _ in range(3):  # warm the verifier's cache
        assert (await verdict(harness, key))["valid"] is True
    ask = await harness.as_owner("delete payments checkout")
    done = await harness.driver.click(OWNER, ask.button(ActionId.DELETE_CONFIRM), response_url=ask.response_url)
    assert "Deleted key `checkout`" in done.text
    assert await verdict(harness, key) == NOT_FOUND


@pytest.mark.parametrize("raw", [b"{", b"not json", b"", b"\xff\xfe", b"[" * 50_000, b'{"key": "kb_', b"{'key': 1}"],
                         ids=["open brace", "text", "empty", "not utf-8", "deeply nested", "truncated", "quotes"])
async def test_malformed_json_gets_400(harness: Harness, raw: bytes) -> None:
    status, body = await verify(harness, None, raw=raw)
    assert status == 400
    assert "error" in json.loads(body)


@pytest.mark.parametrize("body", [{}, {"kee": "kb_x"}, {"KEY": "kb_x"}, [], ["kb_x"], "kb_x", 5, None],
                         ids=["empty object", "misspelt", "upper-case", "empty list", "list", "string", "number",
                              "null"])
async def test_json_without_a_key_field_gets_400(harness: Harness, body: Any) -> None:
    status, answer = await verify(harness, body)
    assert status == 400
    assert "error" in json.loads(answer)


async def _key_lines(h: Harness) -> dict[str, str]:
    listing = await h.as_owner("list payments")
    return dict(re.findall(r"\*([\w.-]+)\*   `[^`]+`\ncreated by [^\n]*· last used ([^\n]+)", listing.text))


async def test_last_used_shows_in_the_key_list_after_a_verification(harness: Harness) -> None:
    await _new_key(harness, "project create payments")
    key = await _new_key(harness, "create payments checkout")
    assert await _key_lines(harness) == {"checkout": "never", "default": "never"}
    assert (await verdict(harness, key))["valid"] is True
    async with asyncio.timeout(5):
        while (lines := await _key_lines(harness))["checkout"] == "never":
            await asyncio.sleep(0.05)
    assert lines["checkout"].startswith("<!date^")
    assert lines["default"] == "never"


async def test_a_flood_of_bad_keys_among_valid_verifications_gets_every_answer_right(harness: Harness) -> None:
    valid = [await _new_key(harness, "project create payments")]
    valid += [await _new_key(harness, f"create payments k{i}") for i in range(4)]
    for key in valid:  # in use before the flood; a key id's failure budget never refuses a cached key
        assert (await verdict(harness, key))["valid"] is True
    bad: list[tuple[Any, dict[str, Any]]] = []
    for i in range(2000):
        match i % 4:
            case 0:
                bad.append((well_formed(), NOT_FOUND))
            case 1:
                bad.append((well_formed(key_id=key_id_of(valid[i % len(valid)])), NOT_FOUND))
            case 2:
                bad.append((_random(44), MALFORMED))
            case _:
                key = valid[i % len(valid)]
                bad.append((key[:-1] + ("0" if key[-1] != "0" else "1"), MALFORMED))
    requests: list[tuple[Any, dict[str, Any] | None]] = []
    for i, item in enumerate(bad):
        requests.append(item)
        if i % 10 == 0:
            requests.append((valid[(i // 10) % len(valid)], None))
    limit = asyncio.Semaphore(32)

    async def check(key: Any, expected: dict[str, Any] | None) -> None:
        async with limit:
            answer = await verdict(harness, key)
        if expected is None:
            assert answer["valid"] is True and answer["key_id"] == key_id_of(key), answer
        else:
            assert answer == expected, key

    await asyncio.gather(*(check(key, expected) for key, expected in requests))
    for key in valid:
        assert (await verdict(harness, key))["valid"] is True


# --- KEYBOT_VERIFY_TOKEN ---------------------------------------------------------------------------


@pytest.fixture
async def guarded(tmp_path: Path, slack: FakeSlack) -> AsyncIterator[Harness]:
    """Like the ``harness`` fixture, with ``KEYBOT_VERIFY_TOKEN`` set."""
    db_path = tmp_path / "keybot.db"
    clock = ShiftedClock()
    runtime = await build_runtime(e2e_settings(slack, db_path, verify_token=VERIFY_TOKEN), clock=clock)
    runner = web.AppRunner(runtime.web_app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    runtime.worker.start()
    await runtime.keybot.operators.bootstrap(team_id=TEAM, owner=OWNER, org_name="Acme")
    async with aiohttp.ClientSession() as session:
        driver = SlackDriver(events_url=f"{base_url}/slack/events", signing_secret=SIGNING_SECRET, slack=slack,
                             team_id=TEAM, session=session)
        yield Harness(runtime=runtime, clock=clock, slack=slack, driver=driver, base_url=base_url, session=session,
                      db_path=db_path)
    await runner.cleanup()
    await runtime.aclose()


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer ", "Bearer wrong", f"Bearer {VERIFY_TOKEN}x",
                                           f"Bearer {VERIFY_TOKEN[:-1]}", VERIFY_TOKEN, f"bearer {VERIFY_TOKEN}",
                                           f"Basic {VERIFY_TOKEN}", f"Bearer  {VERIFY_TOKEN}"])
async def test_with_a_verify_token_a_missing_or_wrong_bearer_gets_401(guarded: Harness, authorization: str | None) -> None:
    key = await _new_key(guarded, "project create payments")
    headers = {} if authorization is None else {"Authorization": authorization}
    for body in ({"key": key}, {"key": "garbage"}, {}):
        status, answer = await verify(guarded, body, headers=headers)
        assert status == 401
        assert key_id_of(key) not in answer.decode() and "valid" not in json.loads(answer)


async def test_with_a_verify_token_the_right_bearer_verifies(guarded: Harness) -> None:
    key = await _new_key(guarded, "project create payments")
    right = {"Authorization": f"Bearer {VERIFY_TOKEN}"}
    assert (await verdict(guarded, key, headers=right))["valid"] is True
    assert await verdict(guarded, well_formed(), headers=right) == NOT_FOUND
    assert await verdict(guarded, "garbage", headers=right) == MALFORMED


async def test_without_a_verify_token_no_bearer_is_needed(harness: Harness) -> None:
    key = await _new_key(harness, "project create payments")
    assert (await verdict(harness, key))["valid"] is True
    assert (await verdict(harness, key, headers={"Authorization": "Bearer anything"}))["valid"] is True

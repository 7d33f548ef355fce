"""``POST /v1/leaks/github`` over the wire: GitHub's signed report (ECDSA P-256 over the raw body, keys
served by a local stand-in of GitHub's key list) against a real keybot; a leaked key is disabled (or
only alerted on), its owners DMed, and GitHub answered with feedback. Every bad request changes nothing."""

import base64
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bot.domain.keys import CHECKSUM_LEN, checksum
from tests.e2e.conftest import OWNER, Harness
from tests.e2e.contract import conforms
from tests.e2e.test_secret_never_leaks import KEY_RE, leaks
from tests.procs import fresh_postgres_database

SECOND_OWNER = "UOWNER02"
KEY_ID = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a"
URL = "https://github.com/acme/app/blob/abc123/settings.py#L12"
PATH = "/v1/leaks/github"


@dataclass
class GitHubStandIn:
    """GitHub's key list on a local port, and the private key that signs reports."""

    url: str
    private: ec.EllipticCurvePrivateKey = field(repr=False)
    fetches: int = 0

    def sign(self, body: bytes, key: ec.EllipticCurvePrivateKey | None = None) -> dict[str, str]:
        signature = (key or self.private).sign(body, ec.ECDSA(hashes.SHA256()))
        return {
            "Github-Public-Key-Identifier": KEY_ID,
            "Github-Public-Key-Signature": base64.b64encode(signature).decode(),
            "Content-Type": "application/json",
        }


@pytest.fixture
async def github() -> AsyncIterator[GitHubStandIn]:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    stand_in = GitHubStandIn(url="", private=private)

    async def keys(request: web.Request) -> web.Response:
        stand_in.fetches += 1
        return web.json_response({"public_keys": [{"key_identifier": KEY_ID, "key": pem, "is_current": True}]})

    app = web.Application()
    app.router.add_get("/meta/public_keys/secret_scanning", keys)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    stand_in.url = f"http://127.0.0.1:{runner.addresses[0][1]}/meta/public_keys/secret_scanning"
    yield stand_in
    await runner.cleanup()


@pytest.fixture
def e2e_overrides(github: GitHubStandIn) -> dict[str, object]:
    return {"github_keys_url": github.url}


def report(*tokens: str, url: str = URL) -> bytes:
    return json.dumps([{"token": t, "type": "keybot_api_key", "url": url, "source": "commit"} for t in tokens]).encode()


async def post(harness: Harness, body: bytes, headers: dict[str, str]) -> tuple[int, object]:
    """POST a report; every answer must also be one that bot/openapi.json describes."""
    async with harness.session.post(f"{harness.base_url}{PATH}", data=body, headers=headers) as response:
        answer = await response.json(content_type=None)
        conforms(PATH, "post", response.status, response.headers["Content-Type"], answer)
        return response.status, answer


async def verify(harness: Harness, key: str) -> dict[str, object]:
    async with harness.session.post(f"{harness.base_url}/v1/keys/verify", json={"key": key}) as response:
        answer: dict[str, object] = await response.json()
        return answer


async def new_key(harness: Harness) -> str:
    await harness.as_owner(f"grant <@{SECOND_OWNER}> owner")
    await harness.as_owner("project create payments")
    reply = await harness.as_owner("create payments ci")
    [secret] = set(KEY_RE.findall(reply.text))
    assert (await verify(harness, secret))["valid"] is True  # cached as valid: the disable must still win
    await harness.outbox_drained()
    return secret


def leak_dms(harness: Harness, user: str) -> list[str]:
    return [c.args["text"] for c in harness.slack.dms_to(user) if "GitHub found" in json.dumps(c.args)]


async def test_a_leaked_live_key_is_disabled_its_owners_dmed_and_github_told_true_positive(
    harness: Harness, github: GitHubStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = await new_key(harness)
    body = report(secret)
    status, answer = await post(harness, body, github.sign(body))
    assert status == 200
    token_hash = hashlib.sha256(secret.encode()).hexdigest()
    assert answer == [{"token_hash": token_hash, "token_type": "keybot_api_key", "label": "true_positive"}]
    assert await verify(harness, secret) == {"valid": False, "code": "DISABLED"}
    await harness.outbox_drained()
    for owner in (OWNER, SECOND_OWNER):
        [dm] = leak_dms(harness, owner)
        assert "`ci`" in dm and "`payments`" in dm and URL in dm and "keybot disabled it" in dm
    audit = await harness.as_owner("audit payments")
    assert "GitHub disabled key `ci`" in audit.text

    status, again = await post(harness, body, github.sign(body))  # GitHub replays the same report
    assert (status, again) == (200, answer)
    await harness.outbox_drained()
    assert len(leak_dms(harness, OWNER)) == 1

    stored = b"".join(p.read_bytes() for p in harness.db_path.parent.iterdir() if p.name.startswith("keybot.db"))
    dms = json.dumps([c.args for c in harness.slack.calls])
    places = {"database": stored.decode("latin-1"), "logs": caplog.text, "web api": dms}
    assert leaks(places, secrets=[secret]) == []


async def test_with_leak_action_alert_the_key_keeps_working_and_the_owners_are_dmed(
    harness: Harness, github: GitHubStandIn
) -> None:
    secret = await new_key(harness)
    await harness.as_owner("policy leak-action alert")
    body = report(secret)
    status, answer = await post(harness, body, github.sign(body))
    assert status == 200 and [a["label"] for a in answer] == ["true_positive"]  # type: ignore[union-attr,index]
    assert (await verify(harness, secret))["valid"] is True
    await harness.outbox_drained()
    [dm] = leak_dms(harness, SECOND_OWNER)
    assert "It still works" in dm and "/apikeys roll payments ci" in dm


async def test_a_near_miss_is_a_false_positive_and_changes_nothing(harness: Harness, github: GitHubStandIn) -> None:
    secret = await new_key(harness)
    body_part = secret[:-CHECKSUM_LEN]
    bad_checksum = body_part + ("A" * CHECKSUM_LEN if not secret.endswith("A" * CHECKSUM_LEN) else "B" * CHECKSUM_LEN)
    wrong_secret = body_part[:-1] + ("x" if body_part[-1] != "x" else "y")
    wrong_secret += checksum(wrong_secret)
    body = report(bad_checksum, wrong_secret, "ghp_not_ours")
    status, answer = await post(harness, body, github.sign(body))
    assert status == 200
    assert [a["label"] for a in answer] == ["false_positive"] * 3  # type: ignore[union-attr,index]
    assert (await verify(harness, secret))["valid"] is True
    await harness.outbox_drained()
    assert leak_dms(harness, OWNER) == []


def _unsigned(github: GitHubStandIn, body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json"}


def _badly_signed(github: GitHubStandIn, body: bytes) -> dict[str, str]:
    return github.sign(body, ec.generate_private_key(ec.SECP256R1()))


def _signed_other_body(github: GitHubStandIn, body: bytes) -> dict[str, str]:
    return github.sign(body + b" ")


def _unknown_key_id(github: GitHubStandIn, body: bytes) -> dict[str, str]:
    return {**github.sign(body), "Github-Public-Key-Identifier": "0" * 64}


def _garbage_signature(github: GitHubStandIn, body: bytes) -> dict[str, str]:
    return {**github.sign(body), "Github-Public-Key-Signature": "not base64 at all!"}


@pytest.mark.parametrize(
    "headers", [_unsigned, _badly_signed, _signed_other_body, _unknown_key_id, _garbage_signature]
)
async def test_a_request_not_signed_by_github_is_refused_401_and_changes_nothing(
    harness: Harness, github: GitHubStandIn, headers: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    secret = await new_key(harness)
    body = report(secret)
    status, answer = await post(harness, body, headers(github, body))  # type: ignore[operator]
    assert status == 401 and "error" in answer  # type: ignore[operator]
    assert (await verify(harness, secret))["valid"] is True
    await harness.outbox_drained()
    assert leak_dms(harness, OWNER) == []
    assert "Traceback" not in caplog.text
    assert len([r for r in caplog.records if r.name == "keybot.github" and "refused" in r.getMessage()]) == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b'{"token": "x"}', 400),
        (b'[{"token": 5, "type": "t", "url": "u"}]', 400),
        (b"[1, 2]", 400),
        (b"\xff\xfe", 400),
        (json.dumps([{"token": "t", "type": "t", "url": "u"}] * 1001).encode(), 413),
        (b"[" + b" " * (1024 * 1024) + b"]", 413),
    ],
    ids=["not json", "not a list", "token not a string", "entries not objects", "not utf-8", "1001 tokens", "over 1 MB"],
)
async def test_a_signed_but_malformed_or_oversized_report_is_refused_and_changes_nothing(
    harness: Harness, github: GitHubStandIn, body: bytes, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    secret = await new_key(harness)
    got, answer = await post(harness, body, github.sign(body))
    assert got == status and "error" in answer  # type: ignore[operator]
    assert (await verify(harness, secret))["valid"] is True
    assert "Traceback" not in caplog.text
    assert len([r for r in caplog.records if r.name == "keybot.github" and "refused" in r.getMessage()]) == 1


async def test_github_keys_are_fetched_once_not_per_request(
    harness: Harness, github: GitHubStandIn
) -> None:
    body = report("ghp_not_ours")
    for _ in range(3):
        assert (await post(harness, body, github.sign(body)))[0] == 200
    assert github.fetches == 1
    for _ in range(3):  # unknown identifiers refetch at most once a minute (tests/unit/test_github_keys.py)
        assert (await post(harness, body, _unknown_key_id(github, body)))[0] == 401
    assert github.fetches == 1



ODD_URLS = ["https://github.com/o/r/\\ud800", "https://github.com/o/r/\\u0000nul", "https://github.com/\\udfff\\ud800"]


async def odd_url_is_handled(harness: Harness, github: GitHubStandIn, url: str) -> None:
    """A signed report whose location holds a NUL or a lone surrogate (valid JSON escapes): the key is
    still disabled and the location kept with ``?`` in their place, not a 5xx that GitHub retries."""
    secret = await new_key(harness)
    entry = json.dumps({"token": secret, "type": "keybot_api_key", "url": "URL", "source": "commit"})
    body = f"[{entry.replace('URL', url)}]".encode()  # the escapes as GitHub would send them
    status, answer = await post(harness, body, github.sign(body))
    assert status == 200 and answer[0]["label"] == "true_positive", answer  # type: ignore[index]
    assert await verify(harness, secret) == {"valid": False, "code": "DISABLED"}
    assert "GitHub disabled key `ci`" in (await harness.as_owner("audit payments")).text
    await harness.outbox_drained()
    [dm] = leak_dms(harness, OWNER)
    assert "https://github.com/" in dm and "?" in dm


@pytest.mark.parametrize("url", ODD_URLS)
async def test_a_location_with_characters_a_database_cannot_keep_still_disables_the_key(
    harness: Harness, github: GitHubStandIn, url: str
) -> None:
    await odd_url_is_handled(harness, github, url)


class TestOnPostgres:
    @pytest.fixture
    async def e2e_overrides(self, github: GitHubStandIn) -> AsyncIterator[dict[str, object]]:
        async with fresh_postgres_database() as url:
            yield {"github_keys_url": github.url, "database_url": url}

    @pytest.mark.parametrize("url", ODD_URLS)
    async def test_a_location_with_characters_postgres_cannot_keep_still_disables_the_key(
        self, harness: Harness, github: GitHubStandIn, url: str
    ) -> None:
        await odd_url_is_handled(harness, github, url)

"""GitHub's secret-scanning public keys (bot/github.py GitHubKeys): fetched once, fetched again for an
unknown identifier at most once a minute, kept when a fetch fails; and the report's shape checks."""

from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from bot.github import GitHubKeys, KeysUnavailable, Refused, parse_leaks
from tests.fakes import FakeMonotonic


def pem(key: Any) -> str:
    return key.public_key().public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


class KeyList:
    """GitHub's key list as a fetch function: what it serves, how often it was asked, and failures."""

    def __init__(self) -> None:
        self.entries: list[dict[str, object]] = []
        self.calls = 0
        self.failing = False

    def add(self, identifier: str, key: Any) -> None:
        self.entries.append({"key_identifier": identifier, "key": pem(key), "is_current": True})

    async def __call__(self, url: str) -> object:
        self.calls += 1
        if self.failing:
            raise aiohttp.ClientConnectionError("down")
        return {"public_keys": list(self.entries)}


@pytest.fixture
def listing() -> KeyList:
    served = KeyList()
    served.add("k1", ec.generate_private_key(ec.SECP256R1()))
    return served


async def test_known_identifiers_cost_one_fetch_and_unknown_ones_one_more_per_minute(listing: KeyList) -> None:
    clock = FakeMonotonic()
    keys = GitHubKeys("http://keys", fetch=listing, monotonic=clock)
    assert await keys.key("k1") is not None and await keys.key("k1") is not None
    assert listing.calls == 1
    listing.add("k2", ec.generate_private_key(ec.SECP256R1()))
    assert await keys.key("k2") is None  # fetched less than a minute ago: not again
    clock.advance(60)
    assert await keys.key("k2") is not None  # a rotated key is picked up
    assert await keys.key("nope") is None and await keys.key("nope") is None
    assert listing.calls == 2


async def test_a_failed_fetch_keeps_the_keys_already_known(listing: KeyList) -> None:
    clock = FakeMonotonic()
    keys = GitHubKeys("http://keys", fetch=listing, monotonic=clock)
    assert await keys.key("k1") is not None
    listing.failing = True
    clock.advance(61)
    assert await keys.key("other") is None
    assert await keys.key("k1") is not None
    assert listing.calls == 2


async def test_no_key_list_at_all_is_unavailable_not_unknown(listing: KeyList) -> None:
    listing.failing = True
    with pytest.raises(KeysUnavailable):
        await GitHubKeys("http://keys", fetch=listing, monotonic=FakeMonotonic()).key("k1")


async def test_only_p256_keys_are_trusted(listing: KeyList) -> None:
    listing.add("p384", ec.generate_private_key(ec.SECP384R1()))
    listing.add("ed", ed25519.Ed25519PrivateKey.generate())
    listing.entries.append({"key_identifier": "junk", "key": "not a pem"})
    keys = GitHubKeys("http://keys", fetch=listing, monotonic=FakeMonotonic())
    assert await keys.key("k1") is not None
    assert [await keys.key(name) for name in ("p384", "ed", "junk")] == [None, None, None]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"nope", 400),
        (b"{}", 400),
        (b'[{"type": "t"}]', 400),
        (b'[{"token": "x", "url": ["u"]}]', 400),
        (b'[{"token": "' + b"x" * 5000 + b'"}]', 400),
        (b"[" + b",".join([b'{"token": "x"}'] * 1001) + b"]", 413),
    ],
)
def test_a_report_of_another_shape_is_refused(body: bytes, status: int) -> None:
    with pytest.raises(Refused) as refused:
        parse_leaks(body)
    assert refused.value.status == status


def test_a_report_keeps_each_token_type_and_url() -> None:
    [leak] = parse_leaks(b'[{"token": "kb_x", "type": "keybot_api_key", "url": "https://g/1", "source": "commit"}]')
    assert (leak.token, leak.type, leak.url, leak.source) == ("kb_x", "keybot_api_key", "https://g/1", "commit")

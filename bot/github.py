"""``POST /v1/leaks/github``: GitHub's secret-scanning partner endpoint (DESIGN.md §5.5, §5.7).

GitHub posts ``[{"token", "type", "url", "source"}, …]`` and signs the raw body with ECDSA P-256 /
SHA-256: ``Github-Public-Key-Identifier`` names the key, ``Github-Public-Key-Signature`` is the base64
DER signature. The public keys come from ``KEYBOT_GITHUB_KEYS_URL`` (GitHub's
``/meta/public_keys/secret_scanning``), cached, and fetched again when an unknown identifier shows up,
at most once a minute. The endpoint exists only when that setting is set.

Nothing is read past ``MAX_BODY`` bytes, nothing is parsed before the signature holds, and every refusal
is a 4xx with one log line, never the body: unsigned or badly signed 401, too big 413 (over ``MAX_BODY``
or over ``MAX_LEAKS`` tokens), malformed 400. 503 only when keybot itself cannot answer (GitHub's keys
unreachable, the database down, the argon2 lane full): GitHub retries, and a replay is harmless.
"""

import asyncio
import base64
import binascii
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from bot.domain.errors import Busy, Unavailable
from bot.domain.leaks import MAX_LEAKS, Label, Leak
from bot.services.leaks import LeakService
from bot.web import TooLarge, read_at_most

log = logging.getLogger("keybot.github")

GITHUB_KEYS_URL = "https://api.github.com/meta/public_keys/secret_scanning"
LEAKS_PATH = "/v1/leaks/github"
MAX_BODY = 1024 * 1024
MAX_HEADER = 512  # characters of an identifier or signature header; GitHub's are far shorter
MAX_FIELD = 4096  # characters of a token, type, url or source
REFETCH_AFTER = 60.0  # seconds: an unknown identifier fetches the keys again at most this often


class KeysUnavailable(Exception):
    """GitHub's public keys could not be fetched and none are cached."""


class Refused(Exception):
    """A request refused with ``status``; ``str()`` is the reason, logged and answered."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def parse_public_keys(data: Any) -> dict[str, ec.EllipticCurvePublicKey]:
    """The P-256 keys of GitHub's key list by identifier; entries of any other shape are skipped."""
    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    entries = data.get("public_keys") if isinstance(data, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        identifier, pem = entry.get("key_identifier"), entry.get("key")
        if not (isinstance(identifier, str) and isinstance(pem, str)):
            continue
        try:
            key = load_pem_public_key(pem.encode())
        except (ValueError, TypeError):
            continue
        if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            keys[identifier] = key
    return keys


async def fetch_json(url: str) -> Any:
    """GET ``url`` as JSON (10 s at most)."""
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        response.raise_for_status()
        return await response.json(content_type=None)


class GitHubKeys:
    """GitHub's secret-scanning public keys, by identifier: fetched on first use, again when an unknown
    identifier is asked for (at most once per ``refetch_after`` seconds); a failed fetch keeps the keys
    already known. ``fetch`` replaces the HTTP GET (tests serve keys locally)."""

    def __init__(
        self,
        url: str,
        *,
        fetch: Callable[[str], Awaitable[Any]] = fetch_json,
        refetch_after: float = REFETCH_AFTER,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._fetch = fetch
        self._refetch_after = refetch_after
        self._monotonic = monotonic
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self._fetched_at: float | None = None
        self._loaded = False
        self._lock = asyncio.Lock()  # concurrent unknown identifiers wait for one fetch
        self.fetches = 0

    async def key(self, identifier: str) -> ec.EllipticCurvePublicKey | None:
        """The key named ``identifier``, or None; KeysUnavailable if no key list was ever fetched."""
        known = self._keys.get(identifier)
        if known is not None:
            return known
        async with self._lock:
            if identifier not in self._keys and (
                self._fetched_at is None or self._monotonic() - self._fetched_at >= self._refetch_after
            ):
                await self._refresh()
        if not self._loaded:
            raise KeysUnavailable("GitHub's public keys could not be fetched")
        return self._keys.get(identifier)

    async def _refresh(self) -> None:
        self._fetched_at = self._monotonic()
        self.fetches += 1
        try:
            keys = parse_public_keys(await self._fetch(self.url))
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            log.warning("could not fetch GitHub's secret-scanning keys from %s (%s)", self.url, type(err).__name__)
            return
        if not keys:
            log.warning("GitHub's secret-scanning key list at %s holds no P-256 key", self.url)
            return
        self._keys, self._loaded = keys, True


def _header(request: web.Request, name: str) -> str:
    value = request.headers.get(name, "")
    if not value or len(value) > MAX_HEADER or not value.isascii():
        raise Refused(401, f"missing or malformed {name} header")
    return value


async def _body(request: web.Request) -> bytes:
    try:
        return await read_at_most(request, MAX_BODY)
    except TooLarge as err:
        raise Refused(413, str(err)) from None


def _verified(key: ec.EllipticCurvePublicKey, signature: str, raw: bytes) -> bool:
    try:
        der = base64.b64decode(signature, validate=True)
        key.verify(der, raw, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


def parse_leaks(raw: bytes) -> list[Leak]:
    """The report in a verified body; Refused (400, or 413 past ``MAX_LEAKS``) for any other shape."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise Refused(400, "body is not JSON") from None
    if not isinstance(data, list):
        raise Refused(400, "body is not a JSON list")
    if len(data) > MAX_LEAKS:
        raise Refused(413, f"{len(data)} tokens in one report (at most {MAX_LEAKS})")
    leaks = []
    for item in data:
        if not isinstance(item, dict):
            raise Refused(400, "a report entry is not an object")
        fields = {name: item.get(name, "") for name in ("token", "type", "url", "source")}
        if not all(isinstance(v, str) and len(v) <= MAX_FIELD for v in fields.values()) or not fields["token"]:
            raise Refused(400, "a report entry lacks a token or has a field that is not a short string")
        leaks.append(Leak(token=fields["token"], type=fields["type"], url=fields["url"], source=fields["source"]))
    return leaks


def _refusal(status: int, reason: str) -> web.Response:
    log.info("refused a request to %s: %s", LEAKS_PATH, reason)
    return web.json_response({"error": reason}, status=status)


def leaks_handler(*, keys: GitHubKeys, leaks: LeakService) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        try:
            identifier = _header(request, "Github-Public-Key-Identifier")
            signature = _header(request, "Github-Public-Key-Signature")
            raw = await _body(request)
            try:
                key = await keys.key(identifier)
            except KeysUnavailable:
                log.warning("could not check a request to %s: GitHub's public keys are unavailable", LEAKS_PATH)
                return web.json_response({"error": "cannot fetch GitHub's public keys; retry"}, status=503)
            if key is None:
                raise Refused(401, "unknown Github-Public-Key-Identifier")
            if not _verified(key, signature, raw):
                raise Refused(401, "invalid signature")
            report = parse_leaks(raw)
        except Refused as err:
            return _refusal(err.status, str(err))
        try:
            feedback = await leaks.report(report)
        except Busy as err:
            response = web.json_response({"error": "busy; retry later"}, status=503)
            response.headers["Retry-After"] = str(err.retry_after)
            return response
        except Unavailable:
            return web.json_response({"error": "key database unavailable; retry"}, status=503)
        found = sum(1 for f in feedback if f.label is Label.TRUE_POSITIVE)
        log.info("GitHub reported %d token(s); %d are keybot keys", len(feedback), found)
        return web.json_response([f.as_json() for f in feedback])

    return handle


def add_github_leaks(app: web.Application, *, keys: GitHubKeys, leaks: LeakService) -> None:
    """Serve ``POST /v1/leaks/github`` on ``app``."""
    app.router.add_post(LEAKS_PATH, leaks_handler(keys=keys, leaks=leaks))

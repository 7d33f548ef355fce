"""The load generator: N concurrent asyncio workers over one aiohttp session (a closed loop).

Each worker sends the next request as soon as its previous one is answered, for a fixed duration
(after an unrecorded warm-up) or until a fixed list of requests is used up. Every response is
checked (status 200 and a per-request ``expect`` on the body); failures are counted as errors and
the first few are kept for the report.
"""

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import aiohttp

from bot.shell.wire import sign, slash_command_body

Expect = Callable[[bytes], bool]


@dataclass(frozen=True, slots=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str]
    expect: Expect


@dataclass
class Measured:
    """Latencies (seconds) of one run and what went wrong."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies) + self.errors

    @property
    def rps(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile in milliseconds (0 when nothing was measured)."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank] * 1000

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    def merge(self, other: "Measured") -> None:
        """Add ``other``'s requests and time to this one (interleaved slices of one workload)."""
        self.latencies += other.latencies
        self.errors += other.errors
        self.error_samples += other.error_samples[: max(0, 3 - len(self.error_samples))]
        self.elapsed += other.elapsed

    def record_error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 3:
            self.error_samples.append(what[:300])


def not_an_error_reply(body: bytes) -> bool:
    """A keybot command reply that is not one of its error messages (they all start with :warning:)."""
    return b":warning:" not in body


def any_body(body: bytes) -> bool:
    return True


def says(fragment: bytes) -> Expect:
    def expect(body: bytes) -> bool:
        return fragment in body

    return expect


def says_any(*fragments: bytes) -> Expect:
    def expect(body: bytes) -> bool:
        return any(fragment in body for fragment in fragments)

    return expect


def valid_verdict(body: bytes) -> bool:
    return body.replace(b" ", b"").startswith(b'{"valid":true')


def invalid_verdict(body: bytes) -> bool:
    return body.replace(b" ", b"").startswith(b'{"valid":false')


def not_found_verdict(body: bytes) -> bool:
    return body.replace(b" ", b"") == b'{"valid":false,"code":"NOT_FOUND"}'


def command(
    base_url: str,
    text: str,
    *,
    signing_secret: str,
    user_id: str,
    team_id: str,
    expect: Expect,
    response_url: str = "http://127.0.0.1:9/respond/unused",
) -> Request:
    """A signed ``/apikeys <text>`` slash command; the signature holds for 5 minutes."""
    body = slash_command_body(text=text, user_id=user_id, team_id=team_id, response_url=response_url)
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(signing_secret, body)}
    return Request(f"{base_url}/slack/events", body, headers, expect)


def verify(base_url: str, key: str, *, expect: Expect) -> Request:
    body = b'{"key": "' + key.encode() + b'"}'
    return Request(f"{base_url}/v1/keys/verify", body, {"Content-Type": "application/json"}, expect)


async def send(session: aiohttp.ClientSession, request: Request, into: Measured | None) -> None:
    start = time.perf_counter()
    try:
        async with session.post(request.url, data=request.body, headers=request.headers) as response:
            body = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as err:
        if into is not None:
            into.record_error(f"{type(err).__name__}: {err}")
        return
    took = time.perf_counter() - start
    if into is None:
        return
    if status != 200:
        into.record_error(f"HTTP {status}: {body[:200]!r}")
    elif not request.expect(body):
        into.record_error(f"unexpected reply: {body[:200]!r}")
    else:
        into.latencies.append(took)


def session(concurrency: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30))


async def for_duration(
    make: Callable[[], Request], *, concurrency: int, duration: float, warmup: float = 0.0
) -> Measured:
    """Closed loop for ``duration`` seconds after ``warmup`` seconds that are not recorded."""
    measured = Measured()
    async with session(concurrency) as client:

        async def worker(until: float, into: Measured | None) -> None:
            while time.perf_counter() < until:
                await send(client, make(), into)

        if warmup > 0:
            until = time.perf_counter() + warmup
            await asyncio.gather(*(worker(until, None) for _ in range(concurrency)))
        start = time.perf_counter()
        await asyncio.gather(*(worker(start + duration, measured) for _ in range(concurrency)))
        measured.elapsed = time.perf_counter() - start
    return measured


async def while_running(
    make: Callable[[], Request], *, concurrency: int, other: "asyncio.Task[object]"
) -> Measured:
    """Closed loop for as long as ``other`` runs (at least one request per worker)."""
    measured = Measured()
    async with session(concurrency) as client:

        async def worker() -> None:
            await send(client, make(), measured)
            while not other.done():
                await send(client, make(), measured)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        measured.elapsed = time.perf_counter() - start
    return measured


async def for_each(requests: Iterator[Request], *, concurrency: int) -> Measured:
    """Closed loop that sends every request of ``requests`` once."""
    measured = Measured()
    async with session(concurrency) as client:

        async def worker() -> None:
            for request in requests:  # one shared iterator: each request goes out once
                await send(client, request, measured)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        measured.elapsed = time.perf_counter() - start
    return measured


def cycle(requests: list[Request]) -> Callable[[], Request]:
    items = itertools.cycle(requests)
    return lambda: next(items)

"""One benchmark run: start the servers, seed, drive every workload, evaluate the targets.

Order (each step sees the state the previous ones left): floors; ``help``; ``list`` at 1,000 keys, then
at c=1 while 200 message events per second arrive;
warm verify and the malformed-key query check; cold verify; flooded verify; first-time verifies and
creates while guessers flood known key ids; ``create``; ``list`` while creates run; the 100,000-key
fill and ``list`` at 10,000 keys in the project; memory last, after every other request.
``--only`` runs some of these phases, in this order, against a freshly seeded keybot.
"""

import asyncio
import contextlib
import itertools
import json
import os
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench import (
    BENCH_DIR,
    BIG_PROJECT,
    LIST_PROJECT,
    OWNER,
    ROOT,
    SIGNING_SECRET,
    TEAM,
    WRITES_PROJECT,
    load,
)
from bench.load import Measured, Request
from bench.report import Row, Target, machine, write
from bot.domain.hashing import Hasher, HashParams
from bot.domain.keys import KEY_ID_LEN, KeyFormat

PG_ADMIN_URL = os.environ.get("KEYBOT_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
HIGH = 32
MEMORY_LIMIT_MB = 150.0
FLAT_MB_PER_1000 = 0.1


class BenchError(Exception):
    """The run could not go on; ``str()`` says why and where the logs are."""


@dataclass(frozen=True)
class Config:
    duration: float
    warmup: float
    real_keys: int
    list_keys: int
    big_project_keys: int
    org_keys: int
    background_creates: int
    unknown_keys: int
    memory_requests: int
    memory_every: int
    rounds: int
    malformed_requests: int
    fresh_keys: int  # real keys verified only by the guess-flood phase, each once (half at rest)
    guessed_key_ids: int  # known key ids the guessers send wrong secrets for
    guess_flood_warmup: float  # seconds of guessing before measuring: the key ids' budgets run out
    creates_per_slice: int


FULL = Config(
    duration=4.0,
    warmup=0.5,
    real_keys=300,
    list_keys=1_000,
    big_project_keys=10_000,
    org_keys=100_000,
    background_creates=200,
    unknown_keys=5_000,
    memory_requests=20_000,
    memory_every=1_000,
    rounds=4,
    malformed_requests=2_000,
    fresh_keys=120,
    guessed_key_ids=4,
    guess_flood_warmup=3.0,
    creates_per_slice=6,
)
QUICK = Config(
    duration=0.3,
    warmup=0.1,
    real_keys=6,
    list_keys=100,
    big_project_keys=1_000,
    org_keys=2_000,
    background_creates=8,
    unknown_keys=100,
    memory_requests=600,
    memory_every=100,
    rounds=2,
    malformed_requests=200,
    fresh_keys=12,
    guessed_key_ids=2,
    guess_flood_warmup=1.0,
    creates_per_slice=2,
)


@dataclass
class Server:
    kind: str
    process: asyncio.subprocess.Process
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def start_server(kind: str, *args: str, logs: Path) -> Server:
    """Start ``python -m bench.servers <kind>`` and wait for the line announcing its port."""
    log = logs / f"{kind}.log"
    with log.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.servers",
            kind,
            *args,
            cwd=ROOT,
            env=_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
        )
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=120)
    except TimeoutError:
        line = b""
    if not line:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise BenchError(f"the {kind} server did not start; its log ({log}) ends with:\n{_tail(log)}")
    return Server(kind=kind, process=process, url=json.loads(line)["url"], log=log)


async def stop_server(server: Server) -> None:
    if server.process.returncode is not None:
        return
    server.process.terminate()
    try:
        await asyncio.wait_for(server.process.wait(), timeout=15)
    except TimeoutError:
        server.process.kill()
        await server.process.wait()


async def run_step(*args: str, logs: Path, name: str) -> dict[str, Any]:
    """Run ``python -m bench.seed …`` to completion; its last stdout line is JSON."""
    log = logs / f"{name}.log"
    with log.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.seed",
            *args,
            cwd=ROOT,
            env=_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
        )
        out, _ = await process.communicate()
    if process.returncode != 0:
        raise BenchError(f"seeding step {name} failed; its log ({log}) ends with:\n{_tail(log)}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no VmRSS for process {pid}")


def warnings(log: Path) -> dict[str, int]:
    """keybot's WARNING and ERROR lines, without their timestamps, counted."""
    counts: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines():
        _, sep, rest = line.partition(" WARNING ")
        if not sep:
            _, sep, rest = line.partition(" ERROR ")
        if sep and "`token` (or SLACK_BOT_TOKEN" not in rest:
            rest = re.sub(r"\(ref [0-9A-F]+\)", "(ref …)", rest)
            counts[rest] = counts.get(rest, 0) + 1
    return counts


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def argon2_hash_seconds(samples: int = 7) -> float:
    """Median wall time of one OWASP argon2id hash in this process."""
    hasher = Hasher(HashParams())
    times = []
    for i in range(samples):
        start = time.perf_counter()
        hasher.hash_sync(f"bench-hash-timing-{i}")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def argon2_parallel_rate(threads: int, *, each: int = 4) -> float:
    """OWASP argon2id hashes per second with ``threads`` threads hashing at once in this process."""
    hasher = Hasher(HashParams())

    def work(_: int) -> None:
        for i in range(each):
            hasher.hash_sync(f"bench-parallel-{i}")

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(work, range(threads)))
    return threads * each / (time.perf_counter() - start)


@contextlib.asynccontextmanager
async def database(db: str, workdir: Path) -> AsyncIterator[tuple[str, str | None]]:
    """The URL of a fresh database (a temp SQLite file, or a new PostgreSQL database dropped at the end)."""
    if db == "sqlite":
        import sqlite3

        yield f"sqlite+aiosqlite:///{workdir / 'keybot.db'}", sqlite3.sqlite_version
        return
    from sqlalchemy import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    name = f"keybot_bench_{secrets.token_hex(4)}"
    admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            version = str((await conn.exec_driver_sql("SHOW server_version")).scalar_one())
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as err:
        await admin.dispose()
        raise BenchError(
            f"cannot create a PostgreSQL database at {make_url(PG_ADMIN_URL).render_as_string()} ({err}). "
            "Start PostgreSQL or set KEYBOT_BENCH_PG_URL."
        ) from None
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False), version
    finally:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.dispose()


class Bench:
    """The benchmark workloads against running servers; fills ``rows`` and ``targets``."""

    def __init__(
        self,
        config: Config,
        *,
        keybot: Server,
        bolt: Server,
        floor: Server,
        valid_keys: list[str],
        db_url: str,
        logs: Path,
        say: Callable[[str], None],
        fresh_keys: list[str] | None = None,
    ) -> None:
        self.cfg = config
        self.keybot, self.bolt, self.floor = keybot, bolt, floor
        self.valid_keys = valid_keys
        self.fresh_keys = fresh_keys or []
        self.db_url = db_url
        self.logs = logs
        self.say = say
        self.rows: list[Row] = []
        self.targets: list[Target] = []
        self.extra: dict[str, Any] = {}
        self._names = itertools.count(1)
        self._format = KeyFormat("kb")
        self.small = f"list {_k(config.list_keys)}"
        self.response_url = "http://127.0.0.1:9/respond/unused"

    # -- helpers ---------------------------------------------------------------------------

    def command(self, server: Server, text: str, expect: load.Expect = load.not_an_error_reply) -> Request:
        return load.command(
            server.url,
            text,
            signing_secret=SIGNING_SECRET,
            user_id=OWNER,
            team_id=TEAM,
            expect=expect,
            response_url=self.response_url,
        )

    def create_request(self, *, first_reply: bool = False) -> Request:
        """A create of a new key name. Under a queue of creates, keybot acks "Working on it" within 2 s
        and sends the key through the response_url (the Slack stand-in), as Slack's 3-second ack
        deadline requires; with ``first_reply`` only the key itself in the ack counts as an answer."""
        name = f"k{next(self._names):06d}"
        expect = load.says(b"New key") if first_reply else load.says_any(b"New key", b"Working on it")
        return self.command(self.keybot, f"create {WRITES_PROJECT} {name}", expect)

    def list_request(self, project: str) -> Request:
        return self.command(self.keybot, f"list {project}", _list_reply)

    def verify_request(self, server: Server, key: str, expect: load.Expect) -> Request:
        return load.verify(server.url, key, expect=expect)

    async def stats(self) -> dict[str, int]:
        """keybot's counters: SQL statements executed, database connections opened, argon2 hashes
        (``argon2_creates``) and verifies (``argon2_verifies``) run so far, and the work now queued or
        running in each argon2 lane (``create_lane_pending``, ``verify_lane_pending``)."""
        async with aiohttp.ClientSession() as client, client.get(f"{self.keybot.url}/_bench/stats") as r:
            data = await r.json()
        return {name: int(value) for name, value in data.items()}

    async def statements(self) -> int:
        return (await self.stats())["statements"]

    async def keep_pages(self, size: int | None) -> None:
        """How many pages of keys keybot keeps between commits (SQLite): 0 none, None its default."""
        query = "" if size is None else f"?size={size}"
        async with aiohttp.ClientSession() as client, client.post(f"{self.keybot.url}/_bench/keep-pages{query}") as r:
            r.raise_for_status()

    async def on_keybot(self, run: Awaitable[Measured]) -> tuple[Measured, int]:
        """Run one measurement against keybot; also return the SQL statements it executed meanwhile."""
        before = await self.statements()
        measured = await run
        return measured, await self.statements() - before

    async def versus(
        self, make: Callable[[], Request], base: Callable[[], Request], c: int
    ) -> tuple[Measured, float | None, Measured]:
        """``make`` and its baseline ``base`` in alternating slices (ABBA…), so drift on a noisy
        machine hits both alike. Returns keybot's measurement, its SQL statements per request, and
        the baseline's measurement."""
        cfg = self.cfg
        await load.for_duration(base, concurrency=c, duration=cfg.warmup)
        await load.for_duration(make, concurrency=c, duration=cfg.warmup)
        mine, theirs, statements = Measured(), Measured(), 0
        piece = cfg.duration / cfg.rounds
        for i in range(cfg.rounds):
            for which in ("base", "mine") if i % 2 == 0 else ("mine", "base"):
                if which == "base":
                    theirs.merge(await load.for_duration(base, concurrency=c, duration=piece))
                else:
                    part, sql = await self.on_keybot(load.for_duration(make, concurrency=c, duration=piece))
                    mine.merge(part)
                    statements += sql
        return mine, (statements / mine.count if mine.count else None), theirs

    async def at_rest(self, make: Callable[[], Request], c: int) -> tuple[Measured, float | None]:
        await load.for_duration(make, concurrency=c, duration=self.cfg.warmup)
        measured, sql = await self.on_keybot(
            load.for_duration(make, concurrency=c, duration=self.cfg.duration)
        )
        return measured, (sql / measured.count if measured.count else None)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        base = ""
        if row.baseline_rps is not None:
            base = f"  [base {row.baseline_rps:.0f}/s p50 {row.baseline_p50_ms:.2f} p99 {row.baseline_p99_ms:.2f}]"
        self.say(
            f"  {row.workload:<30} c={row.concurrency:<3}{row.rps:>7.0f} req/s  p50 {row.p50_ms:7.2f} ms  "
            f"p99 {row.p99_ms:7.2f} ms  err {row.errors}{base}"
            + (f"  ratio {row.ratio:.2f}" if row.ratio is not None else "")
            + ("" if row.passed is None else ("  PASS" if row.passed else "  FAIL"))
        )
        for sample in row.error_samples:
            self.say(f"    error: {sample}")
        return row

    def judge(
        self, row: Row, target: str, check: Callable[[float], bool], *, what: str | None = None
    ) -> None:
        """Attach a target to ``row`` (its ratio) and list it among the run's targets."""
        row.target = target
        row.passed = row.ratio is not None and check(row.ratio)
        kind = what or ("p50 ratio" if row.concurrency == 1 else "throughput ratio")
        self.targets.append(
            Target(
                f"{row.workload} c={row.concurrency}",
                f"{kind} {_r(row.ratio)}",
                target,
                row.passed,
                f"vs {row.baseline_text}",
            )
        )

    def hash_bound(self) -> tuple[float, float]:
        """(one argon2 hash in seconds, cores ÷ that) measured now, in this process."""
        seconds = argon2_hash_seconds()
        return seconds, (os.cpu_count() or 1) / seconds

    # -- workloads ---------------------------------------------------------------------------

    async def help(self) -> None:
        self.say("help vs the bare Bolt app")
        make = load.cycle([self.command(self.keybot, "help", load.says(b"keybot manages"))])
        floor = load.cycle([self.command(self.bolt, "help", load.any_body)])
        for c in (1, HIGH):
            mine, sql, base = await self.versus(make, floor, c)
            self.add(Row.of("help", c, mine, base=base, baseline="bare Bolt", statements_per_request=sql))

    async def list_at_rest(self) -> None:
        self.say(f"list {LIST_PROJECT} ({self.cfg.list_keys:,} keys) vs the bare Bolt app")
        make = load.cycle([self.list_request(LIST_PROJECT)])
        floor = load.cycle([self.command(self.bolt, f"list {LIST_PROJECT}", load.any_body)])
        share = 0.3 if self.db_url.startswith("postgresql") else 0.5  # a round trip per page on PostgreSQL
        for c, target, check in (
            (1, "p50 ≤ 3× floor", _at_most(3)),
            (HIGH, f"req/s ≥ {share}× floor", _at_least(share)),
        ):
            mine, sql, base = await self.versus(make, floor, c)
            row = Row.of(self.small, c, mine, base=base, baseline="bare Bolt", statements_per_request=sql)
            self.judge(row, target, check)
            self.add(row)
            if c == HIGH:  # no stalls, such as a full collection of the start-up heap (~100 ms each)
                tail = row.p99_ms / row.p50_ms if row.p50_ms else float("inf")
                self.targets.append(
                    Target(
                        f"{self.small} c={c} tail",
                        f"p99 ÷ p50 {_r(tail)}",
                        "p99 ≤ 2× p50",
                        tail <= 2,
                        f"p50 {_r(row.p50_ms)} ms, p99 {_r(row.p99_ms)} ms; bare Bolt's own in the same run: "
                        f"{_r((row.baseline_p99_ms or 0) / row.baseline_p50_ms) if row.baseline_p50_ms else '—'}",
                    )
                )
        if not self.db_url.startswith("postgresql"):  # what a page costs when it must be read anew
            await self.keep_pages(0)
            try:
                for c in (1, HIGH):
                    mine, sql, base = await self.versus(make, floor, c)
                    row = Row.of(
                        f"{self.small}, every page read anew", c, mine, base=base, baseline="bare Bolt",
                        statements_per_request=sql,
                        note="the same requests with no page kept (as after a change): the statement and the "
                        "rendering run for every request" if c == HIGH else "",
                    )
                    self.add(row)
            finally:
                await self.keep_pages(None)

    async def list_during_messages(self) -> None:
        """``list`` at c=1 while ordinary messages stream into /slack/events at ``MESSAGE_RATE`` per second
        (each costs keybot one key-regex scan and an ack), against ``list`` at rest before and after (A B A)."""
        self.say(f"list {LIST_PROJECT} at c=1 while {MESSAGE_RATE} messages/s arrive vs at rest")
        make = load.cycle([self.list_request(LIST_PROJECT)])
        half = self.cfg.duration / 2
        rest, _ = await self.at_rest(make, 1)
        async with self.sidecar("messages", "the message stream", "--rate", str(MESSAGE_RATE)) as stream:
            await load.for_duration(make, concurrency=1, duration=self.cfg.warmup)
            during, sql = await self.on_keybot(load.for_duration(make, concurrency=1, duration=self.cfg.duration))
        rest.merge(await load.for_duration(make, concurrency=1, duration=half))
        self.add(
            Row.of(
                f"message events at {MESSAGE_RATE}/s",
                1,
                stream,
                note=f"{stream.count} ordinary channel messages, signed like Slack's, sent at a fixed pace from "
                f"their own process at nice 19 ({stream.rps:.0f}/s achieved) while list ran; each must be acked 200",
            )
        )
        row = Row.of(
            f"{self.small} during messages",
            1,
            during,
            base=rest,
            baseline=f"{self.small} at rest",
            statements_per_request=sql / during.count if during.count else None,
            note=f"p99 {_r(during.p99)} ms during, {_r(rest.p99)} ms at rest",
        )
        if not during.latencies or during.errors:
            row.ratio = None  # nothing measured, or list failed: no ratio, and FAIL
        self.judge(row, "p50 ≤ 1.5× at rest", _at_most(1.5))
        self.add(row)

    async def verify_warm(self) -> None:
        self.say("verify, warm cache (one valid key again and again) vs the bare aiohttp handler")
        make = load.cycle([self.verify_request(self.keybot, self.valid_keys[0], load.valid_verdict)])
        floor = load.cycle([self.verify_request(self.floor, self.valid_keys[0], load.invalid_verdict)])
        for c in (1, HIGH):
            mine, sql, base = await self.versus(make, floor, c)
            row = Row.of(
                "verify warm", c, mine, base=base, baseline="bare aiohttp", statements_per_request=sql
            )
            if c == HIGH:
                self.judge(row, "req/s ≥ 0.5× floor", _at_least(0.5))
            self.add(row)

    def malformed_keys(self) -> list[str]:
        good = self._format.generate().plaintext
        flipped = good[:-1] + ("A" if good[-1] != "A" else "B")  # right shape, wrong CRC
        return [flipped, good[:-3], "kb_" + "x" * 40, "sk_live_" + good[3:], "", good.swapcase()]

    async def malformed_costs_no_query(self) -> None:
        keys = self.malformed_keys()
        count = self.cfg.malformed_requests
        requests = (
            self.verify_request(self.keybot, keys[i % len(keys)], load.invalid_verdict) for i in range(count)
        )
        measured, statements = await self.on_keybot(load.for_each(iter(requests), concurrency=8))
        per_request = statements / max(1, measured.count)
        self.extra["malformed_check"] = {"requests": measured.count, "statements": statements}
        self.say(
            f"  {measured.count} malformed verifies in {measured.elapsed:.1f} s; SQL statements meanwhile: {statements}"
        )
        self.targets.append(
            Target(
                "malformed key costs no database query",
                f"{statements} SQL statements during {measured.count} malformed verifies ({per_request:.4f}/req)",
                "< 0.01/req",
                per_request < 0.01 and measured.errors == 0,
                "the outbox poller's one statement per second is counted too",
            )
        )

    async def verify_cold(self) -> None:
        cold = self.valid_keys[1:]
        self.say(f"verify, cold cache ({len(cold)} distinct valid keys, each once)")
        hash_seconds, bound = self.hash_bound()
        requests = iter([self.verify_request(self.keybot, k, load.valid_verdict) for k in cold])
        measured, sql = await self.on_keybot(load.for_each(requests, concurrency=HIGH))
        self.add(
            Row.of(
                "verify cold",
                HIGH,
                measured,
                statements_per_request=sql / max(1, measured.count),
                baseline=f"argon2 bound {bound:.0f}/s",
                ratio=measured.rps / bound,
                note=f"each request pays one argon2 verify; bound = cores ÷ one hash ({hash_seconds * 1000:.1f} ms)",
            )
        )

    def flood(self, server: Server) -> list[Request]:
        """Three malformed keys for each never-seen, well-formed unknown key."""
        malformed = self.malformed_keys()
        unknown = [self._format.generate().plaintext for _ in range(self.cfg.unknown_keys)]
        requests: list[Request] = []
        for i, key in enumerate(unknown):
            requests.append(self.verify_request(server, key, load.invalid_verdict))
            for j in range(3):
                bad = malformed[(3 * i + j) % len(malformed)]
                requests.append(self.verify_request(server, bad, load.invalid_verdict))
        return requests

    async def flooded(
        self, server: Server, probe: Callable[[], Request], flooders: int
    ) -> tuple[Measured, Measured]:
        """(the flood, the probe) run side by side for the configured duration."""
        return await asyncio.gather(
            load.for_duration(
                load.cycle(self.flood(server)), concurrency=flooders, duration=self.cfg.duration
            ),
            load.for_duration(probe, concurrency=1, duration=self.cfg.duration),
        )

    async def verify_flooded(self) -> None:
        self.say("verify flooded by malformed and unknown keys, one client verifying a valid key")
        key = self.valid_keys[0]
        probe = load.cycle([self.verify_request(self.keybot, key, load.valid_verdict)])
        floor_probe = load.cycle([self.verify_request(self.floor, key, load.invalid_verdict)])
        rest, _ = await self.at_rest(probe, 1)
        flooders = HIGH - 1
        _, floor_valid = await self.flooded(self.floor, floor_probe, flooders)
        before = await self.statements()
        flooded, valid = await self.flooded(self.keybot, probe, flooders)
        sql = (await self.statements() - before) / max(1, flooded.count + valid.count)
        self.add(
            Row.of("verify flood: ¾ malformed, ¼ unknown", flooders, flooded, statements_per_request=sql)
        )
        self.add(
            Row.of(
                "verify valid key during flood",
                1,
                valid,
                base=floor_valid,
                baseline="bare aiohttp, same flood",
                note=f"vs the same key at rest on keybot: p50 {_r(valid.p50 / rest.p50)}× "
                f"({rest.p50:.2f} ms), p99 {_r(valid.p99 / rest.p99)}× ({rest.p99:.2f} ms); "
                "the flood's unknown keys are distinct (one indexed query each)",
            )
        )

    async def first_time_verifies_and_creates(self, keys: list[str], creates: int) -> tuple[Measured, Measured]:
        """Each of ``keys`` verified once (c=1: each pays its own argon2), then ``creates`` creates
        (c=1) that must answer in their first reply."""
        verified = await load.for_each(
            iter([self.verify_request(self.keybot, k, load.valid_verdict) for k in keys]), concurrency=1
        )
        made = await load.for_each(
            iter([self.create_request(first_reply=True) for _ in range(creates)]), concurrency=1
        )
        return verified, made

    def guessers(self, key_ids: list[str]) -> contextlib.AbstractAsyncContextManager[Measured]:
        """``HIGH`` guessers (``python -m bench.flood``, its own process at nice 19) flooding keybot
        with wrong secrets for ``key_ids`` while the block runs; their measurement fills in after it."""
        args = [arg for key_id in key_ids for arg in ("--key-id", key_id)]
        return self.sidecar("flood", "the guessers", *args, "--concurrency", str(HIGH))

    @contextlib.asynccontextmanager
    async def sidecar(self, module: str, what: str, *args: str) -> AsyncIterator[Measured]:
        """``python -m bench.<module> --url <keybot> *args`` (a load process of its own) while the block
        runs; its measurement (one JSON line at SIGTERM) fills in after it."""
        log = self.logs / f"{module}.log"
        with log.open("ab") as err:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", f"bench.{module}", "--url", self.keybot.url, *args,
                cwd=ROOT, env=_env(), stdout=asyncio.subprocess.PIPE, stderr=err,
            )  # fmt: skip
        assert process.stdout is not None
        measured = Measured()
        try:
            if not await asyncio.wait_for(process.stdout.readline(), timeout=60):
                raise BenchError(f"{what} did not start; their log ({log}) ends with:\n{_tail(log)}")
            yield measured
        finally:
            if process.returncode is None:
                process.terminate()
            out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
        lines = out.decode().strip().splitlines()
        if process.returncode != 0 or not lines:
            raise BenchError(f"{what} failed; their log ({log}) ends with:\n{_tail(log)}")
        measured.merge(Measured(**json.loads(lines[-1])))

    async def verify_guessed(self) -> None:
        """Guessers flood known key ids with wrong secrets (each would cost argon2 without the key id's
        failure budget); meanwhile other real keys are verified for the first time and keys are created.
        Slices: at rest, under the flood, at rest again (A B A), so drift hits both sides alike."""
        cfg = self.cfg
        fresh = self.fresh_keys
        if len(fresh) < 4:
            raise BenchError("the guess-flood phase needs fresh keys (Config.fresh_keys ≥ 4)")
        targets = [key[3 : 3 + KEY_ID_LEN] for key in self.valid_keys[-cfg.guessed_key_ids :]]
        quarter = len(fresh) // 4
        rest_keys = fresh[:quarter] + fresh[3 * quarter :]
        flood_keys = fresh[quarter : 3 * quarter]
        per_slice = cfg.creates_per_slice
        self.say(
            f"{HIGH} guessers send wrong secrets for {len(targets)} known key ids; meanwhile {len(flood_keys)} "
            f"first-time verifies of other keys and {per_slice} creates (vs the same at rest)"
        )
        rest_verify, rest_create = await self.first_time_verifies_and_creates(rest_keys[:quarter], per_slice // 2)
        before = await self.stats()
        async with self.guessers(targets) as flood:
            await asyncio.sleep(cfg.guess_flood_warmup)
            warm = await self.stats()
            flood_verify, flood_create = await self.first_time_verifies_and_creates(flood_keys, per_slice)
            during = await self.stats()
        after = await self.stats()
        again_verify, again_create = await self.first_time_verifies_and_creates(
            rest_keys[quarter:], per_slice - per_slice // 2
        )
        rest_verify.merge(again_verify)
        rest_create.merge(again_create)

        verified = len(flood_verify.latencies)  # each paid one argon2; a refused one (503) paid none
        verifies = after["argon2_verifies"] - before["argon2_verifies"] - verified
        measured_guesses = during["argon2_verifies"] - warm["argon2_verifies"] - verified
        self.extra["guess_flood"] = {
            "guesses": flood.count,
            "argon2_verifies_for_guesses": verifies,
            "argon2_verifies_for_guesses_while_measuring": measured_guesses,
            "budget_bound": 20 * len(targets),
        }
        self.add(
            Row.of(
                f"guess flood: wrong secrets, {len(targets)} key ids",
                HIGH,
                flood,
                statements_per_request=(after["statements"] - before["statements"]) / max(1, flood.count),
                note=f"{flood.count} guesses from a separate process at nice 19 (the attacker's CPU is not "
                f"keybot's), the first {_r(cfg.guess_flood_warmup)} s before measuring; argon2 ran "
                f"{verifies} times for guesses (bound: 20 per key id per minute = "
                f"{20 * len(targets)}), {measured_guesses} of them while measuring; every other guess was "
                "answered NOT_FOUND with no query and no argon2",
            )
        )
        verify_row = Row.of(
            "first-time verify during guess flood",
            1,
            flood_verify,
            base=rest_verify,
            baseline="first-time verify at rest",
            note=f"{flood_verify.count} distinct real keys verified once each during the flood, "
            f"{rest_verify.count} at rest (half before, half after); {flood_verify.errors} refused; p99 "
            f"{_r(flood_verify.p99 / rest_verify.p99 if rest_verify.p99 else None)}× at rest",
        )
        if flood_verify.errors or not flood_verify.latencies:
            verify_row.ratio = None  # a refused verify (503) is fast, not good: no ratio, and FAIL
        self.judge(verify_row, "p50 ≤ 2× at rest", _at_most(2))
        self.add(verify_row)
        create_row = Row.of(
            "create during guess flood",
            1,
            flood_create,
            base=rest_create,
            baseline="create at rest",
            note=f"{flood_create.count} creates during the flood, {rest_create.count} at rest; an error is "
            "a reply that is not the new key itself (e.g. 'Working on it' after the 2 s ack budget)",
        )
        self.add(create_row)
        self.targets.append(
            Target(
                "create during guess flood answers in its first reply",
                f"{flood_create.count - flood_create.errors} of {flood_create.count} did "
                f"(p50 {flood_create.p50:.0f} ms, {_r(create_row.ratio)}× at rest)",
                "all",
                flood_create.errors == 0 and flood_create.count > 0,
                "the Slack ack itself carries the new key, not 'Working on it'",
            )
        )

    async def create(self) -> None:
        cores = os.cpu_count() or 1
        before, _ = self.hash_bound()
        self.say(f"create (one argon2id hash {before * 1000:.1f} ms now; {cores} cores)")
        measured, sql = await self.at_rest(self.create_request, HIGH)
        after, _ = self.hash_bound()
        hash_seconds = (before + after) / 2
        bound = cores / hash_seconds
        self.extra["argon2_hash_ms_around_create"] = [before * 1000, after * 1000]
        parallel = await asyncio.to_thread(argon2_parallel_rate, cores)
        self.extra["argon2_parallel_hashes_per_s"] = parallel
        row = Row.of(
            "create",
            HIGH,
            measured,
            statements_per_request=sql,
            baseline=f"argon2 bound {bound:.0f}/s",
            ratio=measured.rps / bound,
            note=f"bound = {cores} cores ÷ {hash_seconds * 1000:.1f} ms (one hash, measured just before and "
            f"after); argon2 alone on {cores} threads in parallel here: {parallel:.1f} hashes/s, so create "
            f"reaches {_r(measured.rps / parallel)}× of what this machine's argon2 can do",
        )
        self.judge(row, "req/s ≥ 0.8× bound", _at_least(0.8), what="req/s ÷ (cores ÷ hash time)")
        self.add(row)

    async def list_during_creates(self) -> None:
        n = self.cfg.background_creates
        self.say(f"list {LIST_PROJECT} at rest, then while {n} creates run (c={HIGH})")
        make = load.cycle([self.list_request(LIST_PROJECT)])
        rest, _ = await self.at_rest(make, 1)
        creates = iter([self.create_request() for _ in range(n)])
        background = asyncio.create_task(load.for_each(creates, concurrency=HIGH))
        await asyncio.sleep(0)
        listed = await load.while_running(make, concurrency=1, other=background)
        made = await background
        for sample in made.error_samples:
            self.say(f"    create error: {sample}")
        row = Row.of(
            f"{self.small} during creates",
            1,
            listed,
            base=rest,
            baseline=f"{self.small} at rest",
            ratio=listed.p99 / rest.p99 if rest.p99 else None,
            note=f"ratio is p99 ÷ p99 at rest (measured just before); {made.count} creates at "
            f"{made.rps:.0f}/s, {made.errors} errors, create p50 {made.p50:.0f} ms, p99 {made.p99:.0f} ms"
            + (f"; create errors: {' | '.join(made.error_samples)}" if made.errors else ""),
        )
        self.judge(row, "p99 ≤ 2× at rest", _at_most(2), what="p99 ratio")
        self.add(row)

    async def list_at_scale(self) -> None:
        cfg = self.cfg
        small = next((r for r in self.rows if r.workload == self.small and r.concurrency == 1), None)
        self.say(
            f"seeding: {cfg.org_keys:,} keys in the org, {cfg.big_project_keys:,} in project {BIG_PROJECT}"
        )
        start = time.perf_counter()
        seeded = await run_step(
            "fill",
            "--url",
            self.db_url,
            "--project-keys",
            str(cfg.big_project_keys),
            "--org-keys",
            str(cfg.org_keys),
            logs=self.logs,
            name="seed-fill",
        )
        self.extra["fill"] = {**seeded, "seconds": round(time.perf_counter() - start, 1)}
        self.say(f"  seeded {seeded} in {time.perf_counter() - start:.1f} s")
        self.say(
            f"list {BIG_PROJECT} vs list {LIST_PROJECT}, interleaved, both in the {cfg.org_keys:,}-key org"
        )
        big = load.cycle([self.list_request(BIG_PROJECT)])
        listed = load.cycle([self.list_request(LIST_PROJECT)])
        name = f"list {_k(cfg.big_project_keys)}, org {_k(cfg.org_keys)}"
        for c in (1, HIGH):
            mine, sql, base = await self.versus(big, listed, c)
            row = Row.of(
                name,
                c,
                mine,
                base=base,
                baseline=f"{self.small}, org {_k(cfg.org_keys)}",
                statements_per_request=sql,
            )
            if c == 1:
                self.judge(row, f"p50 ≤ 1.3× {self.small}", _at_most(1.3))
            if c == 1 and small is not None:
                row.note = (
                    f"baseline: list {LIST_PROJECT} in the same org, interleaved; vs {self.small} before the fill "
                    f"(org of ~{cfg.list_keys + cfg.real_keys:,} keys): {_r(mine.p50 / small.p50_ms)}×"
                )
            self.add(row)

    async def memory(self) -> None:
        cfg = self.cfg
        self.say(
            f"memory: {cfg.memory_requests:,} requests (help, list, verify valid/malformed/unknown), c=8"
        )
        malformed = self.malformed_keys()
        fixed = [
            self.command(self.keybot, "help", load.says(b"keybot manages")),
            self.list_request(LIST_PROJECT),
            self.verify_request(self.keybot, self.valid_keys[0], load.valid_verdict),
            self.verify_request(self.keybot, malformed[0], load.invalid_verdict),
        ]

        def batch(size: int) -> Iterator[Request]:
            for i in range(size):
                if i % 5 == 4:  # a never-seen, well-formed, unknown key: one query, one cache entry
                    yield self.verify_request(
                        self.keybot, self._format.generate().plaintext, load.invalid_verdict
                    )
                else:
                    yield fixed[i % 5]

        samples: list[tuple[int, float]] = [(0, rss_mb(self.keybot.pid))]
        errors, done = 0, 0
        while done < cfg.memory_requests:
            measured = await load.for_each(batch(cfg.memory_every), concurrency=8)
            done += measured.count
            errors += measured.errors
            samples.append((done, rss_mb(self.keybot.pid)))
        final = samples[-1][1]
        half = [s for s in samples if s[0] >= done / 2]
        slope = _slope(half) * 1000
        growth = half[-1][1] - half[0][1]
        self.extra["memory"] = {"samples": samples, "errors": errors, "slope_mb_per_1000": slope}
        self.say(
            f"  RSS {samples[0][1]:.1f} → {final:.1f} MB; last half: {growth:+.2f} MB, {slope:+.3f} MB/1000 req"
        )
        self.targets.append(
            Target(
                f"keybot RSS after {done:,} more requests",
                f"{final:.1f} MB",
                f"≤ {MEMORY_LIMIT_MB:.0f} MB",
                final <= MEMORY_LIMIT_MB,
                f"{errors} errors; RSS {self.extra['rss_after_start_mb']:.1f} MB after start, "
                f"{samples[0][1]:.1f} MB after the other workloads, before this phase",
            )
        )
        self.targets.append(
            Target(
                f"RSS flat over the last {done - half[0][0]:,} requests",
                f"{slope:+.3f} MB per 1,000 requests ({growth:+.2f} MB)",
                f"≤ {FLAT_MB_PER_1000} MB per 1,000",
                slope <= FLAT_MB_PER_1000,
                f"least-squares slope of RSS sampled every {cfg.memory_every:,} requests; "
                "1 request in 5 verifies a new unknown key (the invalid-key cache is bounded at 100,000)",
            )
        )


MESSAGE_RATE = 200  # ordinary messages per second into /slack/events (DESIGN.md §5.5)


def _k(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else f"{n:,}"


def _at_most(limit: float) -> Callable[[float], bool]:
    return lambda ratio: ratio <= limit


def _at_least(limit: float) -> Callable[[float], bool]:
    return lambda ratio: ratio >= limit


def _list_reply(body: bytes) -> bool:
    return b":warning:" not in body and b"kb_" in body


def _r(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _slope(points: list[tuple[int, float]]) -> float:
    if len(points) < 2:
        return 0.0
    xs, ys = [float(p[0]) for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


PHASES = (
    "help",
    "list",
    "list during messages",
    "verify warm",
    "malformed",
    "verify cold",
    "verify flooded",
    "verify guessed",
    "create",
    "list during creates",
    "list at scale",
    "memory",
)


async def run(
    *,
    db: str,
    quick: bool,
    out: Path | None,
    only: list[str] | None = None,
    say: Callable[[str], None] = print,
) -> int:
    """The whole benchmark, or the ``only`` phases of it (in their usual order); returns the process
    exit status (1 if the harness itself failed). A partial run never writes into bench/ unless
    ``out`` says so."""
    cfg = QUICK if quick else FULL
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="keybot-bench-"))
    logs = workdir / "logs"
    logs.mkdir()
    servers: list[Server] = []
    ok = False
    try:
        async with database(db, workdir) as (db_url, db_version):
            slack = await start_server("slack", logs=logs)
            servers.append(slack)
            say(
                f"Slack stand-in at {slack.url}; seeding {cfg.real_keys} real keys and {cfg.list_keys:,} listed keys"
            )
            keys_file = workdir / "keys.json"
            await run_step(
                "initial",
                "--url",
                db_url,
                "--slack-api-url",
                slack.url,
                "--real-keys",
                str(cfg.real_keys + cfg.fresh_keys),
                "--list-keys",
                str(cfg.list_keys),
                "--out",
                str(keys_file),
                logs=logs,
                name="seed-initial",
            )
            seeded_keys: list[str] = json.loads(keys_file.read_text())["valid_keys"]
            keys_file.unlink()
            valid_keys, fresh_keys = seeded_keys[: cfg.real_keys], seeded_keys[cfg.real_keys :]
            # each is stopped at the end even when a later one fails to start
            bolt = await start_server("bolt", "--slack-api-url", slack.url, logs=logs)
            servers.append(bolt)
            floor = await start_server("aiohttp", logs=logs)
            servers.append(floor)
            keybot = await start_server("keybot", "--db-url", db_url, "--slack-api-url", slack.url, logs=logs)
            servers.append(keybot)
            await _outbox_drained(keybot)
            bench = Bench(
                cfg,
                keybot=keybot,
                bolt=bolt,
                floor=floor,
                valid_keys=valid_keys,
                db_url=db_url,
                logs=logs,
                say=say,
                fresh_keys=fresh_keys,
            )
            bench.response_url = slack.url.replace("/api/", "/respond/bench")
            hash_seconds = argon2_hash_seconds()
            bench.extra["rss_after_start_mb"] = rss_mb(keybot.pid)
            say(
                f"one argon2id hash (OWASP): {hash_seconds * 1000:.1f} ms; keybot RSS {rss_mb(keybot.pid):.1f} MB"
            )
            phases: list[tuple[str, Callable[[], Awaitable[None]]]] = [
                ("help", bench.help),
                ("list", bench.list_at_rest),
                ("list during messages", bench.list_during_messages),
                ("verify warm", bench.verify_warm),
                ("malformed", bench.malformed_costs_no_query),
                ("verify cold", bench.verify_cold),
                ("verify flooded", bench.verify_flooded),
                ("verify guessed", bench.verify_guessed),
                ("create", bench.create),
                ("list during creates", bench.list_during_creates),
                ("list at scale", bench.list_at_scale),
                ("memory", bench.memory),
            ]
            assert tuple(name for name, _ in phases) == PHASES
            if only:
                phases = [(name, phase) for name, phase in phases if name in only]
            rss_after: dict[str, float] = {"start": rss_mb(keybot.pid)}
            connects: dict[str, int] = {}
            for name, phase in phases:
                before = (await bench.stats())["connects"]
                await phase()
                rss_after[name] = rss_mb(keybot.pid)
                connects[name] = (await bench.stats())["connects"] - before
                say(
                    f"  keybot RSS {rss_after[name]:.1f} MB, {threads(keybot.pid)} threads, "
                    f"{connects[name]} new database connections in this phase"
                )
            bench.extra["rss_mb_after"] = rss_after
            bench.extra["db_connections_opened"] = connects
            for server in servers:
                if server.process.returncode is not None:
                    raise BenchError(f"the {server.kind} server died; its log: {server.log}")
            bench.extra["keybot_warnings"] = warnings(keybot.log)
            for line, count in bench.extra["keybot_warnings"].items():
                say(f"keybot logged {count}×: {line}")
            info = {
                "machine": machine(db, db_version),
                "quick": quick,
                "only": only,
                "config": asdict(cfg),
                "argon2_hash_ms": hash_seconds * 1000,
                "run_seconds": time.perf_counter() - started,
                **bench.extra,
            }
            destination = out or (workdir if quick or only else BENCH_DIR)
            stem = "results" if db == "sqlite" else f"results-{db}"
            json_path, md_path = write(
                destination, rows=bench.rows, targets=bench.targets, info=info, stem=stem
            )
            say("")
            say(md_path.read_text())
            say(f"wrote {json_path} and {md_path} in {info['run_seconds']:.0f} s")
            ok = True
            return 0
    except BenchError as err:
        say(f"bench: {err}")
        return 1
    finally:
        for server in reversed(servers):
            await stop_server(server)
        if ok:
            if (quick or only) and out is None:
                shutil.rmtree(logs, ignore_errors=True)
                (workdir / "keybot.db").unlink(missing_ok=True)
            else:
                shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"bench: server logs kept in {logs}")


async def _outbox_drained(keybot: Server, *, within: float = 60.0) -> None:
    """Wait until keybot has sent the DMs queued while seeding, so they do not land in a workload."""
    deadline = time.perf_counter() + within
    async with aiohttp.ClientSession() as client:
        while time.perf_counter() < deadline:
            async with client.get(f"{keybot.url}/healthz") as r:
                if (await r.json()).get("outbox_pending") == 0:
                    return
            await asyncio.sleep(0.2)
    raise BenchError(f"keybot did not drain its outbox within {within:.0f} s; log: {keybot.log}")

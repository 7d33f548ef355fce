"""Where keybot spends its CPU, per workload: ``python -m bench --profile [--db …]`` (needs py-spy).

Starts the same servers and seed as a benchmark run, then for each workload drives keybot at
concurrency 32 while ``py-spy record`` samples it (CPU only: idle threads are not sampled), and writes
the collapsed stacks (``<workload>.txt``, loadable in speedscope or flamegraph.pl) plus a summary
(``summary.md``): the share of samples on the event-loop thread and in worker threads, the
functions with the most self time, the project functions with the most inclusive time, and the
libraries' inclusive shares. Numbers measured while profiling are slower than a benchmark run's.
"""

import asyncio
import json
import re
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import BIG_PROJECT, LIST_PROJECT, load
from bench.load import Request
from bench.run import FULL, Bench, BenchError, Server, database, run_step, start_server, stop_server

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")
_PROJECT = ("bot/", "storage/", "bench/")


@dataclass(frozen=True)
class Frame:
    where: str  # e.g. "bot/web.py:verify" or "sqlalchemy/engine/base.py:_execute_context"
    package: str  # "bot", "storage", "sqlalchemy", "asyncio", …


def _frame(text: str) -> Frame:
    match = _FRAME.match(text.strip())
    if match is None:
        return Frame(text.strip(), text.strip())
    func, path = match["func"], match["path"]
    for marker in ("site-packages/", "/lib/python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    package = path.split("/", 1)[0].removesuffix(".py") if "/" in path or path.endswith(".py") else path
    return Frame(f"{path}:{func}", package)


def summarize(raw: str, *, top: int = 15) -> str:
    """A markdown summary of py-spy's raw (collapsed) output."""
    total = 0
    loop_total = 0
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";")]
        total += count
        if not any(f.where.endswith("threading.py:Thread._bootstrap") for f in frames):
            loop_total += count
        self_time[frames[-1].where] += count
        for where in {f.where for f in frames}:
            inclusive[where] += count
        for package in {f.package for f in frames}:
            packages[package] += count
    if not total:
        return "no samples\n"

    def pct(n: int) -> str:
        return f"{100 * n / total:.1f}%"

    lines = [
        f"{total} samples; event-loop thread {pct(loop_total)}, worker threads {pct(total - loop_total)} "
        "(aiosqlite's connection threads, argon2's executor)",
        "",
        "self time (leaf frame):",
        *[f"  {pct(n):>6}  {where}" for where, n in self_time.most_common(top)],
        "",
        "inclusive, project code:",
        *[
            f"  {pct(n):>6}  {where}"
            for where, n in inclusive.most_common()
            if where.startswith(_PROJECT) and "bench/servers.py" not in where
        ][:top],
        "",
        "inclusive, by package:",
        *[f"  {pct(n):>6}  {package}" for package, n in packages.most_common(top)],
    ]
    return "\n".join(lines) + "\n"


def _find_py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return shutil.which("py-spy") or (str(beside) if beside.exists() else None)


async def _record(
    py_spy: str, keybot: Server, make: Callable[[], Request], *, seconds: float, out: Path
) -> str:
    recorder = await asyncio.create_subprocess_exec(
        py_spy, "record", "--pid", str(keybot.pid), "--duration", str(int(seconds)), "--rate", "200",
        "--format", "raw", "--nonblocking", "--output", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    await asyncio.sleep(0.5)  # let py-spy attach
    measured = await load.for_duration(make, concurrency=32, duration=seconds)
    _, err = await recorder.communicate()
    if recorder.returncode != 0:
        raise BenchError(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
    return (
        f"load while profiling: {measured.rps:.0f} req/s, p50 {measured.p50:.2f} ms, "
        f"p99 {measured.p99:.2f} ms, {measured.errors} errors\n"
    )


async def profile(
    *, db: str, out: Path | None, seconds: float = 6.0, say: Callable[[str], None] = print
) -> int:
    py_spy = _find_py_spy()
    if py_spy is None:
        say("bench: --profile needs py-spy: .venv/bin/pip install py-spy")
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="keybot-profile-"))
    out = out or workdir
    out.mkdir(parents=True, exist_ok=True)
    logs = workdir / "logs"
    logs.mkdir()
    servers: list[Server] = []
    try:
        async with database(db, workdir) as (db_url, _):
            slack = await start_server("slack", logs=logs)
            servers.append(slack)
            keys_file = workdir / "keys.json"
            await run_step(
                "initial", "--url", db_url, "--slack-api-url", slack.url, "--real-keys", "4",
                "--list-keys", str(FULL.list_keys), "--out", str(keys_file), logs=logs, name="seed-initial",
            )  # fmt: skip
            valid = json.loads(keys_file.read_text())["valid_keys"]
            keys_file.unlink()
            await run_step(
                "fill", "--url", db_url, "--project-keys", str(FULL.big_project_keys),
                "--org-keys", str(FULL.org_keys), logs=logs, name="seed-fill",
            )  # fmt: skip
            keybot = await start_server("keybot", "--db-url", db_url, "--slack-api-url", slack.url, logs=logs)
            servers.append(keybot)
            bench = Bench(
                FULL,
                keybot=keybot,
                bolt=keybot,
                floor=keybot,
                valid_keys=valid,
                db_url=db_url,
                logs=logs,
                say=say,
            )
            malformed = bench.malformed_keys()
            flood = [bench.verify_request(keybot, k, load.invalid_verdict) for k in malformed]
            flood.append(bench.verify_request(keybot, valid[0], load.valid_verdict))
            workloads: dict[str, Callable[[], Request]] = {
                "help": load.cycle([bench.command(keybot, "help", load.says(b"keybot manages"))]),
                "list": load.cycle([bench.list_request(LIST_PROJECT)]),
                "list-10k": load.cycle([bench.list_request(BIG_PROJECT)]),
                "verify-warm": load.cycle([bench.verify_request(keybot, valid[0], load.valid_verdict)]),
                "verify-malformed": load.cycle(flood),
                "create": bench.create_request,
            }
            summaries = []
            for name, make in workloads.items():
                await load.for_duration(make, concurrency=32, duration=1.0)  # warm up
                raw_path = out / f"{name}.txt"
                before = await bench.stats()
                note = await _record(py_spy, keybot, make, seconds=seconds, out=raw_path)
                after = await bench.stats()
                note += (
                    f"SQL statements {after['statements'] - before['statements']}, "
                    f"new database connections {after['connects'] - before['connects']}\n"
                )
                text = f"## {name} (c=32)\n\n{note}\n```\n{summarize(raw_path.read_text())}```\n"
                say(text)
                summaries.append(text)
            (out / "summary.md").write_text("# keybot CPU profile (py-spy)\n\n" + "\n".join(summaries))
            say(f"profiles and summary in {out}")
            return 0
    except BenchError as err:
        say(f"bench: {err}; logs in {logs}")
        return 1
    finally:
        for server in reversed(servers):
            await stop_server(server)

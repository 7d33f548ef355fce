"""Guessers as their own process: ``python -m bench.flood --url URL --key-id ID … [--concurrency N]``.

N closed-loop clients send ``POST /v1/keys/verify`` with a real key id and a random secret (right
checksum) until SIGTERM, then print one JSON line: how many guesses, how many went wrong (anything
but HTTP 200 ``NOT_FOUND``), the first few errors and the latency percentiles.

It runs at the lowest CPU priority (nice 19): on a real deployment the guessers' CPU is not keybot's,
and on the benchmark's shared 2 cores this is the closest to that — the flood still arrives as fast
as keybot answers it, but only on CPU that keybot itself (argon2 included) does not want.
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Sequence

from bench import load
from bench.load import Measured, Request
from bot.domain.keys import BASE62, SECRET_LEN, checksum


def guess(url: str, key_id: str) -> Request:
    body = f"kb_{key_id}_{''.join(secrets.choice(BASE62) for _ in range(SECRET_LEN))}"
    return load.verify(url, body + checksum(body), expect=load.not_found_verdict)


async def flood(url: str, key_ids: list[str], *, concurrency: int) -> Measured:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    targets = itertools.cycle(key_ids)
    measured = Measured()
    async with load.session(concurrency) as client:

        async def worker() -> None:
            while not stop.is_set():
                await load.send(client, guess(url, next(targets)), measured)

        print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        measured.elapsed = time.perf_counter() - start
    return measured


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flood", description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="keybot's base URL")
    parser.add_argument("--key-id", action="append", required=True, help="a real key id to guess for")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    with contextlib.suppress(OSError):
        os.nice(19)
    measured = asyncio.run(flood(args.url, args.key_id, concurrency=args.concurrency))
    print(
        json.dumps(
            {
                "latencies": measured.latencies,
                "errors": measured.errors,
                "error_samples": measured.error_samples,
                "elapsed": measured.elapsed,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

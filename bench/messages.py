"""Slack's message stream as its own process: ``python -m bench.messages --url URL [--rate N]``.

Ordinary ``message.channels`` events (no key-shaped string), signed like Slack's, posted to keybot's
``/slack/events`` at a fixed pace (an open loop: a slow answer does not slow the stream) until SIGTERM,
then one JSON line like ``bench.flood``'s: the acks' latencies, the errors and the elapsed time.

It runs at nice 19 (Slack's CPU is not keybot's), so the stream competes for the 2 cores only with
what keybot does not want.
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
import time
from collections.abc import Sequence

from bench import SIGNING_SECRET, TEAM, load
from bench.load import Measured, Request
from bot.shell.wire import event_body, sign

TEXT = "deploy went fine, the dashboard kb_docs link is in the wiki; ping me if the build breaks again"


def message(url: str, n: int) -> Request:
    event = {"type": "message", "channel": "C0BENCH", "channel_type": "channel", "user": f"U{n % 50:08d}",
             "text": TEXT, "ts": f"{int(time.time())}.{n:06d}"}
    body = event_body(event=event, team_id=TEAM)
    headers = {"Content-Type": "application/json", **sign(SIGNING_SECRET, body)}
    return Request(f"{url}/slack/events", body, headers, load.any_body)


async def stream(url: str, *, rate: float) -> Measured:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    measured = Measured()
    pending: set[asyncio.Task[None]] = set()
    async with load.session(64) as client:
        print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
        start = time.perf_counter()
        for n in itertools.count():
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
            if stop.is_set():
                break
            task = asyncio.create_task(load.send(client, message(url, n), measured))
            pending.add(task)
            task.add_done_callback(pending.discard)
        measured.elapsed = time.perf_counter() - start
        await asyncio.gather(*pending, return_exceptions=True)
    return measured


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.messages", description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="keybot's base URL")
    parser.add_argument("--rate", type=float, default=200.0, help="messages per second")
    args = parser.parse_args(argv)
    with contextlib.suppress(OSError):
        os.nice(19)
    measured = asyncio.run(stream(args.url, rate=args.rate))
    print(json.dumps({"latencies": measured.latencies, "errors": measured.errors,
                      "error_samples": measured.error_samples, "elapsed": measured.elapsed}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The benchmark's servers, one OS process each: ``python -m bench.servers <kind> [options]``.

Kinds:
- ``slack``: the Slack Web API stand-in (``bot.shell.fakeslack.FakeSlack``); keybot's outbox sends DMs to it.
- ``bolt``: the floor for commands: a bare Bolt ``AsyncApp`` (signing secret,
  ``process_before_response=True``) whose ``/apikeys`` handler only acks, behind aiohttp on
  ``POST /slack/events`` through the same request path keybot uses (``bot.web.bolt_request`` and
  ``to_aiohttp_response``).
- ``aiohttp``: the floor for verify: ``POST /v1/keys/verify`` parses the JSON body and answers
  ``{"valid": false, "code": "NOT_FOUND"}``.
- ``keybot``: keybot itself, wired by ``bot.runtime.build_runtime`` with real OWASP argon2 parameters,
  served like ``keybot serve`` does (``bot.runtime.freeze_startup_objects`` included), plus
  ``GET /_bench/stats`` (SQL statements executed, the hot reads' included, database connections opened, argon2 hashes and
  verifies run so far, and the work now in each argon2 lane).

Each prints one JSON line ``{"port": …, "url": …}`` on stdout once it serves, and stops on SIGTERM.
Every server logs at WARNING, so aiohttp's access log costs nothing on either side of a ratio.
"""

import argparse
import asyncio
import itertools
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from bench import BOT_TOKEN, SIGNING_SECRET

Cleanup = Callable[[], Awaitable[None]]


def _ready(port: int, url: str) -> None:
    print(json.dumps({"port": port, "url": url, "pid": os.getpid()}), flush=True)


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _serve_app(make_app: Callable[[], web.Application], *, cleanup: Cleanup | None = None) -> None:
    """Serve ``make_app()`` on a free 127.0.0.1 port (as ``keybot serve`` does), announce it, wait for SIGTERM."""
    runner = web.AppRunner(make_app(), handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = int(runner.addresses[0][1])
    _ready(port, f"http://127.0.0.1:{port}")
    try:
        await _until_stopped()
    finally:
        await runner.cleanup()
        if cleanup is not None:
            await cleanup()


async def serve_slack() -> None:
    from bot.shell.fakeslack import FakeSlack

    async with FakeSlack() as slack:
        port = int(slack.api_url.split(":")[2].split("/")[0])
        _ready(port, slack.api_url)
        await _until_stopped()


def bolt_floor_app(*, slack_api_url: str) -> web.Application:
    """A bare Bolt app whose ``/apikeys`` only acks, on the request path keybot uses."""
    from slack_bolt.adapter.aiohttp import to_aiohttp_response
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.web import bolt_request

    bolt = AsyncApp(
        signing_secret=SIGNING_SECRET,
        token=BOT_TOKEN,
        client=AsyncWebClient(token=BOT_TOKEN, base_url=slack_api_url),
        process_before_response=True,
    )

    @bolt.command("/apikeys")
    async def apikeys(ack: AsyncAck) -> None:
        await ack()

    async def slack_events(request: web.Request) -> web.Response:
        raw = await request.text()
        headers: dict[str, str | Sequence[str]] = dict(request.headers)
        bolt_req = bolt_request(raw, headers=headers, query=request.query_string)
        response: web.Response = await to_aiohttp_response(await bolt.async_dispatch(bolt_req))
        return response

    app = web.Application()
    app.router.add_post("/slack/events", slack_events)
    return app


def aiohttp_floor_app() -> web.Application:
    """A bare aiohttp JSON handler: parse the body, answer NOT_FOUND."""

    async def verify(request: web.Request) -> web.Response:
        data: Any = json.loads(await request.read())
        if not isinstance(data, dict):
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        return web.json_response({"valid": False, "code": "NOT_FOUND"})

    app = web.Application()
    app.router.add_post("/v1/keys/verify", verify)
    return app


class _WithCause(logging.Filter):
    """Adds the cause of a logged domain error (e.g. which database error made it "unavailable")."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        for arg in args:
            cause = getattr(arg, "__cause__", None)
            if cause is not None:
                record.msg = (
                    f"{record.msg} [cause: {type(cause).__name__}: {str(cause).splitlines()[0][:200]}]"
                )
        return True


async def serve_keybot(*, db_url: str, slack_api_url: str) -> None:
    from sqlalchemy import event

    from bot.domain.hashing import CREATE_LANE_DEPTH, VERIFY_LANE_DEPTH, Hasher, HashParams
    from bot.runtime import build_runtime, freeze_startup_objects
    from bot.settings import Settings
    from storage.fastpath import UnchangedReads
    from storage.store import KEPT_PAGES

    class CountingLane(Hasher):
        """keybot's own argon2 lane, counting the hashes and verifies its threads run."""

        def __init__(self, *, max_pending: int, name: str) -> None:
            super().__init__(HashParams(), max_pending=max_pending, name=name)
            self.runs = itertools.count()
            self.done = 0

        def hash_sync(self, plaintext: str) -> str:
            self.done = next(self.runs) + 1
            return super().hash_sync(plaintext)

        def verify_sync(self, digest: str, plaintext: str) -> bool:
            self.done = next(self.runs) + 1
            return super().verify_sync(digest, plaintext)

    settings = Settings(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack_api_url,
        database_url=db_url,
        host="127.0.0.1",
        port=0,
        hash_params=HashParams(),  # OWASP's minimum, as in production
        log_level="WARNING",
        metrics=os.environ.get("KEYBOT_METRICS", "on") != "off",  # KEYBOT_METRICS=off: measure without them
    )
    create_lane = CountingLane(max_pending=CREATE_LANE_DEPTH, name="argon2-create")
    verify_lane = CountingLane(max_pending=VERIFY_LANE_DEPTH, name="argon2-verify")
    runtime = await build_runtime(settings, hasher=create_lane, verify_hasher=verify_lane)
    logging.getLogger("keybot.slack").addFilter(_WithCause())
    counts = {"statements": 0, "connects": 0}

    def count_statement(*_: object) -> None:
        counts["statements"] += 1

    def count_connect(*_: object) -> None:
        counts["connects"] += 1

    event.listen(runtime.store.engine.sync_engine, "before_cursor_execute", count_statement)
    event.listen(runtime.store.engine.sync_engine, "connect", count_connect)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(
            {
                **counts,
                "statements": counts["statements"] + runtime.store.hot_reads,  # hot reads skip SQLAlchemy
                "argon2_creates": create_lane.done,
                "argon2_verifies": verify_lane.done,
                "create_lane_pending": create_lane.pending,
                "verify_lane_pending": verify_lane.pending,
                "pid": os.getpid(),
            }
        )

    async def keep_pages(request: web.Request) -> web.Response:
        """``POST /_bench/keep-pages?size=N``: keep at most N pages of keys between commits (SQLite; 0:
        every page is read anew); without ``size``, the store's default."""
        size = int(request.query.get("size", KEPT_PAGES))
        runtime.store.kept_pages = UnchangedReads(size=size)
        return web.json_response({"size": size})

    runtime.web_app.router.add_get("/_bench/stats", stats)
    runtime.web_app.router.add_post("/_bench/keep-pages", keep_pages)
    freeze_startup_objects()  # as `keybot serve` does before it serves
    runtime.worker.start()
    await _serve_app(lambda: runtime.web_app, cleanup=runtime.aclose)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.servers", description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=["slack", "bolt", "aiohttp", "keybot"])
    parser.add_argument("--slack-api-url", default="http://127.0.0.1:9/api/")
    parser.add_argument("--db-url", default=None, help="keybot's DATABASE_URL")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.kind == "slack":
        asyncio.run(serve_slack())
    elif args.kind == "bolt":
        asyncio.run(_serve_app(lambda: bolt_floor_app(slack_api_url=args.slack_api_url)))
    elif args.kind == "aiohttp":
        asyncio.run(_serve_app(aiohttp_floor_app))
    else:
        if not args.db_url:
            parser.error("keybot needs --db-url")
        asyncio.run(serve_keybot(db_url=args.db_url, slack_api_url=args.slack_api_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())

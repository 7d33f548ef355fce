"""``keybot serve | bootstrap | shell | db upgrade``: the one place that wires concrete parts together."""

import argparse
import asyncio
import contextlib
import ctypes
import logging
import re
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import make_url

from bot.domain.errors import Unavailable
from bot.domain.hashing import Hasher
from bot.domain.keys import KeyFormat
from bot.notifier import OutboxWorker, slack_client
from bot.services import Keybot
from bot.settings import Settings, SettingsError, load_settings
from bot.slack.app import create_bolt_app
from bot.verification import Verifier
from bot.web import create_web_app
from storage import SqlStore, open_store

log = logging.getLogger("keybot")


class StartupError(Exception):
    """Something that stops keybot from starting; ``str()`` is the one line to print."""


@dataclass
class Runtime:
    """Every part of a running keybot, wired together."""

    settings: Settings
    store: SqlStore
    keybot: Keybot
    verifier: Verifier
    worker: OutboxWorker
    client: AsyncWebClient
    bolt: AsyncApp
    web_app: web.Application
    late_replies: set["asyncio.Task[None]"] = field(default_factory=set)

    async def aclose(self) -> None:
        if self.late_replies:  # slow commands still owe their user a reply
            await asyncio.wait(self.late_replies, timeout=10)
        await self.worker.stop()
        await self.verifier.aclose()
        await self.store.close()
        self.keybot.hasher.close()


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def connect(settings: Settings) -> SqlStore:
    """Open the database and migrate it; StartupError with one clear line if that fails."""
    try:
        return await open_store(settings.database_url, migrate=True)
    except Unavailable as err:
        raise StartupError(
            f"cannot reach the database at {redacted(settings.database_url)} ({_first_line(err.__cause__ or err)}). "
            "Check DATABASE_URL and that the server is running."
        ) from None


def return_big_allocations_to_the_os() -> None:
    """argon2 allocates 19 MiB per hash. Once glibc's dynamic mmap threshold has grown past that, freed
    blocks stay in the heap and resident memory only rises; a fixed threshold keeps every block that
    large an mmap, unmapped on free. Linux/glibc only; elsewhere a no-op."""
    with contextlib.suppress(OSError, AttributeError):
        m_mmap_threshold = -3
        ctypes.CDLL("libc.so.6").mallopt(m_mmap_threshold, 1 << 20)


async def build_runtime(
    settings: Settings, *, client: AsyncWebClient | None = None, ack_budget: float = 2.0
) -> Runtime:
    """Wire store, services, verifier, outbox worker, Bolt app and web app from settings."""
    return_big_allocations_to_the_os()
    store = await connect(settings)
    key_format = KeyFormat(settings.key_prefix)
    hasher = Hasher(settings.hash_params)
    token = settings.slack_bot_token or "xoxb-not-configured"
    client = client or slack_client(token=token, base_url=settings.slack_api_url)
    worker = OutboxWorker(store, client)
    verifier = Verifier(store, hasher=hasher, key_format=key_format)
    keybot = Keybot(
        store, hasher=hasher, key_format=key_format, on_notify=worker.wake, on_key_deleted=verifier.forget
    )
    late_replies: set[asyncio.Task[None]] = set()
    bolt = create_bolt_app(
        keybot=keybot,
        signing_secret=None if settings.socket_mode else settings.slack_signing_secret,
        bot_token=token,
        client=AsyncWebClient(base_url=settings.slack_api_url),  # the token comes from authorize()
        ack_budget=ack_budget,
        late_replies=late_replies,
    )
    web_app = create_web_app(
        store=store,
        verifier=verifier,
        bolt=None if settings.socket_mode else bolt,
        signing_secret=None if settings.socket_mode else settings.slack_signing_secret,
        verify_token=settings.verify_token,
    )
    return Runtime(
        settings=settings,
        store=store,
        keybot=keybot,
        verifier=verifier,
        worker=worker,
        client=client,
        bolt=bolt,
        web_app=web_app,
        late_replies=late_replies,
    )


async def serve(settings: Settings) -> None:
    """Serve Slack (HTTP or Socket Mode), the verify API and health until SIGTERM/SIGINT."""
    settings.require_slack()
    runtime = await build_runtime(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(runtime.web_app, handle_signals=False, shutdown_timeout=10.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
    except OSError as err:
        await runtime.aclose()
        raise StartupError(
            f"cannot listen on {settings.host}:{settings.port} ({err.strerror}). Set PORT to a free port."
        ) from None
    runtime.worker.start()
    socket = None
    if settings.socket_mode:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        socket = AsyncSocketModeHandler(runtime.bolt, settings.slack_app_token)
        await socket.connect_async()  # type: ignore[no-untyped-call]
        log.info(
            "keybot connected to Slack over Socket Mode; verify API on http://%s:%s",
            settings.host,
            settings.port,
        )
    else:
        log.info("keybot listening on http://%s:%s (Slack: POST /slack/events)", settings.host, settings.port)
    await stop.wait()
    log.info("keybot stopping: finishing in-flight requests and DMs")
    if socket is not None:
        await socket.close_async()  # type: ignore[no-untyped-call]
    await runner.cleanup()
    await runtime.aclose()
    log.info("keybot stopped")


async def bootstrap(settings: Settings, *, team_id: str, owner: str, org: str) -> str:
    store = await connect(settings)
    try:
        keybot = Keybot(store, hasher=Hasher(settings.hash_params), key_format=KeyFormat(settings.key_prefix))
        changed = await keybot.bootstrap(team_id=team_id, owner=owner, org_name=org)
    finally:
        await store.close()
    if changed:
        return f"Organization for workspace {team_id} is ready; {owner} is an owner."
    return f"Nothing to do: workspace {team_id} already has {owner} as an owner."


async def db_upgrade(settings: Settings) -> str:
    store = await connect(settings)
    await store.close()
    return f"Database {redacted(settings.database_url)} is at the latest schema."


def _slack_id(kind: str, prefixes: str) -> Callable[[str], str]:
    def check(raw: str) -> str:
        if not re.fullmatch(f"[{prefixes}][A-Z0-9]{{2,20}}", raw):
            raise argparse.ArgumentTypeError(
                f"{raw!r} is not a Slack {kind} id (like {prefixes[0]}0123ABCD); find it in Slack's "
                f"{'workspace settings' if kind == 'workspace' else 'profile menu → Copy member ID'}"
            )
        return raw

    return check


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keybot", description="Manage your projects' API keys from Slack.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="serve Slack, the verify API and /healthz")
    boot = sub.add_parser("bootstrap", help="create a workspace's organization and its first owner")
    boot.add_argument(
        "--team-id", required=True, type=_slack_id("workspace", "TE"), help="the Slack workspace id, T…"
    )
    boot.add_argument(
        "--owner",
        required=True,
        type=_slack_id("user", "UW"),
        help="the Slack user id of the first owner, U…",
    )
    boot.add_argument("--org", default=None, help="organization name (default: the team id)")
    shell = sub.add_parser("shell", help="try every command in a terminal, with no Slack workspace")
    shell.add_argument("--as", dest="user", default=None, help="act as this Slack user id")
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply schema migrations")
    return parser


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Bolt and slack-sdk log request and response bodies at DEBUG; a body can hold a new key's secret.
    for name in ("slack_bolt", "keybot.bolt", "slack_sdk"):
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLevelName(level)))
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLevelName(level)))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        _setup_logging(settings.log_level)
        if args.command == "serve":
            asyncio.run(serve(settings))
        elif args.command == "bootstrap":
            print(
                asyncio.run(
                    bootstrap(settings, team_id=args.team_id, owner=args.owner, org=args.org or args.team_id)
                )
            )
        elif args.command == "db":
            print(asyncio.run(db_upgrade(settings)))
        elif args.command == "shell":
            from bot.shell import run_shell

            return run_shell(settings, user=args.user)
    except (SettingsError, StartupError) as err:
        print(f"keybot: {err}", file=sys.stderr)
        return 2 if isinstance(err, SettingsError) else 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

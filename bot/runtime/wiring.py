"""The one composition root: builds every concrete part of a running keybot and wires them.

``cli.py``, ``keybot shell`` and ``bench/`` build a keybot through ``build_runtime`` (or the smaller
``open_services``); nothing else imports both storage and the Slack surface.
"""

import asyncio
import contextlib
import ctypes
import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import make_url

from bot.audit_webhook import AuditWebhook
from bot.domain.errors import Unavailable
from bot.domain.hashing import CREATE_LANE_DEPTH, VERIFY_LANE_DEPTH, Hasher
from bot.domain.keys import KeyFormat
from bot.github import GitHubKeys, add_github_leaks
from bot.observability import Metrics, count_slack_errors, observe
from bot.ports import UnitOfWork
from bot.runtime.installations import InstallationStore, OneUseStateStore, installation_stores
from bot.services import Context, Keybot, build_services
from bot.services.base import Clock
from bot.services.jobs import JobRunner
from bot.services.leaks import LeakService
from bot.services.offboarding import OffboardingService
from bot.services.upkeep import Purger, RetentionPolicy
from bot.services.verification import Verifier
from bot.settings import Settings
from bot.slack.app import create_bolt_app
from bot.slack.directory import SlackDirectory
from bot.slack.events import EventWatch
from bot.slack.home_refresh import HOME_INTERVAL, HomePublisher
from bot.slack.installs import InstalledTokens, OAuthParts
from bot.slack.outbox import OutboxWorker, slack_client
from bot.web import create_web_app
from storage import SqlStore, current_revision, open_store
from storage.engine import files_open_to_others
from storage.errors import drivers_error, translating
from storage.jobs import SqlJobQueue

log = logging.getLogger("keybot")

# Library loggers that print what flows through them: at DEBUG aiosqlite logs every statement with its
# parameters (argon2 hashes, pending-deletion tokens), asyncpg, SQLAlchemy and Alembic their work, and
# Bolt and slack-sdk whole request and response bodies (a new key's secret). Each stays at its floor,
# or the configured level if higher, whatever KEYBOT_LOG_LEVEL says.
QUIET_LOGGERS = {
    "aiosqlite": logging.WARNING,
    "asyncpg": logging.WARNING,
    "sqlalchemy": logging.WARNING,
    "alembic": logging.WARNING,
    "slack_bolt": logging.INFO,
    "slack_sdk": logging.INFO,
    "keybot.bolt": logging.INFO,
}


def keep_secrets_out_of_logs(level: int = logging.NOTSET) -> None:
    """Raise each of ``QUIET_LOGGERS`` to its floor, or to ``level`` if higher; never lower one."""
    for name, floor in QUIET_LOGGERS.items():
        logger = logging.getLogger(name)
        logger.setLevel(max(floor, level, logger.level))


class StartupError(Exception):
    """Something that stops keybot from starting; ``str()`` is the one line to print."""


def utcnow() -> datetime:
    """The wall clock every part of keybot is given (tests give a fake one)."""
    return datetime.now(UTC)


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
    verify_hasher: Hasher  # first-time verifies' argon2 lane; keybot.hasher is the creates' lane
    purger: Purger  # the retention purge; `serve` starts it
    jobs: JobRunner  # scheduled work (reminders, grace ends, stale sweeps); `serve` starts it
    home: HomePublisher  # App Home views: published on opening and refreshed after changes
    watch: EventWatch | None = None  # messages checked for leaked keys, and deactivations
    metrics: Metrics | None = None  # None with KEYBOT_METRICS=off
    webhook: AuditWebhook | None = None  # with KEYBOT_AUDIT_WEBHOOK_URL; `serve` starts it
    late_replies: set["asyncio.Task[None]"] = field(default_factory=set)

    async def aclose(self) -> None:
        if self.late_replies:  # slow commands still owe their user a reply
            await asyncio.wait(self.late_replies, timeout=10)
        if self.watch is not None:
            await self.watch.aclose()  # before the outbox worker, which sends what it queued
        await self.jobs.stop()  # before the outbox worker, whose last drain sends what jobs queued
        await self.worker.stop()
        await self.home.aclose()  # after the worker, whose last DMs may ask for refreshes
        if self.webhook is not None:
            await self.webhook.stop()
        await self.purger.stop()
        await self.verifier.aclose()
        await self.store.close()
        self.keybot.hasher.close()
        self.verify_hasher.close()


def first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def why_unavailable(err: BaseException) -> str:
    """The first line of what the database or its driver said under an Unavailable (SQLAlchemy's
    wrapping and its "(sqlalchemy….Error)" prefix left out)."""
    cause = err.__cause__ or err
    return first_line(drivers_error(cause) or cause)


def redacted(url: str) -> str:
    """A database URL safe to print: the password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_folder_missing(url: str) -> Path | None:
    """The folder an SQLite database file would live in, when that folder does not exist."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    folder = Path(parsed.database).expanduser().resolve().parent
    return None if folder.is_dir() else folder


async def connect(settings: Settings) -> SqlStore:
    """Open the database and migrate it; StartupError with one clear line if that fails."""
    keep_secrets_out_of_logs()
    missing = _sqlite_folder_missing(settings.database_url)
    if missing is not None:
        raise StartupError(
            f"the folder {missing} for the SQLite database in DATABASE_URL does not exist. "
            "Create it, or point DATABASE_URL at a file in an existing folder."
        )
    if exposed := files_open_to_others(settings.database_url):  # keybot creates them 0600
        names = " ".join(str(path) for path in exposed)
        log.warning("other users of this machine can read %s (key hashes): run chmod 600 %s", names, names)
    try:
        store = await open_store(settings.database_url, migrate=True)
    except Unavailable as err:
        raise StartupError(
            f"cannot reach the database at {redacted(settings.database_url)} ({why_unavailable(err)}). "
            "Check DATABASE_URL and that the server is running."
        ) from None
    # audit events written through this store (serve, bootstrap, …) queue their webhook delivery; any
    # `keybot serve` with the URL set sends them
    store.audit_webhook = settings.audit_webhook_url is not None
    return store


async def existing_org_teams(settings: Settings) -> list[str]:
    """The team ids of the organizations already in the database, read without migrating or writing
    anything (none in a database never migrated); StartupError with one line if it cannot be read."""
    keep_secrets_out_of_logs()
    try:
        with translating:
            store = await open_store(settings.database_url, migrate=False)
            try:
                if await current_revision(store.engine) is None:
                    return []
                async with store.read() as tx:
                    return await tx.org_teams()
            finally:
                await store.close()
    except Unavailable as err:
        raise StartupError(
            f"cannot reach the database at {redacted(settings.database_url)} "
            f"({why_unavailable(err)})."
        ) from None


def return_big_allocations_to_the_os() -> None:
    """argon2 allocates 19 MiB per hash. Once glibc's dynamic mmap threshold has grown past that, freed
    blocks stay in the heap and resident memory only rises; a fixed threshold keeps every block that
    large an mmap, unmapped on free. Linux/glibc only; elsewhere a no-op."""
    with contextlib.suppress(OSError, AttributeError):
        m_mmap_threshold = -3
        ctypes.CDLL("libc.so.6").mallopt(m_mmap_threshold, 1 << 20)


def freeze_startup_objects() -> None:
    """Once the runtime is built, before serving: everything built so far (modules, Bolt, compiled
    statements) lives as long as the process, so move it out of the collector's sight. A full
    collection under load then walks only what requests create, not a ~110,000-object heap (~100 ms
    each, which set list's p99 at c=32)."""
    gc.collect()
    gc.freeze()


def services_for(
    store: SqlStore, settings: Settings, *, hasher: Hasher, context: Context | None = None
) -> Keybot:
    return build_services(
        context or Context(uow=store, clock=utcnow),
        listing=store,
        hasher=hasher,
        key_format=KeyFormat(settings.key_prefix),
    )


async def build_runtime(
    settings: Settings,
    *,
    client: AsyncWebClient | None = None,
    ack_budget: float = 2.0,
    outbox_backoff: float = 1.0,
    clock: Clock = utcnow,
    hasher: Hasher | None = None,
    verify_hasher: Hasher | None = None,
    unit_of_work: Callable[[SqlStore], UnitOfWork] | None = None,
    origin: str | None = None,
    home_interval: float = HOME_INTERVAL,
) -> Runtime:
    """Wire store, services, verifier, outbox worker, Bolt app and web app from settings.

    ``client`` replaces the Slack Web API client, ``ack_budget`` the seconds a command may take before
    it is acked with "working on it", ``outbox_backoff`` the first retry delay of an unsent DM,
    ``clock`` the wall clock of every part, ``hasher`` the argon2 lane of key creation and
    ``verify_hasher`` that of first-time verification (separate capacity, so neither can starve the
    other; both closed by ``aclose``),
    ``unit_of_work`` what the services change data through, made from the store (default: the store),
    ``origin`` where changes come from (None: Slack; ``SHELL_ORIGIN``: keybot shell), stamped on every
    audit event and DM, whose outbox worker sends only the DMs of that origin; ``home_interval`` the
    seconds between two publishes of one user's App Home."""
    return_big_allocations_to_the_os()
    store = await connect(settings)
    key_format = KeyFormat(settings.key_prefix)
    hasher = hasher or Hasher(settings.hash_params, max_pending=CREATE_LANE_DEPTH, name="argon2-create")
    verify_hasher = verify_hasher or Hasher(
        settings.hash_params, max_pending=VERIFY_LANE_DEPTH, name="argon2-verify"
    )
    token = settings.slack_bot_token or "xoxb-not-configured"
    client = client or slack_client(token=token, base_url=settings.slack_api_url)
    job_queue = SqlJobQueue(store.engine)
    oauth = _oauth_parts(settings, store=store, clock=clock) if settings.oauth else None
    worker = OutboxWorker(
        store,
        client,
        clock=clock,
        base_backoff=outbox_backoff,
        origin=origin,
        merge_seconds=settings.dm_merge_seconds,
        nudge_dms=job_queue,
        tokens=oauth.tokens if oauth is not None else None,
    )
    webhook = audit_webhook(store, settings, clock=clock, backoff=outbox_backoff)
    verifier = Verifier(store, hasher=verify_hasher, key_format=key_format, clock=clock)
    uow = unit_of_work(store) if unit_of_work is not None else store
    context = Context(
        uow=uow,
        clock=clock,
        on_notify=worker.wake if webhook is None else _both(worker.wake, webhook.wake),
        on_key_revoked=verifier.forget,
        on_key_changed=verifier.forget_row,
        origin=origin,
    )
    keybot = services_for(store, settings, hasher=hasher, context=context)
    late_replies: set[asyncio.Task[None]] = set()
    leaks = LeakService(context, reads=store, hasher=verify_hasher, key_format=key_format, verifier=verifier)
    watch = EventWatch(
        leaks=leaks,
        offboarding=OffboardingService(
            context, directory=SlackDirectory(client, tokens=oauth.tokens if oauth is not None else None)
        ),
        client=client,
        key_format=key_format,
        tokens=oauth.tokens if oauth is not None else None,
    )
    home = HomePublisher(
        keybot, client=client, interval=home_interval, tokens=oauth.tokens if oauth is not None else None
    )
    worker.on_delivered = home.concerned  # others' changes refresh the Homes of those they concern
    bolt = create_bolt_app(
        keybot=keybot,
        signing_secret=None if settings.socket_mode else settings.slack_signing_secret,
        bot_token=token,
        client=AsyncWebClient(base_url=settings.slack_api_url),  # the token comes from authorize()
        ack_budget=ack_budget,
        late_replies=late_replies,
        oauth=oauth.bolt_parts(keybot, worker) if oauth is not None else None,
        watch=watch,
        home=home,
    )
    web_app = create_web_app(
        health=store,
        verifier=verifier,
        bolt=None if settings.socket_mode else bolt,
        signing_secret=None if settings.socket_mode else settings.slack_signing_secret,
        verify_token=settings.verify_token,
        on_message=watch.message,
    )
    if settings.github_keys_url:  # GitHub's secret-scanning partner endpoint, POST /v1/leaks/github
        add_github_leaks(web_app, keys=GitHubKeys(settings.github_keys_url), leaks=leaks)
    jobs = JobRunner(job_queue, keybot.jobs, clock=clock)
    metrics = observe(
        web_app,
        enabled=settings.metrics,
        store=store,
        lanes=(hasher, verify_hasher),
        verifier=verifier,
        worker=worker,
        webhook=webhook,
        jobs=jobs,
        clock=clock,
    )
    if metrics is not None:
        count_slack_errors(client, metrics)
    return Runtime(
        settings=settings,
        store=store,
        keybot=keybot,
        verifier=verifier,
        worker=worker,
        client=client,
        bolt=bolt,
        web_app=web_app,
        verify_hasher=verify_hasher,
        purger=Purger(store, clock=clock, policy=retention_policy(settings)),
        jobs=jobs,
        late_replies=late_replies,
        watch=watch,
        home=home,
        metrics=metrics,
        webhook=webhook,
    )


def _both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def call() -> None:
        first()
        second()

    return call


def audit_webhook(store: SqlStore, settings: Settings, *, clock: Clock, backoff: float) -> AuditWebhook | None:
    """With KEYBOT_AUDIT_WEBHOOK_URL set, the worker that sends the deliveries the store queues with every
    audit event (``connect``); else None."""
    if settings.audit_webhook_url is None or settings.audit_webhook_secret is None:
        return None
    return AuditWebhook(
        store,
        url=settings.audit_webhook_url,
        secret=settings.audit_webhook_secret,
        clock=clock,
        base_backoff=backoff,
    )


@dataclass
class _OAuth:
    """keybot installed through OAuth: slack-sdk's stores on keybot's database, the outbox's tokens."""

    settings: Settings
    store: SqlStore
    clock: Clock
    installations: InstallationStore
    states: OneUseStateStore
    tokens: InstalledTokens

    def bolt_parts(self, keybot: Keybot, worker: OutboxWorker) -> OAuthParts:
        async def on_installed(org_key: str, installer: str, org_name: str) -> None:
            await keybot.operators.install(team_id=org_key, installer=installer, org_name=org_name)
            if await self.store.resume_workspace(org_key, now=self.clock()):  # DMs kept while uninstalled
                worker.wake()

        return OAuthParts(
            client_id=self.settings.slack_client_id or "",
            client_secret=self.settings.slack_client_secret or "",
            scopes=self.settings.slack_scopes,
            installations=self.installations,
            states=self.states,
            on_installed=on_installed,
        )


def _oauth_parts(settings: Settings, *, store: SqlStore, clock: Clock) -> _OAuth:
    client_id, client_secret = settings.slack_client_id or "", settings.slack_client_secret or ""
    installations, states = installation_stores(store.engine, client_id=client_id)
    rotator = AsyncTokenRotator(
        client_id=client_id, client_secret=client_secret, client=slack_client(token="", base_url=settings.slack_api_url)
    )
    tokens = InstalledTokens(installations, rotator=rotator)
    return _OAuth(settings, store, clock, installations, states, tokens)


def retention_policy(settings: Settings) -> RetentionPolicy:
    return RetentionPolicy(
        sent_dms=settings.retain_sent_dms,
        dead_dms=settings.retain_dead_dms,
        pending_deletions=settings.retain_pending_deletions,
    )

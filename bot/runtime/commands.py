"""What the CLI runs: ``serve`` (until SIGTERM), ``bootstrap``, ``db upgrade``, ``outbox`` and
``audit export`` — each built on the wiring in ``bot.runtime.wiring``."""

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TextIO

import aiohttp
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.audit_export import write_events
from bot.domain.errors import Unavailable
from bot.domain.hashing import Hasher
from bot.observability import serve_metrics
from bot.runtime.wiring import (
    StartupError,
    build_runtime,
    connect,
    freeze_startup_objects,
    redacted,
    services_for,
    utcnow,
    why_unavailable,
)
from bot.services.audit import export_audit
from bot.services.upkeep import DeadLetterService, outbox_report, retry_report
from bot.settings import Settings
from storage.audit_export import SqlAuditExport

log = logging.getLogger("keybot")


def loopback_only(host: str) -> bool:
    """Whether listening on ``host`` serves this machine alone (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name, or "" (every interface)
        return False


async def serve(settings: Settings) -> None:
    """Serve Slack (HTTP or Socket Mode), the verify API and health until SIGTERM/SIGINT."""
    settings.require_slack()
    runtime = await build_runtime(settings)
    if settings.hashing_for_tests_only:
        log.warning(
            "KEYBOT_ARGON2_PROFILE=cheapest is for tests only: key hashes made now are cheap to crack. "
            "Unset it to serve real keys."
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    freeze_startup_objects()
    runner = web.AppRunner(runtime.web_app, handle_signals=False, shutdown_timeout=10.0)
    runner_cleanups: list[Callable[[], Awaitable[None]]] = [runner.cleanup]
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
    except OSError as err:
        await runtime.aclose()
        raise StartupError(
            f"cannot listen on {settings.host}:{settings.port} ({err.strerror}). Set PORT to a free port."
        ) from None
    if settings.metrics_port is not None and runtime.metrics is not None:
        try:
            runner_cleanups.append(await serve_metrics(runtime.metrics, settings.host, settings.metrics_port))
        except OSError as err:
            await runner.cleanup()
            await runtime.aclose()
            raise StartupError(
                f"cannot listen on {settings.host}:{settings.metrics_port} ({err.strerror}). "
                "Set KEYBOT_METRICS_PORT to a free port."
            ) from None
    runtime.worker.start()
    if runtime.webhook is not None:
        runtime.webhook.start()  # audit events to KEYBOT_AUDIT_WEBHOOK_URL, claimed like DMs
    runtime.jobs.start()  # claims due jobs like the outbox: each runs once across instances
    runtime.purger.start()  # once now, then hourly; a DELETE … WHERE is safe from every instance
    if not settings.verify_token and not loopback_only(settings.host):
        log.warning(
            "KEYBOT_VERIFY_TOKEN is not set and keybot listens on %s: anyone who can reach port %s can "
            "call /v1/keys/verify. Set KEYBOT_VERIFY_TOKEN (callers then send Authorization: Bearer <it>) "
            "or KEYBOT_HOST=127.0.0.1 behind a proxy.",
            settings.host,
            settings.port,
        )
    socket = None
    try:
        if settings.socket_mode:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            socket = AsyncSocketModeHandler(runtime.bolt, settings.slack_app_token)
            opening = _open_socket(socket, runtime.bolt.client, settings.slack_app_token or "")
            if await _until_stopped(opening, stop):
                log.info(
                    "keybot connected to Slack over Socket Mode; verify API on http://%s:%s",
                    settings.host,
                    settings.port,
                )
        else:
            log.info("keybot listening on http://%s:%s (Slack: POST /slack/events)", settings.host, settings.port)
        await stop.wait()
        log.info("keybot stopping: finishing in-flight requests and DMs")
    finally:
        if socket is not None:
            with contextlib.suppress(Exception):  # never connected, or already gone
                await socket.close_async()  # type: ignore[no-untyped-call]
        for cleanup in reversed(runner_cleanups):
            await cleanup()
        await runtime.aclose()
        log.info("keybot stopped")


SOCKET_RETRY_SECONDS = (1, 2, 5, 10, 30)  # between attempts to reach Slack for Socket Mode, then every 30 s
# apps.connections.open answers about the token itself: retrying cannot help
SOCKET_TOKEN_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "not_allowed_token_type", "missing_scope"}
)


async def _until_stopped(work: Awaitable[None], stop: asyncio.Event) -> bool:
    """Run ``work`` unless SIGTERM/SIGINT comes first (then it is cancelled); whether it finished."""
    task, stopping = asyncio.ensure_future(work), asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False
    task.result()  # a StartupError about the token
    return True


async def _open_socket(socket: Any, client: AsyncWebClient, app_token: str) -> None:
    """Connect over Socket Mode. The app token is tried first with ``apps.connections.open``: one that
    Slack refuses stops keybot with one line (StartupError); an unreachable Slack is retried, one log
    line per attempt, until it answers or keybot is told to stop."""
    for attempt in itertools.count():
        try:
            await client.apps_connections_open(app_token=app_token)
            break
        except SlackApiError as err:
            error = str(err.response.get("error", "")) if err.response is not None else ""
            if error in SOCKET_TOKEN_ERRORS:
                raise StartupError(
                    f"Slack refused SLACK_APP_TOKEN ({error}): use the app-level token (xapp-…) with the "
                    "connections:write scope, from the app's Basic Information page."
                ) from None
            wait = SOCKET_RETRY_SECONDS[min(attempt, len(SOCKET_RETRY_SECONDS) - 1)]
            log.warning("Slack did not open a Socket Mode connection (%s); trying again in %s s", error or "?", wait)
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            wait = SOCKET_RETRY_SECONDS[min(attempt, len(SOCKET_RETRY_SECONDS) - 1)]
            log.warning("cannot reach Slack for Socket Mode (%s); trying again in %s s", type(err).__name__, wait)
        await asyncio.sleep(wait)
    await socket.connect_async()


async def outbox_list(settings: Settings) -> str:
    """What `keybot outbox` prints: the pending and dead DMs."""
    store = await connect(settings)
    try:
        return outbox_report(await DeadLetterService(store, clock=utcnow).overview())
    except Unavailable as err:
        raise StartupError(f"the database stopped answering ({why_unavailable(err)}).") from None
    finally:
        await store.close()


async def outbox_retry(settings: Settings, *, ids: list[int] | None) -> tuple[bool, str]:
    """`keybot outbox retry`: dead DMs made pending again (every one when ``ids`` is None); whether
    every id named was revived, and what to print."""
    store = await connect(settings)
    try:
        revived = await DeadLetterService(store, clock=utcnow).retry(ids)
    except Unavailable as err:
        raise StartupError(f"the database stopped answering ({why_unavailable(err)}).") from None
    finally:
        await store.close()
    return not revived.not_dead, retry_report(revived, every_dead=ids is None)


async def bootstrap(settings: Settings, *, team_id: str, owner: str, org: str) -> str:
    """Create a workspace's organization with ``owner`` as its owner; the line to print."""
    store = await connect(settings)
    hasher = Hasher(settings.hash_params)
    try:
        changed = await services_for(store, settings, hasher=hasher).operators.bootstrap(
            team_id=team_id, owner=owner, org_name=org
        )
    finally:
        hasher.close()
        await store.close()
    if changed:
        return f"Organization for workspace {team_id} is ready; {owner} is an owner."
    return f"Nothing to do: workspace {team_id} already has {owner} as an owner."


async def db_upgrade(settings: Settings) -> str:
    store = await connect(settings)
    await store.close()
    return f"Database {redacted(settings.database_url)} is at the latest schema."


async def audit_export(
    settings: Settings, *, since: datetime, team_id: str | None, fmt: str, out: TextIO
) -> int:
    """Stream the audit trail (at or after ``since``; one workspace's org or all) to ``out``."""
    store = await connect(settings)
    try:
        if team_id is not None:
            async with store.read() as tx:
                known = await tx.org_teams()
            if team_id not in known:  # a typo must not look like "no events"
                raise StartupError(
                    f"this database has no organization for {team_id}"
                    + (f" (it has: {', '.join(known[:10])})" if known else " (it has none)")
                    + "; without --org every organization is exported."
                )
        events = export_audit(SqlAuditExport(store.engine), since=since, team_id=team_id)
        return await write_events(events, out, fmt=fmt)
    finally:
        await store.close()

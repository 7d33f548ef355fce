"""Operations: Prometheus metrics (``GET /metrics``) and the request id, as one aiohttp middleware.

The metrics live in a registry owned by each runtime (never prometheus_client's global one), so tests
and several runtimes in one process do not collide. Labels are bounded by construction: a surface
(command, click, verify, health, other), a subcommand or action id from keybot's own lists ("unknown"
for anything else), an HTTP status, a Slack method and error (at most ``MAX_SLACK_ERRORS`` distinct
errors, then "other"), a lane name — never a user, project, key or anything a caller typed.

The hot path pays one histogram observation and one counter increment per request; everything else
(argon2 lanes, verify outcomes and cache hits, the outbox and the audit webhook, scheduled jobs' lag, the
database pool) is plain numbers kept by their owners and read only when ``/metrics`` is scraped.
Services never import this module.
"""

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from slack_sdk.errors import SlackApiError

from bot.domain.errors import Unavailable
from bot.domain.hashing import Hasher
from bot.domain.tracing import REQUEST_ID, new_request_id
from bot.ports import Health

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MAX_SLACK_ERRORS = 50
UNKNOWN = "unknown"
REQUEST_ID_HEADER = "X-Request-Id"
_GIVEN_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_TEXT = re.compile(rb"(?:^|&)text=([^&]*)")
log = logging.getLogger("keybot.requests")
OPENAPI = resources.files("bot") / "openapi.json"  # the HTTP API's contract (tests check the app keeps it)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Sources:
    """What ``/metrics`` reads when scraped: each a plain object keeping its own numbers."""

    lanes: Sequence[Hasher] = ()
    verifier: Any = None  # bot.services.verification.Verifier: .outcomes, .cache_hits, .refusal_hits
    health: Health | None = None
    pool: Callable[[], tuple[int, int] | None] | None = None  # (connections in use, pool size)
    outbox: Any = None  # bot.slack.outbox.OutboxWorker: .retries, .dead_letters
    webhook: Any = None  # bot.audit_webhook.AuditWebhook: .delivered, .retries, .dead_letters
    jobs: Any = None  # bot.services.jobs.JobRunner: .claimed, .lag_seconds
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


class _Pulled(Collector):
    """The numbers other parts keep, turned into metric families at scrape time."""

    def __init__(self, sources: Sources) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        lanes = self._sources.lanes
        pending = GaugeMetricFamily("keybot_argon2_queue_depth", "argon2 work queued or running", labels=["lane"])
        capacity = GaugeMetricFamily("keybot_argon2_queue_capacity", "argon2 lane bound", labels=["lane"])
        hashing = SummaryMetricFamily("keybot_argon2_seconds", "argon2 time per hash or verify", labels=["lane"])
        refused = CounterMetricFamily("keybot_argon2_refused", "argon2 calls refused: lane full", labels=["lane"])
        for lane in lanes:
            pending.add_metric([lane.name], lane.pending)
            capacity.add_metric([lane.name], lane.max_pending)
            hashing.add_metric([lane.name], count_value=lane.completed, sum_value=lane.seconds)
            refused.add_metric([lane.name], lane.refused)
        yield from (pending, capacity, hashing, refused)
        verifier = self._sources.verifier
        if verifier is not None:
            outcomes = CounterMetricFamily("keybot_verify", "verify answers by code", labels=["code"])
            for code, count in verifier.outcomes.items():
                outcomes.add_metric([code], count)
            hits = CounterMetricFamily(
                "keybot_verify_cache_hits", "verify answers from a cache, without argon2", labels=["cache"]
            )
            hits.add_metric(["matched"], verifier.cache_hits)
            hits.add_metric(["refused"], verifier.refusal_hits)
            yield from (outcomes, hits)
        outbox = self._sources.outbox
        if outbox is not None:
            yield CounterMetricFamily("keybot_outbox_retries", "DM sends to retry later", value=outbox.retries)
            yield CounterMetricFamily(
                "keybot_outbox_dead_letters", "DMs Slack refused for good (buried)", value=outbox.dead_letters
            )
        webhook = self._sources.webhook
        if webhook is not None:
            yield CounterMetricFamily(
                "keybot_audit_webhook_deliveries", "audit events the webhook receiver accepted", value=webhook.delivered
            )
            yield CounterMetricFamily(
                "keybot_audit_webhook_retries", "audit webhook deliveries to retry later", value=webhook.retries
            )
            yield CounterMetricFamily(
                "keybot_audit_webhook_dead_letters", "audit webhook deliveries the receiver refused for good",
                value=webhook.dead_letters,
            )
        jobs = self._sources.jobs
        if jobs is not None:
            yield SummaryMetricFamily(
                "keybot_job_lag_seconds", "scheduled jobs: seconds from due to claimed",
                count_value=jobs.claimed, sum_value=jobs.lag_seconds,
            )
        pool = self._sources.pool() if self._sources.pool is not None else None
        if pool is not None:
            in_use, size = pool
            yield GaugeMetricFamily("keybot_db_pool_in_use", "database connections checked out", value=in_use)
            yield GaugeMetricFamily("keybot_db_pool_size", "database connections in the pool", value=size)


class Labels:
    """Bounded names for Slack requests: keybot's own subcommands and action ids, or "unknown"."""

    def __init__(self, *, subcommands: Iterable[str], action_ids: Iterable[str]) -> None:
        self._subcommands = frozenset(subcommands)
        self._actions = frozenset(action_ids)

    def subcommand(self, raw_body: bytes) -> str:
        """The first word of a slash command's text, if it is one of keybot's subcommands."""
        match = _TEXT.search(raw_body)
        words = unquote_plus(match[1].decode("latin-1")).split(None, 1) if match else []
        if not words:
            return "help"  # empty text answers the usage
        verb = words[0].lower()
        return verb if verb in self._subcommands else UNKNOWN

    def action(self, raw_body: bytes) -> str:
        """The clicked element's action id, if it is one of keybot's."""
        try:
            payload = json.loads(dict(parse_qsl(raw_body.decode())).get("payload", "{}"))
            action_id = payload["actions"][0]["action_id"]
        except (ValueError, LookupError, TypeError, AttributeError):
            return UNKNOWN
        return action_id if isinstance(action_id, str) and action_id in self._actions else UNKNOWN


class Metrics:
    """One runtime's metrics and its registry."""

    def __init__(self, *, subcommands: Iterable[str], action_ids: Iterable[str], sources: Sources) -> None:
        self.registry = CollectorRegistry()
        self.labels = Labels(subcommands=subcommands, action_ids=action_ids)
        self._sources = sources
        self._latency = Histogram(
            "keybot_request_seconds",
            "HTTP request latency by surface and subcommand or action id",
            ["surface", "name"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._responses = Counter(
            "keybot_responses", "HTTP responses by surface and status", ["surface", "status"], registry=self.registry
        )
        self._slack_errors = Counter(
            "keybot_slack_api_errors", "Slack API calls that failed, by method and error", ["method", "error"],
            registry=self.registry,
        )
        self._seen_errors: set[str] = set()
        self._outbox_pending = Gauge(
            "keybot_outbox_pending", "DMs and audit webhook deliveries waiting to be sent", registry=self.registry
        )
        self._outbox_dead = Gauge("keybot_outbox_dead", "dead DMs waiting for an operator", registry=self.registry)
        self._outbox_age = Gauge(
            "keybot_outbox_oldest_pending_seconds",
            "age of the oldest outbox row still to be sent (DM or audit webhook delivery); 0 when none",
            registry=self.registry,
        )
        self._db_up = Gauge("keybot_database_up", "1 if the database answered the last scrape", registry=self.registry)
        self.registry.register(_Pulled(sources))
        self._children: dict[tuple[str, str], Any] = {}
        self._counters: dict[tuple[str, int], Any] = {}

    def observe(self, surface: str, name: str, *, seconds: float, status: int) -> None:
        child = self._children.get((surface, name))
        if child is None:
            child = self._children[(surface, name)] = self._latency.labels(surface, name)
        child.observe(seconds)
        counter = self._counters.get((surface, status))
        if counter is None:
            counter = self._counters[(surface, status)] = self._responses.labels(surface, str(status))
        counter.inc()

    def slack_error(self, method: str, error: str) -> None:
        error = error[:60] or "none"
        if error not in self._seen_errors:
            if len(self._seen_errors) >= MAX_SLACK_ERRORS:
                error = "other"
            else:
                self._seen_errors.add(error)
        self._slack_errors.labels(method, error).inc()

    async def exposition(self) -> bytes:
        """The text format, after reading the outbox's depth (one cheap count each)."""
        health = self._sources.health
        if health is not None:
            try:
                self._outbox_pending.set(await health.pending_notifications())
                self._outbox_dead.set(await health.dead_notifications())
                oldest = await health.oldest_pending_notification()
                age = 0.0 if oldest is None else (self._sources.clock() - oldest).total_seconds()
                self._outbox_age.set(max(age, 0.0))
                self._db_up.set(1)
            except Unavailable:
                self._db_up.set(0)
        return generate_latest(self.registry)

    async def handler(self, request: web.Request) -> web.Response:
        body = await self.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _request_id(request: web.Request) -> str:
    given = request.headers.get(REQUEST_ID_HEADER)
    return given if given is not None and _GIVEN_ID.fullmatch(given) else new_request_id()


def observing(metrics: Metrics | None, labels: Labels) -> Middleware:
    """The middleware: a request id for the request's whole life (logs, queued DMs, the
    ``X-Request-Id`` response header); unless ``metrics`` is None, its latency and status; and a log
    line per request (INFO for Slack commands and clicks, DEBUG for the rest), by label only."""

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = _request_id(request)
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            response.headers[REQUEST_ID_HEADER] = request_id
            return response
        except web.HTTPException as err:
            status = err.status
            raise
        finally:
            elapsed = time.perf_counter() - started
            if metrics is not None or log.isEnabledFor(logging.INFO):
                try:
                    surface, name = await _labels(labels, request)
                except Exception:  # a body that could not be read (too large, connection gone)
                    surface, name = "other", "unreadable"
                if metrics is not None:
                    metrics.observe(surface, name, seconds=elapsed, status=status)
                level = logging.INFO if surface in ("command", "click") else logging.DEBUG
                if log.isEnabledFor(level):
                    log.log(level, "%s %s answered %s in %.1f ms", surface, name, status, elapsed * 1000)
            REQUEST_ID.reset(token)

    return observe


RAW_BODY = "keybot.raw_body"  # where a handler that streamed a request's body keeps its bytes


async def _labels(labels: Labels, request: web.Request) -> tuple[str, str]:
    path = request.path
    if path == "/v1/keys/verify":
        return "verify", "verify"
    if path == "/slack/events" and request.method == "POST":
        # the handler read it already: the bytes it kept (a streamed read), else aiohttp's cached ones
        raw = request.get(RAW_BODY)
        raw = raw if isinstance(raw, bytes) else await request.read()
        if raw.lstrip()[:1] == b"{":  # an Events API envelope (JSON), whatever its messages say
            return "other", "slack_check"
        if raw.startswith(b"payload=") or b"&payload=" in raw:
            return "click", labels.action(raw)
        if raw.startswith(b"command=") or b"&command=" in raw:
            return "command", labels.subcommand(raw)
        return "other", "slack_check"
    if path == "/healthz":
        return "health", "healthz"
    resource = request.match_info.route.resource
    return "other", resource.canonical if resource is not None else "unmatched"


async def serve_metrics(metrics: Metrics, host: str, port: int) -> Callable[[], Awaitable[None]]:
    """Serve ``GET /metrics`` alone on ``port`` (KEYBOT_METRICS_PORT); the cleanup to await at the end.
    Raises OSError when the port is taken."""
    app = web.Application()
    app.router.add_get("/metrics", metrics.handler)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError:
        await runner.cleanup()
        raise
    return runner.cleanup


def count_slack_errors(client: Any, metrics: Metrics) -> None:
    """Count every Web API call of ``client`` that fails, by method and Slack's error (or exception)."""
    call = client.api_call

    async def api_call(api_method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return await call(api_method, *args, **kwargs)
        except SlackApiError as err:
            data = getattr(err.response, "data", None)
            metrics.slack_error(api_method, str(data.get("error", "")) if isinstance(data, dict) else "non-JSON answer")
            raise
        except Exception as err:
            metrics.slack_error(api_method, type(err).__name__)
            raise

    client.api_call = api_call


def _pool_use(store: Any) -> Callable[[], tuple[int, int] | None]:
    def read() -> tuple[int, int] | None:
        pool = store.engine.sync_engine.pool
        try:
            return int(pool.checkedout()), int(pool.size())
        except (AttributeError, TypeError):  # SQLite's pools keep no count
            return None

    return read


def observe(
    app: web.Application,
    *,
    enabled: bool,
    store: Any,
    lanes: Sequence[Hasher],
    verifier: Any,
    worker: Any,
    webhook: Any = None,
    jobs: Any = None,
    clock: Callable[[], datetime] | None = None,
) -> Metrics | None:
    """Put the request-id middleware, ``GET /openapi.json`` and, if ``enabled``, the metrics and
    ``GET /metrics`` on ``app``; the runtime's Metrics, or None."""
    from bot.slack.codec import ActionId
    from bot.slack.commands import COMMANDS

    subcommands, action_ids = list(COMMANDS), [a.value for a in ActionId]
    metrics = None
    if enabled:
        sources = Sources(
            lanes=lanes, verifier=verifier, health=store, pool=_pool_use(store), outbox=worker, webhook=webhook, jobs=jobs,
            clock=clock or (lambda: datetime.now(UTC)),
        )
        metrics = Metrics(subcommands=subcommands, action_ids=action_ids, sources=sources)
        app.router.add_get("/metrics", metrics.handler)
    spec = OPENAPI.read_bytes()

    async def openapi(request: web.Request) -> web.Response:
        return web.Response(body=spec, content_type="application/json")

    app.router.add_get("/openapi.json", openapi)
    app.middlewares.insert(0, observing(metrics, Labels(subcommands=subcommands, action_ids=action_ids)))
    return metrics

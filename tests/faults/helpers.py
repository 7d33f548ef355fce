"""Tools of the fault tests: a Slack that can go down, a cuttable TCP proxy, an in-process keybot on any
database, a store that fails mid-transaction, and checks that every key is complete."""

import asyncio
import contextlib
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from sqlalchemy.engine import Row

from bot.domain.hashing import HashParams
from bot.domain.notices import Notice
from bot.domain.roles import OrgRole
from bot.ports import UnitOfWork
from bot.runtime import Runtime, build_runtime, utcnow
from bot.runtime import bootstrap as bootstrap_org
from bot.settings import Settings
from bot.shell.driver import Reply, SlackDriver
from bot.shell.fakeslack import Call, Failure, FakeSlack
from bot.slack.notices import dm_text
from storage import SqlStore, make_engine
from storage.tables import api_keys, audit_events, org_roles, outbox, project_roles, projects
from tests.procs import SIGNING_SECRET

TEAM = "T0001"
OWNER = "UOWNER01"
KEY_RE = re.compile(r"kb_[A-Za-z0-9]{8,}_[A-Za-z0-9]{28,}")
MASKED_IN_DM = re.compile(r"\(`([^`]+)`\) in project")
CREATED_DM = "created key"
DELETED_DM = "deleted key"
_HASHER_PARAMS = HashParams.cheapest()
NEVER_SHOWN = ("Traceback", "database is locked", "Something went wrong", "OperationalError", "asyncpg")


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool], *, within: float = 60.0, every: float = 0.02
) -> None:
    """Wait until ``check()`` is true; TimeoutError after ``within`` seconds (a deadline, not a measure)."""
    async with asyncio.timeout(within):
        while True:
            result = check()
            if await result if asyncio.iscoroutine(result) else result:
                return
            await asyncio.sleep(every)


class SettableClock:
    """A wall clock that stands still until the test moves it (``advance``)."""

    def __init__(self, at: datetime) -> None:
        self.now = at

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


# --- Slack ------------------------------------------------------------------------------------


class SlackWithOutages(FakeSlack):
    """FakeSlack that can also fail *every* Web API call, cycling through ``failures``, until recovered."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._outage: list[Failure] = []
        self._next = 0

    def go_down(self, *failures: Failure) -> None:
        self._outage = list(failures)

    def recover(self) -> None:
        self._outage = []

    async def _api(self, request: web.Request) -> web.Response:
        if self._outage:
            self.fail_next(request.match_info["method"], self._outage[self._next % len(self._outage)])
            self._next += 1
        return await super()._api(request)

    def dm_calls(self) -> list[Call]:
        return self.calls_to("chat.postMessage")

    def delivered_dms(self) -> Counter[tuple[str, str]]:
        """How many times each (user, text) DM was carried out by Slack."""
        return Counter(
            (str(c.args.get("channel")), str(c.args.get("text"))) for c in self.dm_calls() if c.delivered
        )

    def delivered_notices(self) -> Counter[tuple[str, str]]:
        """How many times each (user, notice text) reached its user: a DM that merged several notices
        ("N changes in keybot:" and a "• " line each) counts once for each of its lines."""
        return Counter(
            (user, line)
            for (user, text), n in self.delivered_dms().items()
            for line in notice_lines(text) * n
        )


MERGED_DM = re.compile(r"\A(\d+) changes in keybot:\n")


def notice_lines(text: str) -> list[str]:
    """The notices one DM carries: a merged DM's "• " lines (as many as its heading says), else the text."""
    heading = MERGED_DM.match(text)
    if heading is None:
        return [text]
    lines = [line.removeprefix("• ") for line in text[heading.end() :].split("\n")]
    assert len(lines) == int(heading.group(1)), text
    return lines


# --- database inspection ------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxRow:
    """An outbox row with ``text`` the DM Slack is sent for it (rows queued as a notice are rendered)."""

    id: int
    user_id: str
    text: str
    attempts: int
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None

    @classmethod
    def of(cls, row: Row[Any]) -> "OutboxRow":
        text = dm_text(Notice.from_json(row.notice)) if row.notice else row.text
        return cls(row.id, row.user_id, text, row.attempts, row.next_attempt_at, row.sent_at, row.last_error)


@dataclass(frozen=True)
class DbState:
    keys: list[Row[Any]]
    audit: list[Row[Any]]
    outbox: list[OutboxRow]
    org_roles: list[Row[Any]]
    project_roles: list[Row[Any]]

    def key_names(self, project: str | None = None) -> set[str]:
        return {k.name for k in self.keys if project is None or k.project == project}

    def org_owners(self) -> set[str]:
        return {r.user_id for r in self.org_roles if r.role == OrgRole.OWNER.value}


async def db_state(url: str) -> DbState:
    """Everything the consistency checks look at, read straight from the database."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            keys = (
                await conn.execute(
                    select(api_keys, projects.c.name.label("project")).join(
                        projects, projects.c.id == api_keys.c.project_id
                    )
                )
            ).all()
            audit = (await conn.execute(select(audit_events).order_by(audit_events.c.id))).all()
            rows = [OutboxRow.of(row) for row in await conn.execute(select(outbox).order_by(outbox.c.id))]
            orgs = (await conn.execute(select(org_roles))).all()
            project_rows = (
                await conn.execute(
                    select(project_roles, projects.c.name.label("project")).join(
                        projects, projects.c.id == project_roles.c.project_id
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    return DbState(
        keys=list(keys), audit=list(audit), outbox=rows, org_roles=list(orgs), project_roles=list(project_rows)
    )


def incomplete_keys(state: DbState, *, owners: Iterable[str], skip: Iterable[str] = ()) -> list[str]:
    """Every way in which the database holds part of a key creation: a key without exactly one
    "key created" audit row or without exactly one "created" DM per owner other than its creator (who
    saw the reply and gets none), or an audit row or DM about a key that does not exist (and was not
    deleted). Empty when everything is whole.
    ``skip``: names of keys made before the current set of owners (their DMs went to fewer people)."""
    owners = set(owners)
    skip = set(skip)
    problems: list[str] = []
    masks = {k.masked for k in state.keys}
    deleted = {a.key_masked for a in state.audit if a.action == "key deleted"}
    created_audit = Counter(a.key_masked for a in state.audit if a.action == "key created")
    creators = {a.key_masked: a.actor for a in state.audit if a.action == "key created"}
    created_dms: dict[str, list[str]] = {}
    for row in state.outbox:
        match = MASKED_IN_DM.search(row.text)
        if CREATED_DM in row.text and match:
            created_dms.setdefault(match.group(1), []).append(row.user_id)
    for key in state.keys:
        if key.name in skip:
            continue
        if created_audit[key.masked] != 1:
            problems.append(f"key {key.name} has {created_audit[key.masked]} 'key created' audit rows")
        told = sorted(owners - {creators.get(key.masked)})
        if sorted(created_dms.get(key.masked, [])) != told:
            told_now = sorted(created_dms.get(key.masked, []))
            problems.append(f"key {key.name} has DMs to {told_now}, not {told}")
    for masked in created_audit.keys() - masks - deleted:
        problems.append(f"audit row about key {masked}, which does not exist")
    for masked in created_dms.keys() - masks - deleted:
        problems.append(f"DM about key {masked}, which does not exist")
    return problems


# --- keybot in this process -----------------------------------------------------------------------


async def bootstrap(url: str, *, owners: Iterable[str] = (OWNER,), team: str = TEAM) -> None:
    """What ``keybot bootstrap`` does (migrating the database first), for each of ``owners``."""
    settings = Settings(database_url=url, hash_params=_HASHER_PARAMS)
    for owner in owners:
        await bootstrap_org(settings, team_id=team, owner=owner, org="Acme")


@dataclass
class Instance:
    """A keybot serving HTTP on a free port in this process, and a driver speaking Slack to it."""

    runtime: Runtime
    driver: SlackDriver
    base_url: str
    session: aiohttp.ClientSession

    async def cmd(self, user: str, text: str) -> Reply:
        """``/apikeys text``'s answer: the ack, or on a busy machine what followed "Working on it"."""
        return await self.driver.ask(user, text)

    async def healthz(self) -> tuple[int, dict[str, Any]]:
        async with self.session.get(f"{self.base_url}/healthz") as response:
            return response.status, await response.json()

    async def verify(self, key: str) -> tuple[int, dict[str, Any]]:
        async with self.session.post(f"{self.base_url}/v1/keys/verify", json={"key": key}) as response:
            return response.status, await response.json()

    async def outbox_drained(self, *, within: float = 30.0) -> None:
        async def drained() -> bool:
            return not await self.runtime.store.pending_notifications()

        await eventually(drained, within=within)


@contextlib.asynccontextmanager
async def in_process_keybot(
    *,
    url: str,
    slack: FakeSlack,
    session: aiohttp.ClientSession,
    client: AsyncWebClient | None = None,
    base_backoff: float = 0.05,
    unit_of_work: Callable[[SqlStore], UnitOfWork] | None = None,
    clock: Callable[[], datetime] = utcnow,
    ack_budget: float = 2.0,
    github_keys_url: str | None = None,
) -> AsyncIterator[Instance]:
    """``build_runtime`` on ``url`` with an HTTP server, like ``keybot serve`` minus the process.

    ``base_backoff``: the outbox's first retry delay (tens of ms instead of seconds); ``unit_of_work``:
    what the services change data through, e.g. ``TrippingStore``; ``clock``: keybot's wall clock;
    ``ack_budget``: seconds before a slow command is acked "working on it" (raise it when a test
    holds a command on purpose, so its reply is still the ack); ``github_keys_url``: serve
    ``POST /v1/leaks/github`` with GitHub's keys from there."""
    settings = Settings(
        slack_bot_token="xoxb-in-process",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
        database_url=url,
        hash_params=_HASHER_PARAMS,
        host="127.0.0.1",
        port=0,
        dm_merge_seconds=0,
        github_keys_url=github_keys_url,
    )
    runtime = await build_runtime(
        settings,
        client=client,
        outbox_backoff=base_backoff,
        unit_of_work=unit_of_work,
        clock=clock,
        ack_budget=ack_budget,
    )
    runner = web.AppRunner(runtime.web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    runtime.worker.start()
    driver = SlackDriver(
        events_url=f"{base_url}/slack/events",
        signing_secret=SIGNING_SECRET,
        slack=slack,
        team_id=TEAM,
        session=session,
    )
    try:
        yield Instance(runtime=runtime, driver=driver, base_url=base_url, session=session)
    finally:
        await runner.cleanup()
        await runtime.aclose()


# --- a store that loses its database half-way through a transaction --------------------------------


class _Tripwire:
    def __init__(self, tx: Any, trip: Callable[[str], Awaitable[None]]) -> None:
        self._tx = tx
        self._trip = trip

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    async def add_audit(self, event: Any) -> None:
        await self._trip("add_audit")
        await self._tx.add_audit(event)

    async def notify(self, notice: Notice) -> None:
        await self._trip("notify")
        await self._tx.notify(notice)


async def _no_trip(step: str) -> None:
    return None


class TrippingStore:
    """The real SqlStore, except that write transactions call ``trip(step)`` just before writing an
    audit row (``add_audit``) or a DM (``notify``): the test cuts the database there. Give it to
    ``in_process_keybot(unit_of_work=TrippingStore)``; set ``trip`` once the test knows what to cut."""

    def __init__(self, store: SqlStore, trip: Callable[[str], Awaitable[None]] = _no_trip) -> None:
        self._store = store
        self.trip = trip

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self._store.transaction() as tx:
            yield _Tripwire(tx, lambda step: self.trip(step))


# --- a store that holds one transaction where it should take the org lock ------------------------

# Where a transaction takes the lock that orders role changes and their use, and the writes an
# authorised change makes (``PausingStore`` stops before the first of them).
_LOCKS = frozenset({"lock_team", "lock_org"})
_AUTHORISED_WRITES = frozenset(
    {
        "set_org_role",
        "delete_org_role",
        "set_project_role",
        "delete_project_role",
        "add_key",
        "delete_key",
        "add_project",
    }
)


class _Pausing:
    """A transaction that calls ``pause()`` once, just before it locks the org or, if it takes no
    lock, just before its first authorised write after it read the actor's scope."""

    def __init__(self, tx: Any, pause: Callable[[], Awaitable[None]]) -> None:
        self._tx = tx
        self._pause = pause
        self._scope_read = False
        self._paused = False

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._tx, name)
        if name != "scope" and name not in _LOCKS | _AUTHORISED_WRITES:
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            if name == "scope":
                self._scope_read = True
            elif not self._paused and (name in _LOCKS or self._scope_read):
                self._paused = True
                await self._pause()
            return await method(*args, **kwargs)

        return call


class PausingStore:
    """The real SqlStore, except that the first write transaction opened after ``arm()`` stops just
    before it takes the org lock — or, in code that takes none, just before its first authorised write
    after reading the actor's roles, where the lock belongs — until the test calls ``resume()``.
    ``paused`` is set while it waits. ``in_process_keybot(unit_of_work=pausing.around)``."""

    def __init__(self) -> None:
        self._store: SqlStore | None = None
        self._armed = False
        self.paused = asyncio.Event()
        self._resume = asyncio.Event()

    def around(self, store: SqlStore) -> "PausingStore":
        self._store = store
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def arm(self) -> None:
        self._armed = True
        self.paused.clear()
        self._resume.clear()

    def resume(self) -> None:
        self._resume.set()

    async def _pause(self) -> None:
        self.paused.set()
        await self._resume.wait()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        assert self._store is not None, "give PausingStore.around to in_process_keybot"
        armed, self._armed = self._armed, False
        async with self._store.transaction() as tx:
            yield _Pausing(tx, self._pause) if armed else tx


# --- network ---------------------------------------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a server; ``cut()`` resets every connection and refuses new ones
    until ``restore()`` listens on the same port again."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
            self.port = int(self._server.sockets[0].getsockname()[1])

    restore = start

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._open):
            writer.transport.abort()  # RST both ways: the server rolls back, the client sees a reset
        self._open.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._open |= {writer, up_writer}
        try:
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        finally:
            self._open -= {writer, up_writer}


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


# --- replies ---------------------------------------------------------------------------------------


def is_refusal(reply: Reply) -> bool:
    return reply.text.startswith(":warning:")


def assert_private_and_clean(reply: Reply) -> None:
    """A reply Slack can show: HTTP 200, ephemeral, no internals."""
    assert reply.status == 200, (reply.status, reply.message)
    assert reply.message.get("response_type") == "ephemeral", reply.message
    for word in NEVER_SHOWN:
        assert word not in reply.text, reply.text

"""keybot installed in many workspaces through OAuth v2, over the wire, on SQLite and PostgreSQL.

A real keybot (``SLACK_CLIENT_ID``/``SLACK_CLIENT_SECRET`` set, no ``SLACK_BOT_TOKEN``) serves HTTP on a
free port; the Slack stand-in plays Slack's side of the install (``grant`` is a user approving it,
``oauth.v2.access`` trades the code for a token, refresh tokens rotate it) and checks every token it
issued. A browser is played by GET requests carrying the state cookie keybot set.
"""

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from bot.domain.hashing import HashParams
from bot.domain.model import Actor
from bot.runtime import Runtime, build_runtime
from bot.runtime.installations import installation_stores
from bot.settings import Settings
from bot.shell.driver import Reply, SlackDriver
from bot.shell.fakeslack import Call, FakeSlack, Grant, ServerError
from bot.shell.wire import event_body, post_signed
from storage import make_engine, metadata, open_store
from storage.tables import orgs, outbox, slack_bots, slack_installations, slack_oauth_states
from tests.procs import SIGNING_SECRET, fresh_postgres_database, running_keybot

T1, T2 = "T0000AAA1", "T0000BBB2"
GRID, GRID_A, GRID_B = "E0000GRD1", "T0000GA01", "T0000GB02"
OWNER = "UOWNER01"  # the same user id installs both workspaces: ids mean nothing across workspaces
READER = "UREADER1"
KEY = re.compile(r"kb_[A-Za-z0-9]{10}_[A-Za-z0-9]{28}")
STATE = re.compile(r"state=([0-9a-f-]{36})")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'keybot.db'}"
        return
    async with fresh_postgres_database() as url:
        yield url


@dataclass
class Deployment:
    """One keybot serving many workspaces, and a browser and Slack to talk to it."""

    runtime: Runtime
    slack: FakeSlack
    driver: SlackDriver
    base_url: str
    session: aiohttp.ClientSession
    url: str

    async def start_install(self) -> tuple[int, str, str]:
        """GET /slack/install: the status, the state in the "Add to Slack" link, the cookie set."""
        async with self.session.get(f"{self.base_url}/slack/install") as response:
            page = await response.text()
            cookie = response.cookies.get("slack-app-oauth-state")
        found = STATE.search(page)
        assert found is not None, page
        assert cookie is not None and cookie.value == found.group(1)
        return response.status, found.group(1), page

    async def callback(self, *, code: str, state: str, cookie: str | None) -> tuple[int, str]:
        """The browser coming back from Slack to GET /slack/oauth_redirect."""
        headers = {"Cookie": f"slack-app-oauth-state={cookie}"} if cookie is not None else {}
        async with self.session.get(
            f"{self.base_url}/slack/oauth_redirect", params={"code": code, "state": state}, headers=headers
        ) as response:
            return response.status, await response.text()

    async def install(self, code: str, grant: Grant) -> None:
        """The whole dance, as a user who approves it in Slack."""
        self.slack.grant(code, grant)
        _, state, _ = await self.start_install()
        status, page = await self.callback(code=code, state=state, cookie=state)
        assert status == 200, page

    async def cmd(
        self, user: str, text: str, *, team: str, enterprise: str | None = None, org_wide: bool = False
    ) -> Reply:
        return await self.driver.command(user, text, team_id=team, enterprise_id=enterprise, org_wide=org_wide)

    async def event(self, event: dict[str, Any], *, team: str | None, enterprise: str | None = None,
                    org_wide: bool = False) -> int:
        body = event_body(event=event, team_id=team, enterprise_id=enterprise, org_wide=org_wide)
        status, _ = await post_signed(
            self.session, f"{self.base_url}/slack/events", body, signing_secret=SIGNING_SECRET,
            content_type="application/json",
        )
        return status

    async def rows(self, table: Any) -> list[Any]:
        engine = make_engine(self.url)
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(select(table))).all())
        finally:
            await engine.dispose()

    async def drained(self, timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while await self.runtime.store.pending_notifications():
                await asyncio.sleep(0.02)


@pytest.fixture
async def deployment(database_url: str) -> AsyncIterator[Deployment]:
    async with FakeSlack(team_id=T1) as slack:
        settings = Settings(
            slack_client_id=slack.client_id,
            slack_client_secret=slack.client_secret,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=slack.api_url,
            database_url=database_url,
            hash_params=HashParams.cheapest(),
            dm_merge_seconds=0,
            host="127.0.0.1",
            port=0,
        )
        # a loaded machine may take over 2 s for a command: its reply is then still the ack
        runtime = await build_runtime(settings, outbox_backoff=0.05, ack_budget=20.0)
        runner = web.AppRunner(runtime.web_app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        runtime.worker.start()
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
            driver = SlackDriver(events_url=f"{base_url}/slack/events", signing_secret=SIGNING_SECRET,
                                 slack=slack, team_id=T1, session=session)
            yield Deployment(runtime, slack, driver, base_url, session, database_url)
        await runner.cleanup()
        await runtime.aclose()


def dms(slack: FakeSlack, user: str) -> list[Call]:
    return slack.dms_to(user)


async def test_the_oauth_dance_installs_keybot_and_makes_the_installer_the_first_owner(
    deployment: Deployment,
) -> None:
    d = deployment
    status, state, page = await d.start_install()
    assert status == 200
    assert "https://slack.com/oauth/v2/authorize" in page
    assert f"client_id={d.slack.client_id}" in page and "scope=commands,chat:write" in page
    d.slack.grant("code-1", Grant(team_id=T1, user_id=OWNER, name="Acme"))
    status, _ = await d.callback(code="code-1", state=state, cookie=state)
    assert status == 200
    [exchange] = d.slack.calls_to("oauth.v2.access")
    assert exchange.outcome == "ok"
    [bot] = await d.rows(slack_bots)
    assert (bot.team_id, bot.enterprise_id, bot.bot_token) == (T1, None, d.slack.tokens_of(T1)[0])
    assert await d.rows(slack_oauth_states) == []  # the state is used up

    whoami = await d.cmd(OWNER, "whoami", team=T1)
    assert "owner" in whoami.text.lower() and "Acme" in whoami.text, whoami.text
    assert "Created" in (await d.cmd(OWNER, "project create payments", team=T1)).text
    await d.cmd(OWNER, f"grant <@{READER}> read-only payments", team=T1)
    dm = await d.slack.wait_for(lambda s: dms(s, READER))
    assert [c.token for c in dm] == d.slack.tokens_of(T1)

    # a reinstall by someone else changes no role: the org already has its owner
    await d.install("code-2", Grant(team_id=T1, user_id="UINTRUDR", name="Acme"))
    assert "no role" in (await d.cmd("UINTRUDR", "whoami", team=T1)).text.lower()


async def test_a_forged_missing_or_replayed_state_is_refused_and_installs_nothing(deployment: Deployment) -> None:
    d = deployment
    d.slack.grant("code-1", Grant(team_id=T1, user_id=OWNER))
    _, state, _ = await d.start_install()
    forged = "0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f"
    status, _ = await d.callback(code="code-1", state=forged, cookie=forged)  # a cookie to match, no record
    assert status == 401
    status, _ = await d.callback(code="code-1", state=state, cookie=None)  # not the browser that started
    assert status == 400
    status, _ = await d.callback(code="code-1", state=state, cookie=forged)
    assert status == 400
    assert d.slack.calls_to("oauth.v2.access") == [] and await d.rows(slack_bots) == []

    status, _ = await d.callback(code="code-1", state=state, cookie=state)
    assert status == 200
    d.slack.grant("code-2", Grant(team_id=T2, user_id="UATTACK1"))
    status, _ = await d.callback(code="code-2", state=state, cookie=state)  # the same state again
    assert status == 401
    assert len(d.slack.calls_to("oauth.v2.access")) == 1
    assert [b.team_id for b in await d.rows(slack_bots)] == [T1]
    assert [o.team_id for o in await d.rows(orgs)] == [T1]


async def test_two_workspaces_are_each_dmed_with_their_own_token_and_see_nothing_of_each_other(
    deployment: Deployment,
) -> None:
    d = deployment
    await d.install("code-1", Grant(team_id=T1, user_id=OWNER, name="One"))
    await d.install("code-2", Grant(team_id=T2, user_id=OWNER, name="Two"))
    [one], [two] = d.slack.tokens_of(T1), d.slack.tokens_of(T2)
    assert "Created" in (await d.cmd(OWNER, "project create zebra-7", team=T1)).text
    await d.cmd(OWNER, f"grant <@{READER}> read-only zebra-7", team=T1)
    first = await d.slack.wait_for(lambda s: dms(s, READER))
    assert [c.token for c in first] == [one]

    assert "zebra-7" not in (await d.cmd(OWNER, "projects", team=T2)).text
    refused = await d.cmd(OWNER, "create zebra-7 k1", team=T2)
    assert "zebra-7" in refused.text and "kb_" not in refused.text
    assert "Created" in (await d.cmd(OWNER, "project create lion", team=T2)).text
    await d.cmd(OWNER, f"grant <@{READER}> read-only lion", team=T2)
    both = await d.slack.wait_for(lambda s: len(dms(s, READER)) == 2 and dms(s, READER))
    assert [c.token for c in both] == [one, two]
    assert "lion" in str(both[1].args.get("text")) and "zebra-7" not in str(both[1].args.get("text"))
    await d.drained()
    assert {(r.team_id, r.user_id) for r in await d.rows(outbox)} == {(T1, READER), (T2, READER)}


async def test_an_org_wide_grid_install_is_one_org_whose_roles_hold_in_each_of_its_workspaces(
    deployment: Deployment,
) -> None:
    d = deployment
    await d.install("code-g", Grant(team_id=None, user_id=OWNER, enterprise_id=GRID, org_wide=True, name="Grid"))
    [token] = d.slack.tokens_of(GRID)
    [bot] = await d.rows(slack_bots)
    assert (bot.enterprise_id, bot.team_id, bot.is_enterprise_install) == (GRID, None, True)
    assert [o.team_id for o in await d.rows(orgs)] == [GRID]

    grid = {"enterprise": GRID, "org_wide": True}
    assert "Created" in (await d.cmd(OWNER, "project create payments", team=GRID_A, **grid)).text
    await d.cmd(OWNER, f"grant <@{READER}> owner payments", team=GRID_A, **grid)
    created = await d.cmd(READER, "create payments ci", team=GRID_B, **grid)  # the role holds in workspace B
    assert "kb_" in created.text, created.text
    listed = await d.cmd(OWNER, "list payments", team=GRID_B, **grid)
    assert "ci" in listed.text
    owner_dms = await d.slack.wait_for(lambda s: dms(s, OWNER))
    assert {c.token for c in [*dms(d.slack, READER), *owner_dms]} == {token}
    # a workspace outside the Grid org, with the same user ids, sees nothing of it
    await d.install("code-1", Grant(team_id=T1, user_id="UOTHER01"))
    assert "payments" not in (await d.cmd(OWNER, "projects", team=T1)).text
    # uninstalled from the whole Grid org: its tokens go, the other workspace's stay
    assert await d.event({"type": "app_uninstalled"}, team=GRID_A, enterprise=GRID, org_wide=True) == 200
    assert [(b.enterprise_id, b.team_id) for b in await d.rows(slack_bots)] == [(None, T1)]
    assert [(i.enterprise_id, i.team_id) for i in await d.rows(slack_installations)] == [(None, T1)]


async def test_an_uninstall_deletes_the_tokens_at_once_and_a_reinstall_sends_the_kept_dms_once(
    deployment: Deployment,
) -> None:
    d = deployment
    await d.install("code-1", Grant(team_id=T1, user_id=OWNER, name="Acme"))
    [old] = d.slack.tokens_of(T1)
    assert "Created" in (await d.cmd(OWNER, "project create payments", team=T1)).text
    assert "kb_" in (await d.cmd(OWNER, "create payments ci", team=T1)).text

    assert await d.event({"type": "app_uninstalled"}, team=T1) == 200
    assert await d.rows(slack_bots) == [] and await d.rows(slack_installations) == []
    d.slack.revoke(T1)
    meanwhile = await d.cmd(OWNER, "list payments", team=T1)  # Bolt answers on the response_url, which
    # Slack shows privately unless told "in_channel"
    name = meanwhile.response_url.rsplit("/", 1)[-1]
    [said] = await d.slack.wait_for(lambda s: s.responses_to(name))
    assert meanwhile.status == 200 and said.body.get("response_type", "ephemeral") == "ephemeral", said.body
    assert "not installed in this workspace" in said.body["text"] and "ci" not in said.body["text"]

    # a change made while keybot is not installed (as keybot shell or a scheduled job could)
    actor = Actor(team_id=T1, user_id=OWNER)
    await d.runtime.keybot.people.grant(actor, user_id=READER, role="read-only", project="payments")

    async def waiting() -> bool:
        rows = [r for r in await d.rows(outbox) if r.user_id == READER]
        return bool(rows) and rows[0].last_error is not None

    async with asyncio.timeout(20):
        while not await waiting():
            await asyncio.sleep(0.05)
    [row] = [r for r in await d.rows(outbox) if r.user_id == READER]
    assert (row.sent_at, row.dead_at) == (None, None)  # kept: not sent, not buried
    assert not any(c.token == old for c in d.slack.calls_to("chat.postMessage") if c.args.get("channel") == READER)

    await d.install("code-2", Grant(team_id=T1, user_id="USOMEONE", name="Acme"))
    [_, new] = d.slack.tokens_of(T1)
    delivered = await d.slack.wait_for(lambda s: dms(s, READER), timeout=20)
    assert [c.token for c in delivered] == [new]
    await d.drained()
    await asyncio.sleep(0.3)
    assert len(dms(d.slack, READER)) == 1
    listed = await d.cmd(OWNER, "list payments", team=T1)  # keys and roles stayed
    assert "ci" in listed.text, listed.text
    assert "no role" in (await d.cmd("USOMEONE", "whoami", team=T1)).text.lower()


async def test_tokens_revoked_deletes_the_workspaces_tokens_and_leaves_the_others(deployment: Deployment) -> None:
    d = deployment
    await d.install("code-1", Grant(team_id=T1, user_id=OWNER))
    await d.install("code-2", Grant(team_id=T2, user_id=OWNER))
    assert await d.event({"type": "tokens_revoked", "tokens": {"bot": ["UKEYBOT"]}}, team=T2) == 200
    assert [b.team_id for b in await d.rows(slack_bots)] == [T1]
    assert [i.team_id for i in await d.rows(slack_installations)] == [T1]


async def test_a_token_that_expires_mid_drain_is_refreshed_and_the_dm_goes_out_once(deployment: Deployment) -> None:
    d = deployment
    await d.install("code-1", Grant(team_id=T1, user_id=OWNER, name="Acme", expires_in=43200))
    [first] = d.slack.tokens_of(T1)
    assert "Created" in (await d.cmd(OWNER, "project create payments", team=T1)).text
    d.slack.expire(first)  # Slack expires it earlier than keybot expected
    await d.runtime.keybot.people.grant(Actor(team_id=T1, user_id=OWNER), user_id=READER, role="read-only",
                                        project="payments")
    delivered = await d.slack.wait_for(lambda s: dms(s, READER), timeout=20)
    [refresh] = [c for c in d.slack.calls_to("oauth.v2.access") if c.args.get("grant_type") == "refresh_token"]
    assert refresh.outcome == "ok"
    [_, second] = d.slack.tokens_of(T1)
    assert [c.token for c in delivered] == [second]
    refused = [c for c in d.slack.calls_to("chat.postMessage") if c.token == first]
    assert [c.outcome for c in refused] == ["slack_error"]
    await d.drained()
    await asyncio.sleep(0.3)
    assert len(dms(d.slack, READER)) == 1
    [bot] = [b for b in await d.rows(slack_bots) if b.bot_token == second]
    assert bot.bot_refresh_token is not None
    # the request path (Bolt's authorize) uses the rotated token from the store too
    assert "payments" in (await d.cmd(OWNER, "projects", team=T1)).text


async def test_a_token_about_to_expire_is_rotated_before_a_dm_is_sent(deployment: Deployment) -> None:
    d = deployment
    await d.install("code-1", Grant(team_id=T1, user_id=OWNER, expires_in=600))  # within Bolt's 2 h margin
    [first] = d.slack.tokens_of(T1)
    d.slack.fail_next("chat.postMessage", ServerError(500))  # and a transient error on the way
    await d.cmd(OWNER, "project create payments", team=T1)
    await d.cmd(OWNER, f"grant <@{READER}> read-only payments", team=T1)
    delivered = await d.slack.wait_for(lambda s: dms(s, READER), timeout=20)
    tokens = d.slack.tokens_of(T1)
    assert first not in {c.token for c in delivered} and len(tokens) >= 2
    assert delivered[0].token in tokens[1:]


async def test_no_key_secret_bot_token_or_client_secret_reaches_a_log_line_and_no_key_secret_the_database(
    deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    d = deployment
    await d.install("code-1", Grant(team_id=T1, user_id=OWNER, expires_in=600))
    await d.cmd(OWNER, "project create payments", team=T1)
    created = await d.cmd(OWNER, "create payments ci", team=T1)
    [secret] = KEY.findall(created.text)
    await d.cmd(OWNER, f"grant <@{READER}> owner payments", team=T1)
    await d.slack.wait_for(lambda s: dms(s, READER), timeout=20)
    await d.drained()
    tokens = [*d.slack.issued, *(i.refresh_token for i in d.slack.issued.values() if i.refresh_token)]
    assert len(tokens) >= 3  # the first token, its refresh token, the rotated one (and its refresh token)
    logged = caplog.text
    for value in [secret, d.slack.client_secret, *tokens]:
        assert value not in logged
    engine = make_engine(d.url)
    try:
        async with engine.connect() as conn:
            for table in metadata.sorted_tables:
                rows = (await conn.execute(select(table))).all()
                assert secret not in repr(rows), table.name
    finally:
        await engine.dispose()
    for call in d.slack.calls:
        assert secret not in repr(call.args)


async def test_keybot_serve_with_a_client_id_and_secret_and_no_bot_token_serves_the_install_page(
    tmp_path: Path,
) -> None:
    async with (
        FakeSlack() as slack,
        running_keybot(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'kb.db'}",
            slack_api_url=slack.api_url,
            log_path=tmp_path / "kb.log",
            SLACK_BOT_TOKEN="",
            SLACK_CLIENT_ID=slack.client_id,
            SLACK_CLIENT_SECRET=slack.client_secret,
        ) as kb,
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session,
    ):
        async with session.get(f"{kb.base_url}/slack/install") as response:
            page = await response.text()
            assert response.status == 200 and STATE.search(page) is not None
        async with session.get(f"{kb.base_url}/slack/oauth_redirect", params={"code": "x", "state": "y"}) as r:
            assert r.status == 400  # no state cookie: not the browser that started
        code, log = await kb.stop()
    assert code == 0, log
    assert "Traceback" not in log and slack.client_secret not in log


async def test_callbacks_racing_with_one_state_find_it_exactly_once(database_url: str) -> None:
    store = await open_store(database_url, migrate=True)
    try:
        _, states = installation_stores(store.engine, client_id="1.2")
        for _ in range(3):
            state = await states.async_issue()
            results = await asyncio.gather(*(states.async_consume(state) for _ in range(8)))
            assert sorted(results) == [False] * 7 + [True]
        assert not await states.async_consume("0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f")
    finally:
        await store.close()


async def test_a_key_pasted_in_a_workspace_is_handled_with_that_workspaces_token_and_ignored_elsewhere(
    deployment: Deployment,
) -> None:
    d = deployment
    await d.install("code-1", Grant(team_id=T1, user_id=OWNER, name="One"))
    await d.install("code-2", Grant(team_id=T2, user_id=OWNER, name="Two"))
    await d.install("code-g", Grant(team_id=None, user_id=OWNER, enterprise_id=GRID, org_wide=True, name="Grid"))
    [one], [grid] = d.slack.tokens_of(T1), d.slack.tokens_of(GRID)
    await d.cmd(OWNER, "project create zebra-7", team=T1)
    [secret] = set(KEY.findall((await d.cmd(OWNER, "create zebra-7 ci", team=T1)).text))
    await d.cmd(OWNER, "project create payments", team=GRID_A, enterprise=GRID, org_wide=True)
    [grid_secret] = set(KEY.findall((await d.cmd(OWNER, "create payments ci", team=GRID_A, enterprise=GRID,
                                                 org_wide=True)).text))
    await d.drained()
    assert d.runtime.watch is not None

    def pasted(text: str, ts: str) -> dict[str, Any]:
        return {"type": "message", "channel": "C0000LEAK", "user": READER, "text": text, "ts": ts}

    assert await d.event(pasted(f"oops {secret}", "1700000000.000100"), team=T2) == 200  # not T2's key
    await d.runtime.watch.idle()
    assert d.slack.calls_to("chat.postEphemeral") == []
    assert await d.event(pasted(f"oops {secret}", "1700000000.000200"), team=T1) == 200
    assert await d.event(pasted(f"and {grid_secret}", "1700000000.000300"), team=GRID_B, enterprise=GRID,
                         org_wide=True) == 200
    await d.runtime.watch.idle()
    warned = d.slack.calls_to("chat.postEphemeral")
    assert [(c.args["user"], c.token) for c in warned] == [(READER, one), (READER, grid)]
    assert {one, grid} <= {c.token for c in d.slack.calls_to("chat.getPermalink")}
    await d.drained()
    leak_dms = [c for c in dms(d.slack, OWNER) if "posted key" in str(c.args.get("text"))]
    assert sorted(c.token for c in leak_dms) == sorted([one, grid])


async def test_a_grid_workspace_installed_on_its_own_gets_leak_handling_and_offboarding_dms_with_its_token(
    deployment: Deployment,
) -> None:
    """A workspace of an Enterprise Grid installed by itself (not org-wide) is its own organization, whose
    token is found by its team id wherever keybot knows only that: the leak watch, the outbox, the admin
    directory."""
    d = deployment
    await d.install("code-a", Grant(team_id=GRID_A, user_id=OWNER, enterprise_id=GRID, org_wide=False, name="GA"))
    [token] = d.slack.tokens_of(GRID_A)
    ws: dict[str, Any] = {"team": GRID_A, "enterprise": GRID, "org_wide": False}
    await d.cmd(OWNER, "project create payments", **ws)
    [secret] = set(KEY.findall((await d.cmd(OWNER, "create payments ci", **ws)).text))
    await d.cmd(OWNER, f"grant <@{READER}> owner payments", **ws)
    await d.cmd(READER, "create payments deploy", **ws)
    await d.drained()
    assert d.runtime.watch is not None

    pasted = {"type": "message", "channel": "C0000LEAK", "user": READER, "text": f"oops {secret}", "ts": "1700000000.000100"}
    assert await d.event(pasted, **ws) == 200
    await d.runtime.watch.idle()
    async with d.session.post(f"{d.base_url}/v1/keys/verify", json={"key": secret}) as response:
        assert await response.json() == {"valid": False, "code": "DISABLED"}
    assert [(c.args["user"], c.token) for c in d.slack.calls_to("chat.postEphemeral")] == [(READER, token)]

    left = {"type": "user_change", "user": {"id": READER, "team_id": GRID_A, "deleted": True}}
    assert await d.event(left, **ws) == 200
    await d.runtime.watch.idle()
    await d.drained()
    told = [c for c in dms(d.slack, OWNER) if "deactivated" in str(c.args.get("text"))]
    assert [c.token for c in told] == [token]


async def test_when_an_org_wide_installs_last_owner_leaves_the_admins_are_listed_in_that_workspace(
    deployment: Deployment,
) -> None:
    """An org-wide Grid install holds an org token, with which ``users.list`` takes a workspace's team id:
    the admins are asked of the workspace the deactivation came from, never of the enterprise id."""
    d = deployment
    await d.install("code-g", Grant(team_id=None, user_id=OWNER, enterprise_id=GRID, org_wide=True, name="Grid"))
    [grid] = d.slack.tokens_of(GRID)
    d.slack.admins.add("UADMIN01")
    ws: dict[str, Any] = {"team": GRID_B, "enterprise": GRID, "org_wide": True}
    assert "owner" in (await d.cmd(OWNER, "whoami", **ws)).text
    left = {"type": "user_change", "user": {"id": OWNER, "team_id": GRID_B, "deleted": True}}
    assert await d.event(left, **ws) == 200
    assert d.runtime.watch is not None
    await d.runtime.watch.idle()
    [listed] = d.slack.calls_to("users.list")
    assert (listed.args.get("team_id"), listed.token) == (GRID_B, grid)
    await d.drained()
    assert [c.token for c in dms(d.slack, "UADMIN01")] == [grid]

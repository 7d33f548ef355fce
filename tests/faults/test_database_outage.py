"""PostgreSQL going away while keybot runs: a TCP proxy sits between keybot and the server, and the
tests cut it (every connection reset, new ones refused) before a request or half-way through one."""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from sqlalchemy import make_url

from bot.slack.codec import ActionId
from storage import SqlStore
from tests.faults.helpers import (
    KEY_RE,
    OWNER,
    Instance,
    SlackWithOutages,
    TcpProxy,
    TrippingStore,
    assert_private_and_clean,
    bootstrap,
    db_state,
    in_process_keybot,
    incomplete_keys,
    is_refusal,
)

pytestmark = pytest.mark.postgres
TRY_AGAIN = "temporarily unavailable"
SECOND_OWNER = "UOWNER02"  # an owner besides the one who acts, so that every key change queues a DM
OWNERS = (OWNER, SECOND_OWNER)


@dataclass
class Outage:
    kb: Instance
    proxy: TcpProxy
    url: str  # straight to PostgreSQL, for the checks
    default_key: str
    cut_before: set[str]

    async def trip(self, step: str) -> None:
        if step in self.cut_before:
            self.cut_before.clear()
            await self.proxy.cut()


@pytest.fixture
async def outage(
    pg_url: str, slack: SlackWithOutages, session: aiohttp.ClientSession
) -> AsyncIterator[Outage]:
    """keybot on PostgreSQL through a proxy the test can cut; an org of two owners with a project ``web``."""
    target = make_url(pg_url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    await proxy.start()
    await bootstrap(pg_url, owners=OWNERS)
    proxied = target.set(port=proxy.port).render_as_string(hide_password=False)
    tripping: list[TrippingStore] = []

    def unit_of_work(store: SqlStore) -> TrippingStore:
        tripping.append(TrippingStore(store))
        return tripping[-1]

    async with in_process_keybot(url=proxied, slack=slack, session=session, unit_of_work=unit_of_work) as kb:
        created = await kb.cmd(OWNER, "project create web")
        [default_key] = set(KEY_RE.findall(created.text))
        state = Outage(kb=kb, proxy=proxy, url=pg_url, default_key=default_key, cut_before=set())
        [store] = tripping
        store.trip = state.trip
        yield state
        await proxy.restore()
    await proxy.cut()


async def test_a_command_while_the_database_is_unreachable_gets_a_private_try_again_reply(
    outage: Outage,
) -> None:
    kb = outage.kb
    await outage.proxy.cut()

    for text in ("create web checkout", "list web", "delete web default", "whoami", "audit web"):
        reply = await kb.cmd(OWNER, text)
        assert_private_and_clean(reply)
        assert is_refusal(reply) and TRY_AGAIN in reply.text and "Try again" in reply.text, reply.text
    status, body = await kb.healthz()
    assert status == 503 and body["database"] == "unreachable"
    status, body = await kb.verify(outage.default_key)
    assert status == 503, body

    await outage.proxy.restore()

    assert (await kb.healthz())[0] == 200
    assert KEY_RE.search((await kb.cmd(OWNER, "create web checkout")).text)
    assert (await kb.verify(outage.default_key))[1]["valid"] is True
    state = await db_state(outage.url)
    assert state.key_names() == {"default", "checkout"}
    assert incomplete_keys(state, owners=OWNERS) == []


@pytest.mark.parametrize("cut_before", ["add_audit", "notify"])
async def test_losing_the_database_in_the_middle_of_key_creation_leaves_no_part_of_the_key(
    outage: Outage, cut_before: str
) -> None:
    kb = outage.kb
    outage.cut_before = {cut_before}  # the key row is written; its audit row or DM is next

    reply = await kb.cmd(OWNER, "create web checkout")

    assert outage.cut_before == set(), "the transaction never reached the step where the test cuts"
    assert_private_and_clean(reply)
    assert is_refusal(reply) and TRY_AGAIN in reply.text, reply.text
    assert not KEY_RE.search(reply.text)
    await outage.proxy.restore()
    state = await db_state(outage.url)
    assert state.key_names() == {"default"}
    assert incomplete_keys(state, owners=OWNERS) == []
    again = await kb.cmd(OWNER, "create web checkout")
    assert KEY_RE.search(again.text), again.text
    assert incomplete_keys(await db_state(outage.url), owners=OWNERS) == []


async def test_a_delete_confirmed_while_the_database_drops_mid_transaction_can_be_confirmed_again(
    outage: Outage, slack: SlackWithOutages
) -> None:
    kb = outage.kb
    button = (await kb.cmd(OWNER, "delete web default")).button(ActionId.DELETE_CONFIRM)
    outage.cut_before = {"add_audit"}  # the key row is deleted and the confirmation used; audit is next

    failed = await kb.driver.click(OWNER, button)

    assert outage.cut_before == set(), "the transaction never reached the step where the test cuts"
    assert_private_and_clean(failed)
    assert is_refusal(failed) and TRY_AGAIN in failed.text, failed.text
    await outage.proxy.restore()
    state = await db_state(outage.url)
    assert state.key_names() == {"default"}
    assert [a.action for a in state.audit].count("key deleted") == 0
    assert (await kb.verify(outage.default_key))[1]["valid"] is True
    done = await kb.driver.click(OWNER, button)
    assert "Deleted key `default`" in done.text, done.text
    assert (await kb.verify(outage.default_key))[1] == {"valid": False, "code": "NOT_FOUND"}

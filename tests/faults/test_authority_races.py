"""Authority read before the lock, on PostgreSQL (READ COMMITTED): an owner's change held just before it
takes the org lock, while another owner revokes that owner and commits, must be refused when it
resumes — nothing of it lands, the roles and the audit trail end as the revoke left them.

Over Slack's wire format, with ``PausingStore`` holding the victim's transaction where it locks the
org (or, in code that takes no lock, where the lock belongs). SQLite needs no such test: its write
transactions take the database lock (BEGIN IMMEDIATE) before their first read."""

import asyncio
from collections.abc import AsyncIterator, Awaitable

import aiohttp
import pytest

from bot.shell.driver import Reply
from bot.slack.codec import ActionId
from tests.faults.helpers import (
    KEY_RE,
    OWNER,
    DbState,
    Instance,
    PausingStore,
    SlackWithOutages,
    assert_private_and_clean,
    bootstrap,
    db_state,
    in_process_keybot,
    is_refusal,
)

pytestmark = pytest.mark.postgres

SECOND_OWNER = "UOWNER02"
PROJECT_OWNER = "UPOWNER1"
TARGET = "UTARGET1"
WITHIN = 60.0  # a deadline for a step that should take milliseconds, not a measure


@pytest.fixture
async def pausing() -> PausingStore:
    return PausingStore()


@pytest.fixture
async def kb(
    pg_url: str, slack: SlackWithOutages, session: aiohttp.ClientSession, pausing: PausingStore
) -> AsyncIterator[Instance]:
    """keybot on a fresh PostgreSQL database: OWNER owns the org and a project ``web``."""
    await bootstrap(pg_url)
    async with in_process_keybot(
        url=pg_url, slack=slack, session=session, unit_of_work=pausing.around, ack_budget=WITHIN
    ) as instance:
        assert KEY_RE.search((await instance.cmd(OWNER, "project create web")).text)
        yield instance


async def ok(pending: Awaitable[Reply]) -> Reply:
    reply = await pending
    assert_private_and_clean(reply)
    assert not is_refusal(reply), reply.text
    return reply


async def held_while_revoked(kb: Instance, pausing: PausingStore, victim: Awaitable[Reply], revoke: str) -> Reply:
    """Run ``victim`` until its transaction is about to lock the org; meanwhile OWNER runs ``revoke``
    to the end (committed); then let the victim go on. Its reply."""
    pausing.arm()
    held = asyncio.ensure_future(victim)
    paused = asyncio.ensure_future(pausing.paused.wait())
    try:
        async with asyncio.timeout(WITHIN):
            await asyncio.wait({held, paused}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        paused.cancel()
    assert pausing.paused.is_set(), f"the victim's change never reached its lock: {held.result().text}"
    try:
        async with asyncio.timeout(WITHIN):
            await ok(kb.cmd(OWNER, revoke))
    finally:
        pausing.resume()
    async with asyncio.timeout(WITHIN):
        reply = await held
    assert_private_and_clean(reply)
    return reply


def trail(state: DbState) -> list[tuple[str, str | None, str | None]]:
    """The audit trail: (action, target user, role) of every event (a revoke's role: the one removed)."""
    return [(a.action, a.target_user, a.role) for a in state.audit]


async def test_an_org_grant_held_before_its_lock_is_refused_once_its_granter_was_revoked(
    kb: Instance, pausing: PausingStore, pg_url: str
) -> None:
    await ok(kb.cmd(OWNER, f"grant <@{SECOND_OWNER}> owner"))
    before = await db_state(pg_url)

    reply = await held_while_revoked(
        kb, pausing, kb.cmd(SECOND_OWNER, f"grant <@{TARGET}> owner"), f"revoke <@{SECOND_OWNER}>"
    )

    assert is_refusal(reply), reply.text
    after = await db_state(pg_url)
    assert {(r.user_id, r.role) for r in after.org_roles} == {(OWNER, "owner")}
    assert trail(after) == [*trail(before), ("role revoked", SECOND_OWNER, "owner")]


async def test_a_project_grant_held_before_its_lock_is_refused_once_its_granter_was_revoked(
    kb: Instance, pausing: PausingStore, pg_url: str
) -> None:
    await ok(kb.cmd(OWNER, f"grant <@{PROJECT_OWNER}> owner web"))
    before = await db_state(pg_url)

    reply = await held_while_revoked(
        kb, pausing, kb.cmd(PROJECT_OWNER, f"grant <@{TARGET}> read-write web"), f"revoke <@{PROJECT_OWNER}> web"
    )

    assert is_refusal(reply), reply.text
    after = await db_state(pg_url)
    assert [(r.user_id, r.role) for r in after.project_roles] == []
    assert trail(after) == [*trail(before), ("role revoked", PROJECT_OWNER, "owner")]


async def test_an_org_revoke_held_before_its_lock_is_refused_once_its_revoker_was_revoked(
    kb: Instance, pausing: PausingStore, pg_url: str
) -> None:
    await ok(kb.cmd(OWNER, f"grant <@{SECOND_OWNER}> owner"))
    await ok(kb.cmd(OWNER, f"grant <@{TARGET}> member"))
    before = await db_state(pg_url)

    reply = await held_while_revoked(
        kb, pausing, kb.cmd(SECOND_OWNER, f"revoke <@{TARGET}>"), f"revoke <@{SECOND_OWNER}>"
    )

    assert is_refusal(reply), reply.text
    after = await db_state(pg_url)
    assert {(r.user_id, r.role) for r in after.org_roles} == {(OWNER, "owner"), (TARGET, "member")}
    assert trail(after) == [*trail(before), ("role revoked", SECOND_OWNER, "owner")]


async def test_a_project_revoke_held_before_its_lock_is_refused_once_its_revoker_was_revoked(
    kb: Instance, pausing: PausingStore, pg_url: str
) -> None:
    await ok(kb.cmd(OWNER, f"grant <@{PROJECT_OWNER}> owner web"))
    await ok(kb.cmd(OWNER, f"grant <@{TARGET}> read-only web"))
    before = await db_state(pg_url)

    reply = await held_while_revoked(
        kb, pausing, kb.cmd(PROJECT_OWNER, f"revoke <@{TARGET}> web"), f"revoke <@{PROJECT_OWNER}> web"
    )

    assert is_refusal(reply), reply.text
    after = await db_state(pg_url)
    assert [(r.user_id, r.role) for r in after.project_roles] == [(TARGET, "read-only")]
    assert trail(after) == [*trail(before), ("role revoked", PROJECT_OWNER, "owner")]


async def test_a_delete_confirmation_held_before_its_lock_is_refused_once_its_owner_was_revoked(
    kb: Instance, pausing: PausingStore, pg_url: str
) -> None:
    await ok(kb.cmd(OWNER, f"grant <@{PROJECT_OWNER}> owner web"))
    await ok(kb.cmd(OWNER, "create web deploy"))
    button = (await ok(kb.cmd(PROJECT_OWNER, "delete web deploy"))).button(ActionId.DELETE_CONFIRM)
    before = await db_state(pg_url)

    reply = await held_while_revoked(
        kb, pausing, kb.driver.click(PROJECT_OWNER, button), f"revoke <@{PROJECT_OWNER}> web"
    )

    assert is_refusal(reply), reply.text
    assert "not deleted" in reply.text, reply.text
    after = await db_state(pg_url)
    assert after.key_names("web") == {"default", "deploy"}
    assert trail(after) == [*trail(before), ("role revoked", PROJECT_OWNER, "owner")]


async def test_a_key_creation_held_before_its_lock_is_refused_once_its_creator_was_revoked(
    kb: Instance, pausing: PausingStore, pg_url: str
) -> None:
    await ok(kb.cmd(OWNER, f"grant <@{PROJECT_OWNER}> owner web"))
    before = await db_state(pg_url)

    reply = await held_while_revoked(
        kb, pausing, kb.cmd(PROJECT_OWNER, "create web deploy"), f"revoke <@{PROJECT_OWNER}> web"
    )

    assert is_refusal(reply), reply.text
    assert not KEY_RE.search(reply.text)
    after = await db_state(pg_url)
    assert after.key_names("web") == {"default"}
    assert trail(after) == [*trail(before), ("role revoked", PROJECT_OWNER, "owner")]


async def test_a_project_creation_held_before_its_lock_is_refused_once_its_creator_was_revoked(
    kb: Instance, pausing: PausingStore, pg_url: str
) -> None:
    await ok(kb.cmd(OWNER, f"grant <@{SECOND_OWNER}> owner"))
    before = await db_state(pg_url)

    reply = await held_while_revoked(
        kb, pausing, kb.cmd(SECOND_OWNER, "project create api"), f"revoke <@{SECOND_OWNER}>"
    )

    assert is_refusal(reply), reply.text
    assert not KEY_RE.search(reply.text)
    after = await db_state(pg_url)
    assert after.key_names("api") == set()
    assert ("project created", None, None) not in trail(after)[len(trail(before)):]
    assert trail(after) == [*trail(before), ("role revoked", SECOND_OWNER, "owner")]

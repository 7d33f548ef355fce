"""Races between Slack users, over Slack's wire format, on SQLite and on PostgreSQL: each race has one
winner, every loser gets a private explanation, and the database tells one consistent story."""

import asyncio
from collections.abc import AsyncIterator, Awaitable

import aiohttp
import pytest

from bot.domain.hashing import Hasher, HashParams
from bot.domain.keys import KeyFormat
from bot.domain.model import Actor
from bot.runtime import utcnow
from bot.services import Context, build_services
from bot.services.verification import Verifier
from bot.shell.driver import Reply
from bot.slack.codec import ActionId
from storage import open_store
from tests.faults.helpers import (
    DELETED_DM,
    KEY_RE,
    OWNER,
    TEAM,
    Instance,
    SlackWithOutages,
    assert_private_and_clean,
    bootstrap,
    db_state,
    in_process_keybot,
    incomplete_keys,
    is_refusal,
)

SECOND_OWNER = "UOWNER02"
PROJECT_OWNER = "UPOWNER1"
TARGET = "UTARGET1"


@pytest.fixture
async def kb(db_url: str, slack: SlackWithOutages, session: aiohttp.ClientSession) -> AsyncIterator[Instance]:
    """keybot on ``db_url`` with an org owned by OWNER and a project ``web``."""
    await bootstrap(db_url)
    async with in_process_keybot(url=db_url, slack=slack, session=session) as instance:
        assert KEY_RE.search((await instance.cmd(OWNER, "project create web")).text)
        yield instance


async def ok(pending: Awaitable[Reply]) -> Reply:
    reply = await pending
    assert_private_and_clean(reply)
    assert not is_refusal(reply), reply.text
    return reply


async def test_fifty_concurrent_creates_of_one_key_name_make_one_key_and_49_already_exists_replies(
    kb: Instance, db_url: str
) -> None:
    await ok(kb.cmd(OWNER, f"grant <@{PROJECT_OWNER}> owner web"))  # an owner to tell, besides the creator
    replies = await asyncio.gather(
        *(kb.cmd(OWNER, f"create web {'Deploy' if n % 2 else 'deploy'}") for n in range(50))
    )
    for reply in replies:
        assert_private_and_clean(reply)
    created = [reply for reply in replies if KEY_RE.search(reply.text)]
    refused = [reply for reply in replies if is_refusal(reply)]
    assert len(created) == 1
    assert len(refused) == 49
    assert all("already exists" in reply.text for reply in refused), {r.text for r in refused}
    state = await db_state(db_url)
    assert sorted(k.name.lower() for k in state.keys) == ["default", "deploy"]
    assert incomplete_keys(state, owners=[OWNER, PROJECT_OWNER], skip=["default"]) == []
    (deploy,) = (k for k in state.keys if k.name.lower() == "deploy")
    assert [row.user_id for row in state.outbox if deploy.masked in row.text] == [PROJECT_OWNER]


async def test_concurrent_confirm_clicks_on_one_deletion_delete_the_key_once_and_dm_each_owner_once(
    kb: Instance, db_url: str, slack: SlackWithOutages
) -> None:
    await ok(kb.cmd(OWNER, f"grant <@{PROJECT_OWNER}> owner web"))
    await ok(kb.cmd(OWNER, f"grant <@{SECOND_OWNER}> owner"))
    await ok(kb.cmd(OWNER, "create web deploy"))
    button = (await ok(kb.cmd(OWNER, "delete web deploy"))).button(ActionId.DELETE_CONFIRM)

    clicks = await asyncio.gather(*(kb.driver.click(OWNER, button) for _ in range(20)))

    for click in clicks:
        assert_private_and_clean(click)
    deleted = [click for click in clicks if "Deleted key `deploy`" in click.text]
    assert len(deleted) == 1
    losers = [click for click in clicks if click is not deleted[0]]
    assert all(is_refusal(c) and "Nothing changed" in c.text for c in losers), {c.text for c in losers}
    state = await db_state(db_url)
    assert state.key_names() == {"default"}
    assert [a.action for a in state.audit].count("key deleted") == 1
    # every owner but the one who deleted it (who saw the reply) is told, once
    assert sorted(row.user_id for row in state.outbox if DELETED_DM in row.text) == sorted(
        [PROJECT_OWNER, SECOND_OWNER]
    )
    await kb.outbox_drained()
    sent = slack.delivered_notices()
    assert sorted(user for (user, text), n in sent.items() for _ in range(n) if DELETED_DM in text) == sorted(
        [PROJECT_OWNER, SECOND_OWNER]
    )


async def test_two_org_owners_revoking_each_other_at_the_same_moment_leave_the_org_an_owner(
    kb: Instance, db_url: str
) -> None:
    remaining, other = OWNER, SECOND_OWNER
    for _ in range(5):
        await ok(kb.cmd(remaining, f"grant <@{other}> owner"))
        assert (await db_state(db_url)).org_owners() == {OWNER, SECOND_OWNER}

        first, second = await asyncio.gather(
            kb.cmd(remaining, f"revoke <@{other}>"), kb.cmd(other, f"revoke <@{remaining}>")
        )

        assert_private_and_clean(first)
        assert_private_and_clean(second)
        assert [is_refusal(first), is_refusal(second)].count(False) == 1, (first.text, second.text)
        owners = (await db_state(db_url)).org_owners()
        assert len(owners) == 1
        (remaining,) = owners
        other = SECOND_OWNER if remaining == OWNER else OWNER
    state = await db_state(db_url)
    assert [a.action for a in state.audit if a.target_user in (OWNER, SECOND_OWNER)].count(
        "role revoked"
    ) == 5


@pytest.mark.parametrize("where", ["organization", "project"])
async def test_concurrent_grants_and_revokes_of_one_user_settle_to_what_the_audit_trail_says(
    kb: Instance, db_url: str, where: str
) -> None:
    in_project = where == "project"
    grant = f"grant <@{TARGET}> read-only web" if in_project else f"grant <@{TARGET}> member"
    revoke = f"revoke <@{TARGET}> web" if in_project else f"revoke <@{TARGET}>"
    changes = 0
    for _ in range(6):
        replies = await asyncio.gather(
            *(kb.cmd(OWNER, text) for text in (grant, revoke, revoke, grant, grant, revoke))
        )

        for reply in replies:
            assert_private_and_clean(reply)
            assert not is_refusal(reply) or "has no" in reply.text, reply.text
        # a grant of the role already held changes nothing: no audit row, no DM
        changes += sum(not is_refusal(reply) and "is already" not in reply.text for reply in replies)
        state = await db_state(db_url)
        trail = [
            a for a in state.audit if a.target_user == TARGET and (a.project_id is not None) == in_project
        ]
        roles = (
            [r.role for r in state.project_roles if r.user_id == TARGET and r.project == "web"]
            if in_project
            else [r.role for r in state.org_roles if r.user_id == TARGET]
        )
        assert len(trail) == changes
        assert bool(roles) == (trail[-1].action == "role granted"), (roles, [a.action for a in trail])
        if roles:
            assert roles == [trail[-1].role]
        assert len([row for row in state.outbox if row.user_id == TARGET]) == changes


class GatedHasher(Hasher):
    """argon2 that waits, inside ``verify``, until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__(HashParams.cheapest())
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def verify(self, digest: str, plaintext: str) -> bool:
        self.entered.set()
        await self.gate.wait()
        return await super().verify(digest, plaintext)


async def test_a_verification_in_flight_while_its_key_is_deleted_does_not_revive_it_on_this_instance(
    db_url: str,
) -> None:
    await bootstrap(db_url)
    store = await open_store(db_url)
    try:
        hasher = GatedHasher()
        verifier = Verifier(store, hasher=hasher, key_format=KeyFormat(), clock=utcnow)
        keybot = build_services(
            Context(uow=store, clock=utcnow, on_key_revoked=verifier.forget),
            listing=store,
            hasher=Hasher(HashParams.cheapest()),
            key_format=KeyFormat(),
        )
        actor = Actor(team_id=TEAM, user_id=OWNER)
        created = await keybot.projects.create(actor, name="web")
        in_flight = asyncio.create_task(verifier.verify(created.plaintext))
        await hasher.entered.wait()  # the key row was read; argon2 is running

        pending = await keybot.keys.request_delete(actor, project="web", name="default")
        await keybot.keys.confirm_delete(actor, token=pending.token)
        hasher.gate.set()
        await in_flight  # it began before the delete: either answer is fair

        assert (await verifier.verify(created.plaintext)).valid is False
        await verifier.aclose()
    finally:
        await store.close()

"""Every authorised change locks its org before it reads anyone's role (bot/ports.py ``lock_team``):
exclusively to change roles, shared to change keys. Read before the lock, a role is stale by the time
the change commits (tests/faults/test_authority_races.py shows it over the wire on PostgreSQL)."""

from collections.abc import Awaitable, Callable

import pytest

from bot.domain.model import Actor
from bot.services import Keybot
from tests.fakes import MemoryStore

TEAM = "T0001"
OWNER = Actor(TEAM, "U0OWNER")
P_OWNER = Actor(TEAM, "U1POWNER")
TARGET = "U2TARGET"
ROLE_READS = ("scope", "org_role", "project_role", "roles_of", "project_owners", "count_org_owners")


@pytest.fixture
async def keybot_with_org(keybot: Keybot) -> Keybot:
    """Org owned by OWNER; project ``web`` owned by P_OWNER too; TARGET a member and read-only in web;
    key ``deploy`` in web."""
    await keybot.operators.bootstrap(team_id=TEAM, owner=OWNER.user_id, org_name="Acme")
    await keybot.projects.create(OWNER, name="web")
    await keybot.people.grant(OWNER, user_id=P_OWNER.user_id, role="owner", project="web")
    await keybot.people.grant(OWNER, user_id=TARGET, role="member")
    await keybot.people.grant(OWNER, user_id=TARGET, role="read-only", project="web")
    await keybot.keys.create(OWNER, project="web", name="deploy")
    return keybot


async def _confirm_delete(keybot: Keybot) -> object:
    pending = await keybot.keys.request_delete(P_OWNER, project="web", name="deploy")
    return await keybot.keys.confirm_delete(P_OWNER, token=pending.token)


CHANGES: dict[str, tuple[str, Callable[[Keybot], Awaitable[object]]]] = {
    "org grant": ("lock_team", lambda k: k.people.grant(OWNER, user_id=TARGET, role="owner")),
    "project grant": ("lock_team", lambda k: k.people.grant(P_OWNER, user_id=TARGET, role="admin", project="web")),
    "org revoke": ("lock_team", lambda k: k.people.revoke(OWNER, user_id=TARGET)),
    "project revoke": ("lock_team", lambda k: k.people.revoke(P_OWNER, user_id=TARGET, project="web")),
    "key creation": ("lock_team shared", lambda k: k.keys.create(P_OWNER, project="web", name="ci")),
    "delete confirmation": ("lock_team shared", _confirm_delete),
}


@pytest.mark.parametrize("change", list(CHANGES))
async def test_every_authorised_change_locks_its_org_before_it_reads_anyones_role(
    keybot_with_org: Keybot, store: MemoryStore, change: str
) -> None:
    lock, run = CHANGES[change]
    store.call_order.clear()

    await run(keybot_with_org)

    last_write = len(store.call_order) - 1 - store.call_order[::-1].index("transaction")
    in_transaction = store.call_order[last_write + 1 :]
    assert in_transaction[0] == lock, in_transaction
    assert not any(c.startswith("lock_team") for c in in_transaction[1:]), in_transaction
    assert any(c in ROLE_READS for c in in_transaction), in_transaction

"""What offboarding reads and changes (bot/services/offboarding.py), on SQLite and PostgreSQL: the keys a
user created in an org, and voiding the delete confirmations a user was given."""

import dataclasses
from datetime import timedelta

from bot.domain.model import PendingDeletion
from storage import SqlStore
from tests.storage.helpers import OWNER, T0, TEAM, World, new_key

LEAVER = "U0LEAVER"


async def test_keys_created_by_a_user_are_listed_by_project_then_name_and_only_theirs(
    store: SqlStore, world: World
) -> None:
    async with store.transaction() as tx:
        api = await tx.add_project(org_id=world.org.id, name="Api", created_by=OWNER, at=T0)
        other_org = await tx.ensure_org(team_id="T0OTHER", name="Other", at=T0)
        elsewhere = await tx.add_project(org_id=other_org.id, name="Api", created_by=OWNER, at=T0)
        for project_id, name, n in ((world.project.id, "zeta", 1), (api.id, "beta", 2), (world.project.id, "Alpha", 3)):
            await tx.add_key(dataclasses.replace(new_key(project_id, name, n=n), created_by=LEAVER))
        await tx.add_key(new_key(world.project.id, "mine", n=4))
        await tx.add_key(dataclasses.replace(new_key(elsewhere.id, "far", n=5), created_by=LEAVER))
    async with store.read() as tx:
        found = await tx.keys_created_by(org_id=world.org.id, user_id=LEAVER)
    assert [(project.name, key.name) for project, key in found] == [("Api", "beta"), ("Web", "Alpha"), ("Web", "zeta")]
    assert all(key.created_by == LEAVER for _, key in found)


async def test_voiding_a_users_confirmations_marks_only_their_unused_ones_in_that_workspace(
    store: SqlStore, world: World
) -> None:
    def pending(token: str, user_id: str, team_id: str = TEAM) -> PendingDeletion:
        return PendingDeletion(
            token=token, key_row_id=1, project_id=world.project.id, user_id=user_id, team_id=team_id,
            expires_at=T0 + timedelta(minutes=10), used_at=None,
        )

    async with store.transaction() as tx:
        for each in (pending("t1", LEAVER), pending("t2", LEAVER), pending("t3", OWNER), pending("t4", LEAVER, "T0OTHER")):
            await tx.add_pending(each)
        assert await tx.use_pending("t2", at=T0)
    async with store.transaction() as tx:
        assert await tx.void_pending_deletions(team_id=TEAM, user_id=LEAVER, at=T0 + timedelta(minutes=1)) == 1
    async with store.read() as tx:
        used = {token: (await tx.pending(token)) for token in ("t1", "t2", "t3", "t4")}
    assert used["t1"] is not None and used["t1"].used_at == T0 + timedelta(minutes=1)
    assert used["t2"] is not None and used["t2"].used_at == T0
    assert used["t3"] is not None and used["t3"].used_at is None
    assert used["t4"] is not None and used["t4"].used_at is None

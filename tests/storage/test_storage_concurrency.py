"""Races between transactions: each must have exactly one winner, on SQLite and PostgreSQL."""

import asyncio
from dataclasses import replace
from datetime import timedelta

from bot.domain.errors import Conflict
from bot.domain.model import PendingDeletion
from bot.domain.roles import OrgRole
from storage import SqlStore
from tests.storage.helpers import OWNER, T0, TEAM, World, new_key


async def test_fifty_concurrent_adds_of_one_key_name_leave_one_row_and_49_conflicts(
    store: SqlStore, world: World
) -> None:
    async def add(n: int) -> str:
        try:
            async with store.transaction() as tx:
                await tx.add_key(new_key(world.project.id, "Deploy" if n % 2 else "deploy", n=n))
        except Conflict:
            return "conflict"
        return "added"

    outcomes = await asyncio.gather(*(add(n) for n in range(50)))
    assert sorted(outcomes).count("added") == 1
    assert outcomes.count("conflict") == 49
    page = (await store.key_listing(
        team_id=TEAM, user_id=OWNER, project_name="Web", before_id=None, after_id=None, limit=99
    )).keys
    assert len(page) == 1


async def test_concurrent_read_then_write_transactions_all_commit(store: SqlStore, world: World) -> None:
    async def read_then_write(n: int) -> None:
        async with store.transaction() as tx:
            if await tx.key_named(project_id=world.project.id, name=f"k{n}") is None:
                await tx.add_key(new_key(world.project.id, f"k{n}", n=n))

    await asyncio.gather(*(read_then_write(n) for n in range(30)))
    page = (await store.key_listing(
        team_id=TEAM, user_id=OWNER, project_name="Web", before_id=None, after_id=None, limit=99
    )).keys
    assert len(page) == 30


async def test_a_pending_deletion_is_used_once_by_twenty_concurrent_callers(
    store: SqlStore, world: World
) -> None:
    async with store.transaction() as tx:
        key = await tx.add_key(new_key(world.project.id, "deploy"))
        pending = PendingDeletion(
            token="tok-1",
            key_row_id=key.id,
            project_id=world.project.id,
            user_id=OWNER,
            team_id=TEAM,
            expires_at=T0 + timedelta(minutes=10),
            used_at=None,
        )
        await tx.add_pending(pending)

    async def click(n: int) -> bool:
        async with store.transaction() as tx:
            return await tx.use_pending("tok-1", at=T0 + timedelta(seconds=n))

    wins = await asyncio.gather(*(click(n) for n in range(20)))
    assert wins.count(True) == 1
    async with store.read() as tx:
        stored = await tx.pending("tok-1")
        assert await tx.pending("tok-unknown") is None
    assert stored == replace(pending, used_at=T0 + timedelta(seconds=wins.index(True)))


async def test_two_owners_revoking_each_other_concurrently_leave_an_owner(
    store: SqlStore, world: World
) -> None:
    other = "U0SECOND"
    async with store.transaction() as tx:
        await tx.set_org_role(org_id=world.org.id, user_id=other, role=OrgRole.OWNER)

    async def revoke(target: str) -> bool:
        async with store.transaction() as tx:
            await tx.lock_org(world.org.id)
            if await tx.count_org_owners(world.org.id) <= 1:
                return False
            await asyncio.sleep(0.05)  # widen the race window
            return await tx.delete_org_role(org_id=world.org.id, user_id=target)

    results = await asyncio.gather(revoke(other), revoke(OWNER))
    assert sorted(results) == [False, True]
    async with store.read() as tx:
        assert await tx.count_org_owners(world.org.id) == 1

"""Keys: names, deletion, the verify path and transaction boundaries, on SQLite and PostgreSQL.

Paging through ``key_listing`` is in test_storage_listing.py."""

import asyncio
from datetime import timedelta

import pytest

from bot.domain.errors import Conflict
from bot.domain.model import KeyRecord, VerifyRecord
from storage import SqlStore
from tests.storage.helpers import OWNER, T0, TEAM, World, add_keys, new_key, notice


async def _key_names(store: SqlStore, project_name: str = "Web") -> list[str]:
    """Every key of the project, newest first, as ``/apikeys list`` reads them."""
    keys = (await store.key_listing(
        team_id=TEAM, user_id=OWNER, project_name=project_name, before_id=None, after_id=None, limit=99
    )).keys
    return [k.name for k in keys]


async def test_added_key_reads_back_by_name_and_row_id(store: SqlStore, world: World) -> None:
    record = new_key(world.project.id, "Deploy")
    async with store.transaction() as tx:
        added = await tx.add_key(record)
    expected = KeyRecord(
        id=added.id,
        project_id=world.project.id,
        key_id=record.key_id,
        name="Deploy",
        masked=record.masked,
        created_by=OWNER,
        created_at=T0,
        last_used_at=None,
    )
    async with store.read() as tx:
        assert added == expected
        assert await tx.key_named(project_id=world.project.id, name="deploy") == expected
        assert await tx.key_by_row_id(added.id) == expected
        assert await tx.key_named(project_id=world.project.id, name="other") is None
        assert await tx.key_by_row_id(added.id + 1) is None


async def test_duplicate_key_name_differing_in_case_is_a_conflict(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        await tx.add_key(new_key(world.project.id, "deploy"))
    with pytest.raises(Conflict, match="DEPLOY"):
        async with store.transaction() as tx:
            await tx.add_key(new_key(world.project.id, "DEPLOY"))


async def test_the_same_key_name_in_two_projects_is_fine(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        other = await tx.add_project(org_id=world.org.id, name="Api", created_by=OWNER, at=T0)
        web_key = await tx.add_key(new_key(world.project.id, "deploy"))
        api_key = await tx.add_key(new_key(other.id, "deploy"))
    assert web_key.id != api_key.id
    assert await _key_names(store, "Web") == await _key_names(store, "Api") == ["deploy"]


async def test_a_conflict_leaves_the_transaction_usable(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        await tx.add_key(new_key(world.project.id, "deploy"))
        with pytest.raises(Conflict):
            await tx.add_key(new_key(world.project.id, "Deploy"))
        with pytest.raises(Conflict):
            await tx.add_project(org_id=world.org.id, name="web", created_by=OWNER, at=T0)
        await tx.add_key(new_key(world.project.id, "ci"))
    assert await _key_names(store) == ["ci", "deploy"]


async def test_delete_key_removes_it_and_frees_its_name(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        key = await tx.add_key(new_key(world.project.id, "deploy"))
    async with store.transaction() as tx:
        assert await tx.delete_key(key.id)
        assert not await tx.delete_key(key.id)
    assert await store.verify_record(key.key_id) is None
    assert await store.key_state(key.id, key_id=key.key_id) is None
    async with store.transaction() as tx:
        assert await tx.key_named(project_id=world.project.id, name="deploy") is None
        again = await tx.add_key(new_key(world.project.id, "Deploy"))
    assert again.id > key.id


async def test_row_ids_of_deleted_keys_are_never_reused(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        newest = (await add_keys(tx, world.project.id, 3))[-1]
        await tx.delete_key(newest)
    async with store.transaction() as tx:
        assert (await tx.add_key(new_key(world.project.id, "next"))).id > newest


async def test_verify_record_joins_the_key_with_its_project_and_org(store: SqlStore, world: World) -> None:
    record = new_key(world.project.id, "deploy")
    async with store.transaction() as tx:
        key = await tx.add_key(record)
    assert await store.verify_record(record.key_id) == VerifyRecord(
        id=key.id,
        key_id=record.key_id,
        name="deploy",
        secret_hash=record.secret_hash,
        project="Web",
        org="Acme",
        last_used_at=None,
    )
    assert await store.verify_record("Kunknown") is None
    assert await store.key_state(key.id, key_id=record.key_id) is not None


async def test_touch_key_records_the_last_use_and_never_moves_it_back(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        key = await tx.add_key(new_key(world.project.id, "deploy"))
    later = T0 + timedelta(minutes=5, microseconds=7)
    await store.touch_key(key.id, at=later)
    await store.touch_key(key.id, at=later - timedelta(microseconds=1))
    await store.touch_key(key.id + 1, at=later)
    record = await store.verify_record(key.key_id)
    assert record is not None and record.last_used_at == later
    assert record.last_used_at.tzinfo is not None
    async with store.read() as tx:
        stored = await tx.key_by_row_id(key.id)
    assert stored is not None and stored.last_used_at == later


async def test_rollback_on_exception_leaves_nothing(store: SqlStore, world: World) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with store.transaction() as tx:
            await tx.add_project(org_id=world.org.id, name="Api", created_by=OWNER, at=T0)
            await tx.add_key(new_key(world.project.id, "deploy"))
            await tx.notify(notice(1))
            raise RuntimeError("boom")
    async with store.read() as tx:
        scope = await tx.scope(team_id=TEAM, user_id=OWNER, project_name="Api")
        assert scope is not None and scope.project is None
        assert await tx.key_named(project_id=world.project.id, name="deploy") is None
    assert await store.pending_notifications() == 0


async def test_an_open_read_transaction_does_not_block_a_writer(store: SqlStore, world: World) -> None:
    async def write() -> None:
        async with store.transaction() as tx:
            await tx.add_key(new_key(world.project.id, "deploy"))

    async with store.read() as reader:
        assert await reader.key_named(project_id=world.project.id, name="deploy") is None
        await asyncio.wait_for(write(), timeout=10)
    async with store.read() as tx:
        assert await tx.key_named(project_id=world.project.id, name="deploy") is not None

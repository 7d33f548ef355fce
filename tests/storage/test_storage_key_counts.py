"""``store.key_counts``: how many keys a project has and how many are newer than a row, on SQLite and
PostgreSQL (list pages say "21–40 of 57" from it)."""

from storage import SqlStore
from tests.storage.helpers import OWNER, T0, World, add_keys


async def test_key_counts_count_the_projects_keys_and_those_newer_than_a_row(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        ids = await add_keys(tx, world.project.id, 7)
        other = await tx.add_project(org_id=world.org.id, name="Api", created_by=OWNER, at=T0)
        await add_keys(tx, other.id, 3)
    ids = sorted(ids)
    assert await store.key_counts(project_id=world.project.id, above=None) == (7, 0)
    assert await store.key_counts(project_id=world.project.id, above=ids[2]) == (7, 4)
    assert await store.key_counts(project_id=world.project.id, above=ids[-1]) == (7, 0)
    assert await store.key_counts(project_id=world.project.id, above=0) == (7, 7)
    assert await store.key_counts(project_id=other.id, above=None) == (3, 0)


async def test_key_counts_of_a_project_without_keys_are_zero(store: SqlStore, world: World) -> None:
    assert await store.key_counts(project_id=world.project.id, above=None) == (0, 0)

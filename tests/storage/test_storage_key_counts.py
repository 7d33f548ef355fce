"""The counts of ``store.key_listing``: how many keys a project has (kept on the project row by
triggers, migration 0008) and how many are newer than the page, read in the same statement as the page,
on SQLite and PostgreSQL (list pages say "21–40 of 57" from them)."""

from dataclasses import asdict
from typing import Any

from sqlalchemy import delete, func, select

from bot.domain.model import NewKeyRecord
from bot.ports import KeyListingPage
from storage import SqlStore
from storage.tables import api_keys, orgs, projects
from tests.storage.helpers import OWNER, T0, TEAM, World, add_keys, new_key


def vars_of(key: NewKeyRecord) -> dict[str, Any]:
    """A key's row as a bulk load would insert it."""
    return {**asdict(key), "name_lower": key.name.lower()}


async def _page(
    store: SqlStore, *, project: str = "Web", before: int | None = None, after: int | None = None, limit: int = 3
) -> KeyListingPage:
    return await store.key_listing(
        team_id=TEAM, user_id=OWNER, project_name=project, before_id=before, after_id=after, limit=limit
    )


async def test_a_page_counts_the_projects_keys_and_those_newer_than_it(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        ids = sorted(await add_keys(tx, world.project.id, 7))
        other = await tx.add_project(org_id=world.org.id, name="Api", created_by=OWNER, at=T0)
        await add_keys(tx, other.id, 3)
    newest = await _page(store)
    assert ([k.id for k in newest.keys], newest.total, newest.newer) == (ids[:-4:-1], 7, 0)
    older = await _page(store, before=ids[4])  # ids 3, 2, 1 (0-based); 4, 5, 6 are newer
    assert ([k.id for k in older.keys], older.total, older.newer) == ([ids[3], ids[2], ids[1]], 7, 3)
    newer = await _page(store, after=ids[1])  # ids 4, 3, 2; 5 and 6 are newer
    assert ([k.id for k in newer.keys], newer.total, newer.newer) == ([ids[4], ids[3], ids[2]], 7, 2)
    top = await _page(store, after=ids[3])  # ids 6, 5, 4: nothing newer
    assert ([k.id for k in top.keys], top.newer) == ([ids[6], ids[5], ids[4]], 0)
    assert (await _page(store, project="Api")).total == 3


async def test_an_empty_page_counts_what_is_newer_than_its_cursor(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        ids = sorted(await add_keys(tx, world.project.id, 4))
    below_all = await _page(store, before=ids[0])
    assert (below_all.keys, below_all.total, below_all.newer) == ([], 4, 4)
    above_all = await _page(store, after=ids[-1])
    assert (above_all.keys, above_all.total, above_all.newer) == ([], 4, 0)


async def test_the_counts_of_a_project_without_keys_are_zero(store: SqlStore, world: World) -> None:
    page = await _page(store)
    assert (page.scope is not None, page.keys, page.total, page.newer) == (True, [], 0, 0)
    missing = await _page(store, project="nope")
    assert (missing.scope is not None and missing.scope.project, missing.total, missing.newer) == (None, 0, 0)


async def _kept_and_real_counts(store: SqlStore) -> list[tuple[str, int, int]]:
    """Each project's ``key_count`` (kept by triggers) beside its keys counted now."""
    real = select(func.count()).where(api_keys.c.project_id == projects.c.id).scalar_subquery()
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(projects.c.name, projects.c.key_count, real).order_by(projects.c.name))
    return [(name, kept, counted) for name, kept, counted in rows]


async def test_the_kept_count_follows_every_way_keys_come_and_go(store: SqlStore, world: World) -> None:
    """Keys added one by one and in bulk (one multi-row INSERT, as a load would), deleted one by one and
    in bulk, and gone with their org (a cascade): the count on the project row stays the count."""
    async with store.transaction() as tx:
        ids = await add_keys(tx, world.project.id, 3)
        other = await tx.add_project(org_id=world.org.id, name="Api", created_by=OWNER, at=T0)
        await tx.delete_key(ids[0])
    bulk = [vars_of(new_key(project_id, f"bulk-{n}", n=n)) for n in range(5) for project_id in (world.project.id, other.id)]
    async with store.engine.begin() as conn:
        await conn.execute(api_keys.insert(), bulk)
    assert await _kept_and_real_counts(store) == [("Api", 5, 5), ("Web", 7, 7)]
    page = await _page(store, project="Api")
    assert (page.total, len(page.keys)) == (5, 3)

    async with store.engine.begin() as conn:
        await conn.execute(delete(api_keys).where(api_keys.c.name.like("bulk-%"), api_keys.c.project_id == other.id))
    assert await _kept_and_real_counts(store) == [("Api", 0, 0), ("Web", 7, 7)]
    async with store.engine.begin() as conn:
        await conn.execute(delete(orgs).where(orgs.c.id == world.org.id))
    assert await _kept_and_real_counts(store) == []

"""The counts of ``store.key_listing``: how many keys a project has and how many are newer than the
page, read in the same statement as the page, on SQLite and PostgreSQL (list pages say "21–40 of 57"
from them)."""

from bot.ports import KeyListingPage
from storage import SqlStore
from tests.storage.helpers import OWNER, T0, TEAM, World, add_keys


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

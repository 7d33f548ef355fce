"""``store.key_listing`` (``/apikeys list``): the scope and one page of keys, on SQLite and PostgreSQL.

Pages are newest first; ``before_id`` gives the rows older than a cursor, ``after_id`` the rows
newer than it (still newest first), at most ``limit`` of them.
"""

from datetime import UTC
from pathlib import Path

import pytest

from bot.domain.model import KeyRecord, Scope
from bot.domain.roles import OrgRole, ProjectRole
from storage import SqlStore, make_engine, upgrade
from storage.fastpath import SqliteReader
from tests.storage.helpers import OWNER, T0, TEAM, World, add_keys, new_key

PAGE = 20


async def _listing(
    store: SqlStore,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = PAGE,
    project: str = "Web",
    user: str = OWNER,
    team: str = TEAM,
) -> tuple[Scope | None, list[KeyRecord]]:
    page = await store.key_listing(
        team_id=team, user_id=user, project_name=project, before_id=before, after_id=after, limit=limit
    )
    return page.scope, page.keys


async def _ids(store: SqlStore, *, before: int | None = None, after: int | None = None) -> list[int]:
    _scope, keys = await _listing(store, before=before, after=after)
    return [k.id for k in keys]


async def _newest_first(store: SqlStore, world: World, count: int) -> list[int]:
    """Add ``count`` keys to Web (and 3 to another project, which no page may show)."""
    async with store.transaction() as tx:
        ids = await add_keys(tx, world.project.id, count)
        other = await tx.add_project(org_id=world.org.id, name="Api", created_by=OWNER, at=T0)
        await add_keys(tx, other.id, 3)
    return ids[::-1]


async def test_a_listing_walks_45_keys_newest_first_in_both_directions(store: SqlStore, world: World) -> None:
    newest_first = await _newest_first(store, world, 45)
    first = await _ids(store)
    second = await _ids(store, before=first[-1])
    third = await _ids(store, before=second[-1])
    assert (first, second, third) == (newest_first[:20], newest_first[20:40], newest_first[40:])
    assert await _ids(store, before=third[-1]) == []
    assert await _ids(store, after=third[0]) == second
    assert await _ids(store, after=second[0]) == first
    assert await _ids(store, after=first[0]) == []
    assert await _ids(store, after=newest_first[25]) == newest_first[5:25]


async def test_a_listing_of_exactly_two_pages_ends_with_an_empty_page(store: SqlStore, world: World) -> None:
    newest_first = await _newest_first(store, world, 2 * PAGE)
    first = await _ids(store)
    second = await _ids(store, before=first[-1])
    assert (first, second) == (newest_first[:PAGE], newest_first[PAGE:])
    assert await _ids(store, before=second[-1]) == []
    # exactly PAGE rows newer than the cursor: all of them, none dropped at the boundary
    assert await _ids(store, after=second[0]) == first
    assert await _ids(store, after=newest_first[PAGE - 1]) == newest_first[: PAGE - 1]
    assert await _ids(store, before=newest_first[PAGE - 1]) == newest_first[PAGE:]


@pytest.mark.parametrize("limit", [1, 7, 45, 46, 100])
async def test_a_listing_never_returns_more_than_the_limit(store: SqlStore, world: World, limit: int) -> None:
    newest_first = await _newest_first(store, world, 45)
    _scope, keys = await _listing(store, limit=limit)
    assert [k.id for k in keys] == newest_first[:limit]
    _scope, older = await _listing(store, before=newest_first[10], limit=limit)
    assert [k.id for k in older] == newest_first[11 : 11 + limit]
    _scope, newer = await _listing(store, after=newest_first[10], limit=limit)
    assert [k.id for k in newer] == newest_first[max(0, 10 - limit) : 10]


async def test_a_listing_carries_the_scope_and_whole_key_records(store: SqlStore, world: World) -> None:
    record = new_key(world.project.id, "Deploy")
    async with store.transaction() as tx:
        key = await tx.add_key(record)
    scope, keys = await _listing(store, project="wEB")
    assert scope == Scope(org=world.org, org_role=OrgRole.OWNER, project=world.project, project_role=None)
    assert keys == [
        KeyRecord(
            id=key.id,
            project_id=world.project.id,
            key_id=record.key_id,
            name="Deploy",
            masked=record.masked,
            created_by=OWNER,
            created_at=T0,
            last_used_at=None,
        )
    ]
    assert keys[0].created_at.tzinfo is UTC  # decoded by storage.fastpath on both backends


async def test_a_listing_leaves_authorization_to_the_caller(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        key = await tx.add_key(new_key(world.project.id, "deploy"))
        await tx.set_project_role(project_id=world.project.id, user_id="U0READER", role=ProjectRole.READ_ONLY)
    stranger, stranger_keys = await _listing(store, user="U0STRANGER")
    reader, reader_keys = await _listing(store, user="U0READER")
    assert stranger == Scope(org=world.org, org_role=None, project=world.project, project_role=None)
    assert reader == Scope(
        org=world.org, org_role=None, project=world.project, project_role=ProjectRole.READ_ONLY
    )
    assert [k.id for k in stranger_keys] == [k.id for k in reader_keys] == [key.id]


async def test_a_listing_of_an_unknown_project_or_team_has_no_keys(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        await tx.add_key(new_key(world.project.id, "deploy"))
    assert await _listing(store, project="nope") == (Scope(org=world.org, org_role=OrgRole.OWNER), [])
    assert await _listing(store, team="T0OTHER") == (None, [])


async def test_a_listing_of_an_empty_project_is_empty(store: SqlStore, world: World) -> None:
    scope, keys = await _listing(store)
    assert scope is not None and scope.project == world.project
    assert keys == []


async def test_a_listing_sees_keys_committed_and_deleted_since_the_last_one(
    store: SqlStore, world: World
) -> None:
    assert await _ids(store) == []
    async with store.transaction() as tx:
        first, second = await add_keys(tx, world.project.id, 2)
    assert await _ids(store) == [second, first]
    async with store.transaction() as tx:
        await tx.delete_key(second)
    assert await _ids(store) == [first]


async def test_a_busy_sqlite_reader_falls_back_to_the_driver_with_the_same_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'keybot.db'}")
    await upgrade(engine)
    store = SqlStore(engine)
    try:
        async with store.transaction() as tx:
            org = await tx.ensure_org(team_id=TEAM, name="Acme", at=T0)
            project = await tx.add_project(org_id=org.id, name="Web", created_by=OWNER, at=T0)
            newest_first = (await add_keys(tx, project.id, 25))[::-1]
        synchronous = [await _ids(store), await _ids(store, before=newest_first[19])]
        calls: list[str] = []

        def busy(_self: SqliteReader, stmt: object, params: object) -> None:
            calls.append("busy")
            return None  # what fetch says when SQLite is busy

        monkeypatch.setattr(SqliteReader, "fetch", busy)
        monkeypatch.setattr(SqliteReader, "version", lambda _self: None)  # busy too: no kept pages
        on_the_driver = [await _ids(store), await _ids(store, before=newest_first[19])]
        assert await _ids(store, after=newest_first[20]) == newest_first[:20]
    finally:
        await store.close()
    assert synchronous == on_the_driver == [newest_first[:20], newest_first[20:]]
    assert len(calls) == 3  # three listings, each one statement, each sent to the driver

"""Pages of keys kept on SQLite until anything commits (``UnchangedReads`` keyed by
``SqliteReader.version``, SQLite's ``PRAGMA data_version``): a page nothing changed is served again
without its statement, and no page is served after a commit, whoever made it: this store, another
connection, or another process (``keybot`` run by an operator)."""

import asyncio
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.domain.roles import OrgRole
from bot.ports import KeyListingPage
from storage import SqlStore, make_engine, upgrade
from storage.fastpath import SqliteReader, UnchangedReads
from tests.storage.helpers import OWNER, T0, TEAM, add_keys, new_key

STRANGER = "U0STRANGER"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "keybot.db"


@pytest.fixture
async def store(path: Path) -> AsyncIterator[SqlStore]:
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    await upgrade(engine)
    store = SqlStore(engine)
    async with store.transaction() as tx:
        org = await tx.ensure_org(team_id=TEAM, name="Acme", at=T0)
        await tx.set_org_role(org_id=org.id, user_id=OWNER, role=OrgRole.OWNER)
        project = await tx.add_project(org_id=org.id, name="Web", created_by=OWNER, at=T0)
        await add_keys(tx, project.id, 3)
    yield store
    await store.close()
    await engine.dispose()


async def _page(store: SqlStore, *, user: str = OWNER, before: int | None = None) -> KeyListingPage:
    page = await store.key_listing(
        team_id=TEAM, user_id=user, project_name="Web", before_id=before, after_id=None, limit=21
    )
    await asyncio.sleep(0)  # the turn of the event loop ends, as it does between two Slack requests
    return page


def _names(page: KeyListingPage) -> list[str]:
    return [key.name for key in page.keys]


async def test_a_page_nothing_changed_is_served_again_with_one_version_check_and_no_page_statement(
    store: SqlStore,
) -> None:
    first = await _page(store)
    before = store.hot_reads

    again = await _page(store)

    assert again is first
    assert store.hot_reads - before == 1  # PRAGMA data_version, not the page's statement


async def test_each_user_and_cursor_has_its_own_page(store: SqlStore) -> None:
    owner = await _page(store)
    stranger = await _page(store, user=STRANGER)
    older = await _page(store, before=owner.keys[0].id)

    assert owner.scope is not None and owner.scope.org_role is OrgRole.OWNER
    assert stranger.scope is not None and stranger.scope.org_role is None
    assert _names(owner) == ["key-2", "key-1", "key-0"] and _names(older) == ["key-1", "key-0"]
    assert (await _page(store)) is owner


async def test_a_commit_through_the_store_shows_in_the_very_next_page(store: SqlStore) -> None:
    page = await _page(store)
    assert page.scope is not None and page.scope.project is not None
    async with store.transaction() as tx:
        await tx.add_key(new_key(page.scope.project.id, "fresh", n=9))
    added = await store.key_listing(
        team_id=TEAM, user_id=OWNER, project_name="Web", before_id=None, after_id=None, limit=21
    )
    async with store.transaction() as tx:
        await tx.delete_org_role(org_id=page.scope.org.id, user_id=OWNER)
    revoked = await store.key_listing(
        team_id=TEAM, user_id=OWNER, project_name="Web", before_id=None, after_id=None, limit=21
    )

    assert _names(added) == ["fresh", "key-2", "key-1", "key-0"] and added.total == 4
    assert revoked.scope is not None and revoked.scope.org_role is None


async def test_a_commit_by_another_connection_shows_in_the_next_turns_page(store: SqlStore, path: Path) -> None:
    await _page(store)
    other = sqlite3.connect(path)
    with other:
        other.execute("UPDATE api_keys SET name = 'renamed', name_lower = 'renamed' WHERE name = 'key-2'")
    other.close()

    assert _names(await _page(store)) == ["renamed", "key-1", "key-0"]


async def test_a_commit_by_another_process_shows_in_the_next_page(store: SqlStore, path: Path) -> None:
    """As ``keybot`` run by an operator against the server's database would make it."""
    await _page(store)
    script = (
        "import sqlite3, sys\n"
        "with sqlite3.connect(sys.argv[1]) as conn:\n"
        "    conn.execute(\"DELETE FROM api_keys WHERE name = 'key-1'\")\n"
    )
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", script, str(path))
    assert await process.wait() == 0

    page = await _page(store)

    assert _names(page) == ["key-2", "key-0"] and page.total == 2


async def test_the_version_is_read_once_per_turn_of_the_event_loop_and_sees_other_connections_commits(
    path: Path, store: SqlStore
) -> None:
    reader = SqliteReader(str(path))
    try:
        first = reader.version()
        other = sqlite3.connect(path)
        with other:
            other.execute("UPDATE api_keys SET note = 'changed'")
        statements = reader.statements
        same_turn = reader.version()
        assert reader.statements == statements  # not read again in this turn
        await asyncio.sleep(0)
        next_turn = reader.version()
        with other:
            other.execute("UPDATE api_keys SET note = 'changed again'")
        other.close()
        await asyncio.sleep(0)
        after_second = reader.version()
    finally:
        reader.close()

    assert first is not None and same_turn == first
    assert next_turn is not None and next_turn != first
    assert after_second is not None and after_second != next_turn
    assert reader.statements == statements + 2


def test_kept_results_go_when_the_version_changes() -> None:
    kept = UnchangedReads(size=4)
    assert kept.get(1, "a") is None
    kept.put(1, "a", "page a")

    assert kept.get(1, "a") == "page a"
    assert kept.get(2, "a") is None  # the database changed: every result goes
    assert kept.get(1, "a") is None and len(kept) == 0


def test_a_result_read_before_a_change_someone_has_seen_is_not_kept() -> None:
    kept = UnchangedReads(size=4)
    kept.get(1, "a")
    kept.get(2, "b")  # another request saw the database change meanwhile

    kept.put(1, "a", "page a as of version 1")

    assert kept.get(2, "a") is None and len(kept) == 0


def test_beyond_its_size_the_oldest_result_goes() -> None:
    kept = UnchangedReads(size=2)
    kept.get(1, "a")
    for key in ("a", "b", "c"):
        kept.put(1, key, f"page {key}")

    assert [kept.get(1, key) for key in ("a", "b", "c")] == [None, "page b", "page c"]
    assert len(kept) == 2


def test_with_a_size_of_0_nothing_is_kept() -> None:
    kept = UnchangedReads(size=0)
    kept.get(1, "a")
    kept.put(1, "a", "page a")

    assert kept.get(1, "a") is None and len(kept) == 0


def test_a_version_read_in_a_loop_that_stopped_before_its_turn_ended_is_not_used_in_another(
    path: Path, store: SqlStore
) -> None:
    reader = SqliteReader(str(path))

    async def version() -> int | None:
        return reader.version()

    try:
        first_loop = asyncio.new_event_loop()
        read: list[int | None] = []
        first_loop.call_soon(lambda: (read.append(reader.version()), first_loop.stop()))
        first_loop.run_forever()  # stops at the end of the turn that read the version, before its end ran
        [first] = read
        with sqlite3.connect(path) as other:
            other.execute("UPDATE api_keys SET note = 'changed'")
        second = asyncio.run(version())
        first_loop.close()
    finally:
        reader.close()

    assert first is not None and second is not None and second != first


async def test_a_reopened_reader_never_repeats_a_version_of_its_old_connection(path: Path, store: SqlStore) -> None:
    """A new connection counts ``data_version`` afresh: the same number from it may stand for another
    state of the database, so a reader's versions carry the connection they were read on."""
    reader = SqliteReader(str(path))
    try:
        before = reader.version()
        reader.close()  # as after an unexpected error
        await asyncio.sleep(0)
        after = reader.version()
    finally:
        reader.close()

    assert before is not None and after is not None and after != before

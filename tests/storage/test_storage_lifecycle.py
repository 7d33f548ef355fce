"""The key lifecycle's rows on SQLite and PostgreSQL: the org policy, expiry, disabling, rolling (the old
secret in ``retired_secrets``), the verifier's reads of them, and migration 0004."""

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.lifecycle import LeakAction, Policy
from bot.domain.model import AuditEvent, KeyRecord, KeyState
from storage import SqlStore, current_revision, downgrade, head_revision, upgrade
from tests.storage.helpers import OWNER, T0, TEAM, World, new_key

LATER = T0 + timedelta(hours=3)


async def _listed(store: SqlStore) -> list[KeyRecord]:
    keys = (await store.key_listing(
        team_id=TEAM, user_id=OWNER, project_name="Web", before_id=None, after_id=None, limit=99
    )).keys
    return keys


async def test_an_org_without_a_policy_reads_the_defaults(store: SqlStore, world: World) -> None:
    async with store.read() as tx:
        assert await tx.org_policy(world.org.id) == Policy()


async def test_a_policy_reads_back_as_it_was_set(store: SqlStore, world: World) -> None:
    policy = Policy(
        max_lifetime=timedelta(days=90),
        default_lifetime=timedelta(hours=36),
        stale_after=timedelta(weeks=3),
        leak_action=LeakAction.ALERT,
    )
    async with store.transaction() as tx:
        await tx.set_org_policy(world.org.id, policy)
    async with store.read() as tx:
        assert await tx.org_policy(world.org.id) == policy
    async with store.transaction() as tx:
        await tx.set_org_policy(world.org.id, Policy())
    async with store.read() as tx:
        assert await tx.org_policy(world.org.id) == Policy()


async def test_a_key_keeps_its_expiry_and_note_from_creation(store: SqlStore, world: World) -> None:
    record = replace(new_key(world.project.id, "deploy"), expires_at=T0 + timedelta(days=30), note="for CI ‹x›")
    async with store.transaction() as tx:
        added = await tx.add_key(record)
    async with store.read() as tx:
        stored = await tx.key_by_row_id(added.id)
    assert stored == added
    assert stored is not None and stored.expires_at == T0 + timedelta(days=30) and stored.note == "for CI ‹x›"
    assert [k.expires_at for k in await _listed(store)] == [T0 + timedelta(days=30)]


async def test_expiry_and_disabling_record_who_changed_the_key_and_when(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        key = await tx.add_key(new_key(world.project.id, "deploy"))
    async with store.transaction() as tx:
        await tx.set_key_expiry(key.id, expires_at=LATER, at=T0 + timedelta(minutes=1), by="U0OTHER")
        await tx.set_key_disabled(key.id, disabled=True, at=T0 + timedelta(minutes=2), by="U0THIRD")
    async with store.read() as tx:
        changed = await tx.key_by_row_id(key.id)
    assert changed is not None
    assert (changed.expires_at, changed.disabled_at) == (LATER, T0 + timedelta(minutes=2))
    assert (changed.changed_at, changed.changed_by) == (T0 + timedelta(minutes=2), "U0THIRD")
    record = await store.verify_record(key.key_id)
    assert record is not None and (record.disabled_at, record.expires_at, record.retiring_at) == (
        T0 + timedelta(minutes=2),
        LATER,
        None,
    )
    assert await store.key_state(key.id, key_id=key.key_id) == KeyState(
        key_id=key.key_id, disabled_at=T0 + timedelta(minutes=2), expires_at=LATER, retiring_at=None
    )

    async with store.transaction() as tx:
        await tx.set_key_disabled(key.id, disabled=False, at=LATER, by=OWNER)
        await tx.set_key_expiry(key.id, expires_at=None, at=LATER, by=OWNER)
    state = await store.key_state(key.id, key_id=key.key_id)
    assert state == KeyState(key_id=key.key_id, disabled_at=None, expires_at=None, retiring_at=None)


async def test_a_rolled_keys_old_secret_is_found_by_its_old_key_id_only_when_no_key_has_it(
    store: SqlStore, world: World
) -> None:
    record = new_key(world.project.id, "deploy")
    async with store.transaction() as tx:
        key = await tx.add_key(record)
        await tx.set_key_expiry(key.id, expires_at=T0 + timedelta(days=9), at=T0, by=OWNER)
    async with store.transaction() as tx:
        await tx.roll_key(
            key.id,
            key_id="Knew0000001",
            masked="kb_Knew0000001_…zzzz",
            secret_hash="$argon2id$new",
            retiring_at=LATER,
            at=T0 + timedelta(minutes=1),
            by="U0ROLLER",
        )
    new = await store.verify_record("Knew0000001")
    old = await store.verify_record(record.key_id)
    assert new is not None and old is not None
    assert (new.id, new.secret_hash, new.retiring_at, new.name) == (key.id, "$argon2id$new", None, "deploy")
    assert (old.id, old.key_id, old.secret_hash, old.retiring_at) == (
        key.id,
        record.key_id,
        record.secret_hash,
        LATER,
    )
    assert (old.project, old.org, old.expires_at) == ("Web", "Acme", T0 + timedelta(days=9))

    assert await store.key_state(key.id, key_id=record.key_id) == KeyState(
        key_id="Knew0000001", disabled_at=None, expires_at=T0 + timedelta(days=9), retiring_at=LATER
    )
    assert await store.key_state(key.id, key_id="Knew0000001") == KeyState(
        key_id="Knew0000001", disabled_at=None, expires_at=T0 + timedelta(days=9), retiring_at=None
    )
    async with store.read() as tx:
        rolled = await tx.key_by_row_id(key.id)
    assert rolled is not None
    assert (rolled.key_id, rolled.masked, rolled.retiring_at) == ("Knew0000001", "kb_Knew0000001_…zzzz", LATER)
    assert (rolled.changed_at, rolled.changed_by) == (T0 + timedelta(minutes=1), "U0ROLLER")
    assert [k.retiring_at for k in await _listed(store)] == [LATER]


async def test_a_key_rolled_twice_lists_its_latest_grace_and_keeps_both_old_secrets(
    store: SqlStore, world: World
) -> None:
    record = new_key(world.project.id, "deploy")
    async with store.transaction() as tx:
        key = await tx.add_key(record)
    for n, retiring in enumerate((T0 + timedelta(hours=1), LATER)):
        async with store.transaction() as tx:
            await tx.roll_key(
                key.id, key_id=f"Kroll{n:06d}", masked=f"kb_Kroll{n:06d}_…zzzz", secret_hash=f"h{n}",
                retiring_at=retiring, at=T0, by=OWNER,
            )
    first, second = await store.verify_record(record.key_id), await store.verify_record("Kroll000000")
    assert first is not None and second is not None
    assert (first.retiring_at, second.retiring_at) == (T0 + timedelta(hours=1), LATER)
    assert [k.retiring_at for k in await _listed(store)] == [LATER]


async def test_deleting_a_rolled_key_deletes_its_old_secrets(store: SqlStore, world: World) -> None:
    record = new_key(world.project.id, "deploy")
    async with store.transaction() as tx:
        key = await tx.add_key(record)
        await tx.roll_key(
            key.id, key_id="Knew0000002", masked="m", secret_hash="h", retiring_at=LATER, at=T0, by=OWNER
        )
    async with store.transaction() as tx:
        assert await tx.delete_key(key.id)
    assert await store.verify_record(record.key_id) is None
    assert await store.verify_record("Knew0000002") is None
    assert await store.key_state(key.id, key_id=record.key_id) is None
    async with store.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM retired_secrets"))).scalar_one() == 0


async def test_an_audit_event_keeps_its_detail(store: SqlStore, world: World) -> None:
    event = AuditEvent(
        org_id=world.org.id, project_id=world.project.id, actor=OWNER, action="expiry changed", at=T0,
        key_name="deploy", key_masked="kb_x_…a81Z", detail="2027-03-01T23:59:59+00:00",
    )
    async with store.transaction() as tx:
        await tx.add_audit(event)
    async with store.read() as tx:
        [stored] = await tx.audit_page(project_id=world.project.id, before_id=None, limit=5)
    assert stored == replace(event, id=stored.id)


def _columns(conn: object, table: str) -> set[str]:
    return {c["name"] for c in inspect(conn).get_columns(table)}  # type: ignore[call-overload]


async def test_migration_0004_adds_the_lifecycle_and_its_downgrade_keeps_the_audit_append_only(
    engine: AsyncEngine,
) -> None:
    await upgrade(engine)
    assert await current_revision(engine) == head_revision()  # 0004 or later: the downgrade passes through it
    async with engine.connect() as conn:
        keys = await conn.run_sync(_columns, "api_keys")
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {"expires_at", "disabled_at", "note", "changed_at", "changed_by"} <= keys
    assert "retired_secrets" in tables

    await downgrade(engine, "0003")
    async with engine.connect() as conn:
        keys = await conn.run_sync(_columns, "api_keys")
        orgs = await conn.run_sync(_columns, "orgs")
        audit = await conn.run_sync(_columns, "audit_events")
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert not keys & {"expires_at", "disabled_at", "note", "changed_at", "changed_by"}
    assert not orgs & {"max_lifetime_s", "default_lifetime_s", "stale_after_s", "leak_action"}
    assert "detail" not in audit and "retired_secrets" not in tables
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO orgs (team_id, name, created_at) VALUES ('T9', 'x', CURRENT_TIMESTAMP)")
        )
        await conn.execute(
            text(
                "INSERT INTO audit_events (org_id, actor, action, at) "
                "SELECT id, 'U1', 'key created', CURRENT_TIMESTAMP FROM orgs"
            )
        )
    with pytest.raises(DBAPIError, match="append-only"):
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM audit_events"))
    await upgrade(engine)
    assert await current_revision(engine) == head_revision()


async def test_a_roll_with_no_grace_during_an_earlier_ones_ends_that_grace_too(store: SqlStore, world: World) -> None:
    record = new_key(world.project.id, "deploy")
    async with store.transaction() as tx:
        key = await tx.add_key(record)
    for n, retiring in enumerate((LATER, T0 + timedelta(minutes=5))):  # a week's grace, then none at minute 5
        async with store.transaction() as tx:
            await tx.roll_key(
                key.id, key_id=f"Kroll{n:06d}", masked=f"kb_Kroll{n:06d}_…zzzz", secret_hash=f"h{n}",
                retiring_at=retiring, at=T0 + timedelta(minutes=5 * n), by=OWNER,
            )
    first, second = await store.verify_record(record.key_id), await store.verify_record("Kroll000000")
    assert first is not None and second is not None
    assert first.retiring_at == second.retiring_at == T0 + timedelta(minutes=5)
    assert [k.retiring_at for k in await _listed(store)] == [T0 + timedelta(minutes=5)]

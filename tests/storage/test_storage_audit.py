"""The audit log is append-only and pages newest first, on SQLite and PostgreSQL."""

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot.domain.model import AuditEvent
from storage import SqlStore
from tests.storage.helpers import OWNER, T0, World, new_key


def _event(
    world: World,
    n: int,
    *,
    action: str = "key created",
    key_name: str | None = None,
    key_masked: str | None = None,
) -> AuditEvent:
    return AuditEvent(
        org_id=world.org.id,
        project_id=world.project.id,
        actor=OWNER,
        action=action,
        at=T0 + timedelta(seconds=n),
        key_name=key_name,
        key_masked=key_masked,
    )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'U0EVIL'",
        "DELETE FROM audit_events WHERE id > 0",
        "TRUNCATE audit_events",  # SQLite spells it DELETE without WHERE
    ],
)
async def test_audit_rows_cannot_be_changed_or_deleted_with_raw_sql(
    store: SqlStore, world: World, statement: str
) -> None:
    if statement.startswith("TRUNCATE") and store.engine.dialect.name == "sqlite":
        statement = "DELETE FROM audit_events"
    async with store.transaction() as tx:
        await tx.add_audit(_event(world, 0, key_name="deploy", key_masked="kb_x_…a81Z"))
    with pytest.raises(DBAPIError, match="append-only"):
        async with store.engine.begin() as conn:
            await conn.execute(text(statement))
    async with store.read() as tx:
        [event] = await tx.audit_page(project_id=world.project.id, before_id=None, limit=10)
    assert event == replace(_event(world, 0, key_name="deploy", key_masked="kb_x_…a81Z"), id=event.id)


async def test_audit_pages_are_newest_first_and_per_project(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        for n in range(5):
            await tx.add_audit(_event(world, n, key_name=f"k{n}"))
        await tx.add_audit(replace(_event(world, 9, action="role granted"), project_id=None))
    async with store.read() as tx:
        first = await tx.audit_page(project_id=world.project.id, before_id=None, limit=3)
        assert first[-1].id is not None
        rest = await tx.audit_page(project_id=world.project.id, before_id=first[-1].id, limit=3)
    assert [e.key_name for e in first + rest] == ["k4", "k3", "k2", "k1", "k0"]
    assert first[0] == replace(_event(world, 4, key_name="k4"), id=first[0].id)


async def test_audit_keeps_the_name_and_masked_form_of_a_deleted_key(store: SqlStore, world: World) -> None:
    record = new_key(world.project.id, "deploy")
    async with store.transaction() as tx:
        key = await tx.add_key(record)
        await tx.delete_key(key.id)
        await tx.add_audit(_event(world, 1, action="key deleted", key_name=key.name, key_masked=key.masked))
    async with store.read() as tx:
        [event] = await tx.audit_page(project_id=world.project.id, before_id=None, limit=10)
    assert (event.action, event.key_name, event.key_masked) == ("key deleted", "deploy", record.masked)

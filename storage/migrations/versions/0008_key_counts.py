"""How many keys each project has, kept on the project row: ``projects.key_count``.

A page of keys says "21–40 of 57"; counting the project's keys for it read every key of the project on
every page (O(keys): +0.65 ms at 10,000 keys on PostgreSQL). The count is now kept by triggers on
``api_keys``, so every writer keeps it right (keybot, a bulk load, a cascade from a deleted project or
org, an operator's SQL): on SQLite one trigger per inserted or deleted row; on PostgreSQL one per
statement, over its transition table (a bulk insert updates each project once). A key never moves
between projects, so an UPDATE needs no trigger (verify's ``last_used_at`` UPDATEs stay free).

Revision ID: 0008
Revises: 0007
Create Date: 2027-03-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BACKFILL = "UPDATE projects SET key_count = (SELECT count(*) FROM api_keys WHERE api_keys.project_id = projects.id)"

_SQLITE_TRIGGERS = [
    """CREATE TRIGGER api_keys_counted_insert AFTER INSERT ON api_keys
    BEGIN UPDATE projects SET key_count = key_count + 1 WHERE id = NEW.project_id; END""",
    """CREATE TRIGGER api_keys_counted_delete AFTER DELETE ON api_keys
    BEGIN UPDATE projects SET key_count = key_count - 1 WHERE id = OLD.project_id; END""",
]
_SQLITE_DROP = ["DROP TRIGGER api_keys_counted_insert", "DROP TRIGGER api_keys_counted_delete"]


def _pg_function(name: str, table: str, sign: str) -> str:
    return f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE projects SET key_count = projects.key_count {sign} changed.n
        FROM (SELECT project_id, count(*) AS n FROM {table} GROUP BY project_id) AS changed
        WHERE projects.id = changed.project_id;
        RETURN NULL;
    END $$"""


_PG_TRIGGERS = [
    _pg_function("api_keys_added", "added_keys", "+"),
    _pg_function("api_keys_removed", "removed_keys", "-"),
    """CREATE TRIGGER api_keys_counted_insert AFTER INSERT ON api_keys
    REFERENCING NEW TABLE AS added_keys FOR EACH STATEMENT EXECUTE FUNCTION api_keys_added()""",
    """CREATE TRIGGER api_keys_counted_delete AFTER DELETE ON api_keys
    REFERENCING OLD TABLE AS removed_keys FOR EACH STATEMENT EXECUTE FUNCTION api_keys_removed()""",
]
_PG_DROP = [
    "DROP TRIGGER api_keys_counted_insert ON api_keys",
    "DROP TRIGGER api_keys_counted_delete ON api_keys",
    "DROP FUNCTION api_keys_added()",
    "DROP FUNCTION api_keys_removed()",
]


def _postgres() -> bool:
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    op.add_column("projects", sa.Column("key_count", sa.Integer(), server_default="0", nullable=False))
    if _postgres():  # no key may be added or removed between the count and the triggers
        op.execute("LOCK TABLE api_keys IN SHARE MODE")
    op.execute(_BACKFILL)
    for statement in _PG_TRIGGERS if _postgres() else _SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    for statement in _PG_DROP if _postgres() else _SQLITE_DROP:
        op.execute(statement)
    op.drop_column("projects", "key_count")  # a plain DROP COLUMN on SQLite 3.35+, no table copy

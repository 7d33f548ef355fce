"""Outbox rows carry a Notice: columns ``notice`` (its JSON) and ``team_id``, both nullable.

Rows queued before this revision keep their ``text`` and have no notice.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite: batch mode copies the table to drop a column; the copy must keep AUTOINCREMENT.
_BATCH = {"table_kwargs": {"sqlite_autoincrement": True}}


def upgrade() -> None:
    with op.batch_alter_table("outbox", **_BATCH) as batch:
        batch.add_column(sa.Column("notice", sa.Text(), nullable=True))
        batch.add_column(sa.Column("team_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", **_BATCH) as batch:
        batch.drop_column("team_id")
        batch.drop_column("notice")

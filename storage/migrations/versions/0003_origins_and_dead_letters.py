"""Where a change came from, and DMs that can never be sent.

- ``outbox.origin`` and ``audit_events.origin``: NULL for Slack, ``"shell"`` for ``keybot shell``
  (whose outbox worker sends only the rows it queued, and whose changes the audit marks).
- ``outbox.enterprise_id``: the recipient's Enterprise Grid org, when there is one.
- ``outbox.dead_at``: set when Slack answered with a permanent error (``user_not_found``,
  ``account_inactive``, …); such a row is never retried until an operator asks for it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = {"table_kwargs": {"sqlite_autoincrement": True}}


def upgrade() -> None:
    with op.batch_alter_table("outbox", **_BATCH) as batch:
        batch.add_column(sa.Column("enterprise_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("origin", sa.String(16), nullable=True))
        batch.add_column(sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("audit_events", **_BATCH) as batch:
        batch.add_column(sa.Column("origin", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_events", **_BATCH) as batch:
        batch.drop_column("origin")
    with op.batch_alter_table("outbox", **_BATCH) as batch:
        batch.drop_column("dead_at")
        batch.drop_column("origin")
        batch.drop_column("enterprise_id")

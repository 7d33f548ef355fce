"""Scheduled work: the ``jobs`` table (reminders before a key expires, the end of a grace period, stale
keys, each organization's daily sweep) and ``nudge_messages`` (where each reminder DM went, so a decision
can update it).

- ``jobs``: one row per (kind, key, due moment), so a reminder is never scheduled twice; at most one
  pending sweep per organization (a partial unique index); claimed like the outbox, with a lease
  (``claimed_until``); ``done_at`` once fired; ``decision`` what became of a reminder. A key's jobs go
  with it.
- ``nudge_messages``: the channel and ts of each reminder DM, by job and recipient.

Revision ID: 0005
Revises: 0004
Create Date: 2027-01-12
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING_SWEEP = "key_row_id IS NULL AND done_at IS NULL"


def _at(name: str, *, nullable: bool = True) -> sa.Column[sa.DateTime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        _at("due_at", nullable=False),
        sa.Column("key_row_id", sa.Integer(), nullable=True),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("enterprise_id", sa.String(64), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        _at("claimed_until"),
        _at("done_at"),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        _at("created_at", nullable=False),
        sa.Column("decision", sa.String(32), nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        _at("decided_at"),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.ForeignKeyConstraint(
            ["key_row_id"], ["api_keys.id"], name="fk_jobs_key_row_id_api_keys", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name="fk_jobs_org_id_orgs", ondelete="CASCADE"),
        sa.UniqueConstraint("kind", "key_row_id", "due_at", name="uq_jobs_kind_key_row_id_due_at"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_jobs_done_at_due_at", "jobs", ["done_at", "due_at"])
    op.create_index("ix_jobs_key_row_id", "jobs", ["key_row_id"])
    op.create_index(
        "uq_jobs_pending_sweep",
        "jobs",
        ["org_id"],
        unique=True,
        sqlite_where=sa.text(_PENDING_SWEEP),
        postgresql_where=sa.text(_PENDING_SWEEP),
    )
    op.create_table(
        "nudge_messages",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("ts", sa.String(32), nullable=False),
        _at("sent_at", nullable=False),
        sa.PrimaryKeyConstraint("job_id", "user_id", name="pk_nudge_messages"),
    )


def downgrade() -> None:
    op.drop_table("nudge_messages")
    op.drop_index("uq_jobs_pending_sweep", table_name="jobs")
    op.drop_index("ix_jobs_key_row_id", table_name="jobs")
    op.drop_index("ix_jobs_done_at_due_at", table_name="jobs")
    op.drop_table("jobs")

"""Access requests (DESIGN.md §5.4): the ``access_requests`` table, ``jobs.request_id`` for a request's
expiry and its reveal button's, and the organization policy's ``requests`` setting.

- ``access_requests``: who asked for a key of which project, why, for how long, its state (pending,
  approved, denied, expired, revealed, void), who decided and when, until when the key may be revealed
  and, once it was, the key made. One pending request per requester and project (a partial unique index).
- ``jobs.request_id``: a request's jobs carry no key; the pending-sweep index now leaves them out.
- ``orgs.requests``: ``on`` (NULL) or ``off``.

Revision ID: 0006
Revises: 0005
Create Date: 2027-01-20
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_PENDING_SWEEP = "key_row_id IS NULL AND done_at IS NULL"
_PENDING_SWEEP = "key_row_id IS NULL AND request_id IS NULL AND done_at IS NULL"
_PENDING_REQUEST = "state = 'pending'"
_BATCH = {"table_kwargs": {"sqlite_autoincrement": True}}


def _at(name: str, *, nullable: bool = True) -> sa.Column[sa.DateTime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _sweep_index(where: str) -> None:
    op.create_index(
        "uq_jobs_pending_sweep",
        "jobs",
        ["org_id"],
        unique=True,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )


def upgrade() -> None:
    with op.batch_alter_table("orgs") as batch:
        batch.add_column(sa.Column("requests", sa.String(8), nullable=True))
    op.drop_index("uq_jobs_pending_sweep", table_name="jobs")
    with op.batch_alter_table("jobs", **_BATCH) as batch:
        batch.add_column(sa.Column("request_id", sa.Integer(), nullable=True))
    op.create_index("ix_jobs_request_id", "jobs", ["request_id"])
    _sweep_index(_PENDING_SWEEP)
    op.create_table(
        "access_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("enterprise_id", sa.String(64), nullable=True),
        sa.Column("requester", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("expires", sa.String(32), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("approvers", sa.Text(), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        _at("created_at", nullable=False),
        _at("due_at", nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=True),
        _at("decided_at"),
        _at("reveal_until"),
        _at("revealed_at"),
        sa.Column("key_row_id", sa.Integer(), nullable=True),
        sa.Column("key_name", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_access_requests"),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name="fk_access_requests_org_id_orgs", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_access_requests_project_id_projects", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["key_row_id"], ["api_keys.id"], name="fk_access_requests_key_row_id_api_keys", ondelete="SET NULL"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_access_requests_project_id_state", "access_requests", ["project_id", "state"])
    op.create_index("ix_access_requests_requester", "access_requests", ["requester"])
    op.create_index("ix_access_requests_key_row_id", "access_requests", ["key_row_id"])
    op.create_index(
        "uq_access_requests_pending",
        "access_requests",
        ["project_id", "requester"],
        unique=True,
        sqlite_where=sa.text(_PENDING_REQUEST),
        postgresql_where=sa.text(_PENDING_REQUEST),
    )


def downgrade() -> None:
    op.drop_table("access_requests")
    op.execute("DELETE FROM jobs WHERE request_id IS NOT NULL")
    op.drop_index("uq_jobs_pending_sweep", table_name="jobs")
    op.drop_index("ix_jobs_request_id", table_name="jobs")
    with op.batch_alter_table("jobs", **_BATCH) as batch:
        batch.drop_column("request_id")
    _sweep_index(_OLD_PENDING_SWEEP)
    with op.batch_alter_table("orgs") as batch:
        batch.drop_column("requests")

"""Key lifecycle: expiry, disabling, notes, rolled secrets and the organization's key policy.

- ``api_keys``: ``expires_at`` (NULL: never), ``disabled_at`` (NULL: enabled), ``note``, and the last
  change after creation (``changed_at``, ``changed_by``); an index on ``expires_at`` for scheduled
  work on keys about to expire.
- ``retired_secrets``: a rolled key's old secret (its key id, hash and masked form), which verifies
  until ``retiring_at``; deleted with its key.
- ``orgs``: the key policy (``max_lifetime_s``, ``default_lifetime_s``, ``stale_after_s``,
  ``leak_action``); NULL means the default.
- ``audit_events.detail``: what a change set (a new expiry, a grace period, a policy value).

Revision ID: 0004
Revises: 0003
Create Date: 2027-01-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = {"table_kwargs": {"sqlite_autoincrement": True}}


def _at(name: str, *, nullable: bool = True) -> sa.Column[sa.DateTime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("api_keys", **_BATCH) as batch:
        batch.add_column(_at("expires_at"))
        batch.add_column(_at("disabled_at"))
        batch.add_column(sa.Column("note", sa.String(500), nullable=True))
        batch.add_column(_at("changed_at"))
        batch.add_column(sa.Column("changed_by", sa.String(64), nullable=True))
        batch.create_index("ix_api_keys_expires_at", ["expires_at"])
    with op.batch_alter_table("orgs") as batch:
        batch.add_column(sa.Column("max_lifetime_s", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("default_lifetime_s", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("stale_after_s", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("leak_action", sa.String(16), nullable=True))
    with op.batch_alter_table("audit_events", **_BATCH) as batch:  # ADD COLUMN: the triggers stay
        batch.add_column(sa.Column("detail", sa.String(200), nullable=True))
    op.create_table(
        "retired_secrets",
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("key_row_id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(255), nullable=False),
        sa.Column("masked", sa.String(128), nullable=False),
        _at("retiring_at", nullable=False),
        _at("rolled_at", nullable=False),
        sa.PrimaryKeyConstraint("key_id", name="pk_retired_secrets"),
        sa.ForeignKeyConstraint(
            ["key_row_id"],
            ["api_keys.id"],
            name="fk_retired_secrets_key_row_id_api_keys",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_retired_secrets_key_row_id_retiring_at", "retired_secrets", ["key_row_id", "retiring_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_retired_secrets_key_row_id_retiring_at", table_name="retired_secrets")
    op.drop_table("retired_secrets")
    # A plain DROP COLUMN (SQLite 3.35+): a batch copy of audit_events would lose its append-only triggers.
    op.drop_column("audit_events", "detail")
    with op.batch_alter_table("orgs") as batch:
        batch.drop_column("leak_action")
        batch.drop_column("stale_after_s")
        batch.drop_column("default_lifetime_s")
        batch.drop_column("max_lifetime_s")
    with op.batch_alter_table("api_keys", **_BATCH) as batch:
        batch.drop_index("ix_api_keys_expires_at")
        batch.drop_column("changed_by")
        batch.drop_column("changed_at")
        batch.drop_column("note")
        batch.drop_column("disabled_at")
        batch.drop_column("expires_at")

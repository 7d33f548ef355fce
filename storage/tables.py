"""The schema as SQLAlchemy Core tables (no ORM: hot paths run cached Core statements).

Every timestamp is a timezone-aware UTC ``datetime``: ``UTCDateTime`` refuses naive values and
makes SQLite, which stores no offset, hand back aware UTC values like PostgreSQL does.
The migration in ``storage/migrations/versions`` creates exactly this schema (a test compares them).
"""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)

ID = String(64)  # Slack ids, key ids, tokens
NAME = String(64)  # project and key names (1–64 characters)


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that only accepts and always returns aware UTC datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

orgs = Table(
    "orgs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("team_id", ID, nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # The key policy (bot/domain/lifecycle.py Policy); NULL means the default.
    Column("max_lifetime_s", Integer, nullable=True),  # NULL: no maximum
    Column("default_lifetime_s", Integer, nullable=True),  # NULL: keys never expire unless asked
    Column("stale_after_s", Integer, nullable=True),  # NULL: 90 days
    Column("leak_action", String(16), nullable=True),  # NULL: "disable"
    Column("requests", String(8), nullable=True),  # NULL: "on" (access requests open)
)

org_roles = Table(
    "org_roles",
    metadata,
    Column("org_id", Integer, ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", ID, nullable=False),
    Column("role", String(32), nullable=False),
    PrimaryKeyConstraint("org_id", "user_id"),
)

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", Integer, ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
    Column("name", NAME, nullable=False),
    Column("name_lower", NAME, nullable=False),
    Column("created_by", ID, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # how many keys the project has, kept by triggers on api_keys (migration 0008)
    Column("key_count", Integer, server_default="0", nullable=False),
    UniqueConstraint("org_id", "name_lower"),
)

project_roles = Table(
    "project_roles",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", ID, nullable=False),
    Column("role", String(32), nullable=False),
    PrimaryKeyConstraint("project_id", "user_id"),
    Index(None, "user_id"),
)

# sqlite_autoincrement: a hard-deleted key's row id is never handed to a newer key.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("key_id", ID, nullable=False),
    Column("name", NAME, nullable=False),
    Column("name_lower", NAME, nullable=False),
    Column("masked", String(128), nullable=False),
    Column("secret_hash", String(255), nullable=False),
    Column("created_by", ID, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),  # NULL: never
    Column("disabled_at", UTCDateTime, nullable=True),  # NULL: enabled
    Column("note", String(500), nullable=True),
    Column("changed_at", UTCDateTime, nullable=True),  # the last change after creation, and by whom
    Column("changed_by", ID, nullable=True),
    UniqueConstraint("project_id", "name_lower"),
    Index(None, "key_id", unique=True),
    Index(None, "project_id", "id"),
    Index(None, "expires_at"),  # for scheduled work on keys about to expire
    sqlite_autoincrement=True,
)

# The old secret of a rolled key: it verifies until ``retiring_at``, then answers EXPIRED. The key
# row itself carries the new key id and hash; these rows go with it when it is deleted.
retired_secrets = Table(
    "retired_secrets",
    metadata,
    Column("key_id", ID, primary_key=True),
    Column("key_row_id", Integer, ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False),
    Column("secret_hash", String(255), nullable=False),
    Column("masked", String(128), nullable=False),
    Column("retiring_at", UTCDateTime, nullable=False),
    Column("rolled_at", UTCDateTime, nullable=False),
    Index(None, "key_row_id", "retiring_at"),
)

pending_deletions = Table(
    "pending_deletions",
    metadata,
    Column("token", ID, primary_key=True),
    Column("key_row_id", Integer, nullable=False),  # no FK: the key may be gone by the click
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", ID, nullable=False),
    Column("team_id", ID, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("org_id", Integer, ForeignKey("orgs.id"), nullable=False),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=True),
    Column("actor", ID, nullable=False),
    Column("action", String(64), nullable=False),
    Column("key_name", NAME, nullable=True),
    Column("key_masked", String(128), nullable=True),
    Column("target_user", ID, nullable=True),
    Column("role", String(32), nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Column("origin", String(16), nullable=True),  # NULL: Slack; "shell": keybot shell
    Column("detail", String(200), nullable=True),  # what changed: a new expiry, a grace, a policy value
    Index(None, "project_id", "id"),
    sqlite_autoincrement=True,
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", ID, nullable=False),
    Column("team_id", ID, nullable=True),  # the recipient's workspace (rows queued as a Notice)
    Column("notice", Text, nullable=True),  # Notice.to_json(); NULL for rows queued as text
    Column("text", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_until", UTCDateTime, nullable=True),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("last_error", String(500), nullable=True),
    Column("enterprise_id", ID, nullable=True),
    Column("origin", String(16), nullable=True),  # NULL: Slack; "shell": keybot shell
    Column("dead_at", UTCDateTime, nullable=True),  # a permanent Slack error: never retried
    Index(None, "sent_at", "next_attempt_at"),
    sqlite_autoincrement=True,
)

# Scheduled work (bot/domain/jobs.py): reminders about a key go with it; an org's sweep has no key.
# One row per (kind, key, due moment): a reminder is never scheduled twice; one pending sweep per org.
jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("key_row_id", Integer, ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=True),
    Column("org_id", Integer, ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
    Column("team_id", ID, nullable=False),
    Column("enterprise_id", ID, nullable=True),
    Column("payload", Text, nullable=False),  # JobData.to_json(): never a key's secret
    Column("claimed_until", UTCDateTime, nullable=True),  # a worker's lease, or "not before" after a failure
    Column("done_at", UTCDateTime, nullable=True),  # fired (or cancelled)
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("decision", String(32), nullable=True),  # what became of it (bot/domain/jobs.py Decision)
    Column("decided_by", ID, nullable=True),
    Column("decided_at", UTCDateTime, nullable=True),
    # An access request's jobs (its expiry, its reveal button's): no foreign key, a job whose request
    # is gone is skipped when it fires.
    Column("request_id", Integer, nullable=True),
    UniqueConstraint("kind", "key_row_id", "due_at"),
    Index(None, "done_at", "due_at"),
    Index(None, "key_row_id"),
    Index(None, "request_id"),
    Index(
        "uq_jobs_pending_sweep",
        "org_id",
        unique=True,
        sqlite_where=text("key_row_id IS NULL AND request_id IS NULL AND done_at IS NULL"),
        postgresql_where=text("key_row_id IS NULL AND request_id IS NULL AND done_at IS NULL"),
    ),
    sqlite_autoincrement=True,
)

# Where each reminder DM went, so a decision can update every copy (chat.update). No foreign key: a
# deleted key takes its jobs with it, and its reminders are then updated to say so.
nudge_messages = Table(
    "nudge_messages",
    metadata,
    Column("job_id", Integer, nullable=False),
    Column("user_id", ID, nullable=False),
    Column("channel", ID, nullable=False),
    Column("ts", String(32), nullable=False),
    Column("sent_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("job_id", "user_id"),
)

# Access requests (bot/domain/requests.py): one pending request per requester and project (a partial
# unique index decides between two racing requests); the state changes by conditional updates only.
access_requests = Table(
    "access_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("org_id", Integer, ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("team_id", ID, nullable=False),
    Column("enterprise_id", ID, nullable=True),
    Column("requester", ID, nullable=False),
    Column("reason", String(500), nullable=True),
    Column("expires", String(32), nullable=True),  # the key's `<when>` as asked; NULL: the policy's default
    Column("state", String(16), nullable=False),
    Column("approvers", Text, nullable=False),  # JSON list of the user ids its DM went to
    Column("token", ID, nullable=False),  # the secret part of its buttons' values, never a key's secret
    Column("created_at", UTCDateTime, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),  # when it expires unanswered
    Column("decided_by", ID, nullable=True),
    Column("decided_at", UTCDateTime, nullable=True),
    Column("reveal_until", UTCDateTime, nullable=True),
    Column("revealed_at", UTCDateTime, nullable=True),
    Column("key_row_id", Integer, ForeignKey("api_keys.id", ondelete="SET NULL"), nullable=True),
    Column("key_name", NAME, nullable=True),
    Index(None, "project_id", "state"),
    Index(None, "requester"),
    Index(None, "key_row_id"),
    Index(
        "uq_access_requests_pending",
        "project_id",
        "requester",
        unique=True,
        sqlite_where=text("state = 'pending'"),
        postgresql_where=text("state = 'pending'"),
    ),
    sqlite_autoincrement=True,
)


# Slack's installations and OAuth states, exactly as slack-sdk's SQLAlchemy stores
# (``slack_sdk.oauth.installation_store.sqlalchemy``, ``slack_sdk.oauth.state_store.sqlalchemy``) read
# and write them; keybot's migrations create them (0007) and a test compares both definitions. Their
# timestamps are naive UTC, as slack-sdk writes them. Bot tokens live here, never in a log line.
def _bot_token_columns() -> list[Column[Any]]:
    """The workspace and bot token columns both slack-sdk tables have."""
    return [
        Column("team_id", String(32)),
        Column("team_name", String(200)),
        Column("bot_token", String(200)),
        Column("bot_id", String(32)),
        Column("bot_user_id", String(32)),
        Column("bot_scopes", String(1000)),
        Column("bot_refresh_token", String(200)),
        Column("bot_token_expires_at", DateTime),
    ]


slack_installations = Table(
    "slack_installations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", String(32), nullable=False),
    Column("app_id", String(32), nullable=False),
    Column("enterprise_id", String(32)),
    Column("enterprise_name", String(200)),
    Column("enterprise_url", String(200)),
    *_bot_token_columns(),
    Column("user_id", String(32), nullable=False),
    Column("user_token", String(200)),
    Column("user_scopes", String(1000)),
    Column("user_refresh_token", String(200)),
    Column("user_token_expires_at", DateTime),
    Column("incoming_webhook_url", String(200)),
    Column("incoming_webhook_channel", String(200)),
    Column("incoming_webhook_channel_id", String(200)),
    Column("incoming_webhook_configuration_url", String(200)),
    Column("is_enterprise_install", Boolean, default=False, nullable=False),
    Column("token_type", String(32)),
    Column("installed_at", DateTime, nullable=False),
    Index("slack_installations_idx", "client_id", "enterprise_id", "team_id", "user_id", "installed_at"),
)

slack_bots = Table(
    "slack_bots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", String(32), nullable=False),
    Column("app_id", String(32), nullable=False),
    Column("enterprise_id", String(32)),
    Column("enterprise_name", String(200)),
    *_bot_token_columns(),
    Column("is_enterprise_install", Boolean, default=False, nullable=False),
    Column("installed_at", DateTime, nullable=False),
    Index("slack_bots_idx", "client_id", "enterprise_id", "team_id", "installed_at"),
)

slack_oauth_states = Table(
    "slack_oauth_states",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("state", String(200), nullable=False),
    Column("expire_at", DateTime, nullable=False),
    Index(None, "state", unique=True),
)

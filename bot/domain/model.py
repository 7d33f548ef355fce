"""Plain records passed between services and storage. No secret plaintext lives in any of them."""

from dataclasses import dataclass
from datetime import datetime

from bot.domain.notices import Notice
from bot.domain.roles import OrgRole, ProjectRole


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: a Slack user in a workspace."""

    team_id: str
    user_id: str
    enterprise_id: str | None = None


@dataclass(frozen=True, slots=True)
class Org:
    id: int
    team_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Project:
    id: int
    org_id: int
    name: str


@dataclass(frozen=True, slots=True)
class Scope:
    """Everything one request needs to authorize: the org, the project (if named) and the actor's roles."""

    org: Org
    org_role: OrgRole | None
    project: Project | None = None
    project_role: ProjectRole | None = None


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A stored key: its argon2 hash and metadata, never its plaintext."""

    id: int
    project_id: int
    key_id: str
    name: str
    masked: str
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None = None  # None: never
    disabled_at: datetime | None = None  # None: enabled
    note: str | None = None
    changed_at: datetime | None = None  # the last change after creation (expiry, disable, roll…)
    changed_by: str | None = None
    retiring_at: datetime | None = None  # when the last rolled-away secret stops (or stopped) working


@dataclass(frozen=True, slots=True)
class NewKeyRecord:
    project_id: int
    key_id: str
    name: str
    masked: str
    secret_hash: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class VerifyRecord:
    """What verification needs about a key id: its hash, where it belongs and its state. For the old
    secret of a rolled key, ``key_id`` and ``secret_hash`` are the old ones, ``id`` is the key's row and
    ``retiring_at`` says when the old secret stops working."""

    id: int
    key_id: str
    name: str
    secret_hash: str
    project: str
    org: str
    last_used_at: datetime | None
    disabled_at: datetime | None = None
    expires_at: datetime | None = None
    retiring_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class KeyState:
    """A key's state as a cached verification re-checks it: its current key id (another one once it was
    rolled), whether it is disabled, its expiry, and ``retiring_at`` of the secret asked about if that
    secret was rolled away."""

    key_id: str
    disabled_at: datetime | None
    expires_at: datetime | None
    retiring_at: datetime | None


@dataclass(frozen=True, slots=True)
class PendingDeletion:
    token: str
    key_row_id: int
    project_id: int
    user_id: str
    team_id: str
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    org_id: int
    project_id: int | None
    actor: str
    action: str
    at: datetime
    key_name: str | None = None
    key_masked: str | None = None
    target_user: str | None = None
    role: str | None = None
    id: int | None = None
    origin: str | None = None  # None: Slack; "shell": keybot shell
    detail: str | None = None  # what a lifecycle change set: a new expiry, a grace period, a policy value


@dataclass(frozen=True, slots=True)
class Notification:
    """A direct message waiting in the outbox: a ``Notice`` to render (``text`` for rows queued as text)."""

    id: int
    user_id: str
    notice: Notice | None
    text: str
    attempts: int


@dataclass(frozen=True, slots=True)
class RoleGrant:
    user_id: str
    role: str
    project: str | None


# The outbox rows that carry audit events to KEYBOT_AUDIT_WEBHOOK_URL: their origin and recipient.
# Slack's outbox worker (origin NULL) and keybot shell's ("shell") never claim them.
AUDIT_WEBHOOK = "webhook"


@dataclass(frozen=True, slots=True)
class ExportedEvent:
    """One audit event as ``keybot audit export`` writes it: names instead of row ids."""

    id: int
    at: datetime
    team_id: str
    project: str | None
    actor: str
    action: str
    key_name: str | None
    key_masked: str | None
    target_user: str | None
    role: str | None
    origin: str | None
    detail: str | None

    def as_json(self) -> dict[str, object]:
        """The event as one JSON object: an export line, and the body of an audit webhook delivery."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "team_id": self.team_id,
            "project": self.project,
            "actor": self.actor,
            "action": self.action,
            "key_name": self.key_name,
            "key_masked": self.key_masked,
            "target_user": self.target_user,
            "role": self.role,
            "origin": self.origin,
            "detail": self.detail,
        }

"""What ``MemoryStore`` holds: plain rows in dicts, copied whole for each write transaction."""

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.domain.lifecycle import Policy
from bot.domain.model import AuditEvent, KeyRecord, Org, PendingDeletion, Project, Scope
from bot.domain.notices import Notice
from bot.domain.roles import OrgRole, ProjectRole

_RECORD_FIELDS = [f.name for f in dataclasses.fields(KeyRecord)]


@dataclass(slots=True)
class KeyRow:
    id: int
    project_id: int
    key_id: str
    name: str
    masked: str
    secret_hash: str
    created_by: str
    created_at: datetime
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    disabled_at: datetime | None = None
    note: str | None = None
    changed_at: datetime | None = None
    changed_by: str | None = None
    retiring_at: datetime | None = None  # the latest retiring_at of its retired secrets

    def as_record(self) -> KeyRecord:
        return KeyRecord(**{name: getattr(self, name) for name in _RECORD_FIELDS})


@dataclass(slots=True)
class RetiredRow:
    """A rolled key's old secret (``retired_secrets``)."""

    key_id: str
    key_row_id: int
    secret_hash: str
    masked: str
    retiring_at: datetime
    rolled_at: datetime


@dataclass(slots=True)
class OutboxRow:
    """A queued DM: a ``Notice`` (``text`` only for rows queued as text)."""

    id: int
    user_id: str
    notice: Notice | None
    next_attempt_at: datetime
    text: str = ""
    attempts: int = 0
    claimed_until: datetime | None = None
    sent_at: datetime | None = None
    last_error: str | None = None
    origin: str | None = None  # None: Slack; "shell": keybot shell
    dead_at: datetime | None = None  # a dead letter: Slack refused it for good
    created_at: datetime | None = None  # when it was queued (None: as old as can be)

    @property
    def queued_at(self) -> datetime:
        return self.created_at or datetime.min.replace(tzinfo=UTC)


@dataclass(slots=True)
class State:
    """Everything the store holds; ``copy.deepcopy`` of it is a transaction's working copy."""

    orgs: dict[int, Org] = field(default_factory=dict)
    org_roles: dict[tuple[int, str], OrgRole] = field(default_factory=dict)
    projects: dict[int, Project] = field(default_factory=dict)
    project_roles: dict[tuple[int, str], ProjectRole] = field(default_factory=dict)
    keys: dict[int, KeyRow] = field(default_factory=dict)
    pending: dict[str, PendingDeletion] = field(default_factory=dict)
    audit: dict[int, AuditEvent] = field(default_factory=dict)
    outbox: dict[int, OutboxRow] = field(default_factory=dict)
    retired: dict[str, RetiredRow] = field(default_factory=dict)  # by old key id
    policies: dict[int, Policy] = field(default_factory=dict)  # by org id; absent: Policy()
    jobs: dict[int, Any] = field(default_factory=dict)  # tests/fakes/jobs.py JobRow, by id
    nudge_dms: dict[tuple[int, str], tuple[str, str]] = field(default_factory=dict)  # (job, user): (channel, ts)
    requests: dict[int, Any] = field(default_factory=dict)  # bot/domain/requests.py AccessRequest, by id

    def org_of_team(self, team_id: str) -> Org | None:
        return next((o for o in self.orgs.values() if o.team_id == team_id), None)

    def project_named(self, org_id: int, name: str) -> Project | None:
        """Project names are unique case-insensitively within an org."""
        lower = name.lower()
        return next(
            (p for p in self.projects.values() if p.org_id == org_id and p.name.lower() == lower), None
        )

    def scope(self, *, team_id: str, user_id: str, project_name: str | None) -> Scope | None:
        org = self.org_of_team(team_id)
        if org is None:
            return None
        org_role = self.org_roles.get((org.id, user_id))
        project = self.project_named(org.id, project_name) if project_name is not None else None
        if project is None:
            return Scope(org=org, org_role=org_role)
        return Scope(org, org_role, project, self.project_roles.get((project.id, user_id)))


def scalars(obj: object) -> Iterator[object]:
    """Every scalar value inside ``obj``, through dataclasses and containers (for scanning for secrets)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from scalars(getattr(obj, f.name))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from scalars(k)
            yield from scalars(v)
    elif isinstance(obj, list | tuple | set | frozenset):
        for item in obj:
            yield from scalars(item)
    else:
        yield obj

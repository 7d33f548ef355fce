"""What the services return: plain data for the front ends (bot/slack renders it, the shell prints it)."""

from dataclasses import dataclass, field
from datetime import datetime

from bot.domain.model import AuditEvent, KeyRecord, Project, RoleGrant


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """The one object that carries a plaintext secret, to the one ephemeral reply. Hidden from repr."""

    project: str
    name: str
    masked: str
    plaintext: str = field(repr=False)
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class KeyPage:
    """One page of keys, newest first: ``keys`` are numbers ``first`` to ``first + len(keys) - 1``
    of ``total`` (1 is the newest), counted when the page was read, so pages never repeat a number."""

    project: str
    keys: list[KeyRecord]
    total: int = 0
    first: int = 1
    now: datetime | None = None  # when it was read (the service's clock), for statuses like "expires in"

    @property
    def has_newer(self) -> bool:
        return self.first > 1

    @property
    def has_older(self) -> bool:
        return self.first + len(self.keys) - 1 < self.total


@dataclass(frozen=True, slots=True)
class DeleteRequest:
    token: str
    project: str
    name: str
    masked: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class DeletedKey:
    project: str
    name: str
    masked: str


@dataclass(frozen=True, slots=True)
class Whoami:
    org: str
    user_id: str
    grants: list[RoleGrant]
    org_owners: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Members:
    """Who holds which role in the org, or in ``project`` (whose list starts with the org owners)."""

    scope: str
    grants: list[RoleGrant]
    project: str | None = None


@dataclass(frozen=True, slots=True)
class AuditPage:
    project: str
    events: list[AuditEvent]
    has_older: bool
    has_newer: bool = False


@dataclass(frozen=True, slots=True)
class RoleChange:
    """A grant (``role`` set; ``previous`` the role it replaced, if any) or a revoke (``role`` None;
    ``previous`` the role removed)."""

    user_id: str
    role: str | None
    project: str | None
    previous: str | None = None


@dataclass(frozen=True, slots=True)
class VisibleProjects:
    """The projects someone can see; when there are none, their org role and who could help."""

    projects: list[Project]
    org_role: str | None
    org_owners: list[str] = field(default_factory=list)

"""What the services return: plain data for the front ends (bot/slack renders it, the shell prints it)."""

from dataclasses import dataclass, field
from datetime import datetime

from bot.domain.model import AuditEvent, KeyRecord, RoleGrant


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """The one object that carries a plaintext secret, to the one ephemeral reply. Hidden from repr."""

    project: str
    name: str
    masked: str
    plaintext: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class KeyPage:
    project: str
    keys: list[KeyRecord]
    has_newer: bool
    has_older: bool


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


@dataclass(frozen=True, slots=True)
class Members:
    scope: str
    grants: list[RoleGrant]


@dataclass(frozen=True, slots=True)
class AuditPage:
    project: str
    events: list[AuditEvent]
    has_older: bool


@dataclass(frozen=True, slots=True)
class RoleChange:
    user_id: str
    role: str | None
    project: str | None

"""Notices: what happened, addressed to one person, as data. bot/slack renders them as DMs.

Services queue a ``Notice`` in the outbox in the same transaction as the change it describes; the
outbox worker renders it when it sends it. A notice names keys by name and masked form only.
"""

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum

SHELL_ORIGIN = "shell"
"""The origin of a change made in ``keybot shell`` (``Notice.origin``, ``AuditEvent.origin``); None is Slack."""


class NoticeKind(StrEnum):
    KEY_CREATED = "key created"
    KEY_DELETED = "key deleted"
    ROLE_GRANTED = "role granted"
    ROLE_REVOKED = "role revoked"


@dataclass(frozen=True, slots=True)
class Notice:
    """One event for one recipient. ``scope`` is the project name, or None for the organization."""

    kind: NoticeKind
    recipient: str
    team_id: str
    actor: str
    at: datetime
    project: str | None = None
    org: str | None = None
    key_name: str | None = None
    key_masked: str | None = None
    role: str | None = None
    enterprise_id: str | None = None
    origin: str | None = None  # None: Slack; SHELL_ORIGIN: keybot shell, whose outbox worker alone sends it

    def to_json(self) -> str:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> "Notice":
        data = json.loads(raw)
        data["kind"] = NoticeKind(data["kind"])
        data["at"] = datetime.fromisoformat(data["at"])
        return cls(**data)

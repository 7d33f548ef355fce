"""Notices: what happened, addressed to one person, as data. bot/slack renders them as DMs.

Services queue a ``Notice`` in the outbox in the same transaction as the change it describes; the
outbox worker renders it when it sends it. A notice names keys by name and masked form only.
"""

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum

from bot.domain.tracing import current_request_id

SHELL_ORIGIN = "shell"
"""The origin of a change made in ``keybot shell`` (``Notice.origin``, ``AuditEvent.origin``); None is Slack."""


class NoticeKind(StrEnum):
    KEY_CREATED = "key created"
    KEY_DELETED = "key deleted"
    ROLE_GRANTED = "role granted"
    ROLE_REVOKED = "role revoked"
    KEY_DISABLED = "key disabled"
    KEY_ENABLED = "key enabled"
    KEY_ROLLED = "key rolled"
    EXPIRY_CHANGED = "expiry changed"
    POLICY_CHANGED = "policy changed"
    EXPIRY_NUDGE = "expiry nudge"  # a reminder with buttons (bot/domain/jobs.py), sent alone
    STALE_NUDGE = "stale nudge"
    GRACE_ENDED = "grace ended"
    NUDGE_DECIDED = "nudge decided"  # not a new DM: the reminder ``nudge`` sent this person is updated
    # Access requests (bot/domain/requests.py). ``nudge`` is the job id its DMs are recorded under.
    ACCESS_REQUESTED = "access requested"  # to each approver, alone, with Approve and Deny
    REQUEST_DECIDED = "request decided"  # not a new DM: each approver's request DM is updated
    REQUEST_APPROVED = "request approved"  # to the requester, alone, with Reveal key
    REVEAL_CLOSED = "reveal closed"  # not a new DM: the requester's Reveal key DM is updated
    REQUEST_ENDED = "request ended"  # to the requester: denied, or expired unanswered (``decision``)
    KEY_LEAKED = "key leaked"  # found by GitHub secret scanning, or posted in Slack (bot/services/leaks.py)
    USER_DEACTIVATED = "user deactivated"  # to a project's owners: the keys a deactivated user created
    ORG_OWNERLESS = "org ownerless"  # to a workspace admin: the org's last owner was deactivated


# DMs with buttons of their own, each sent alone (never merged with other DMs).
BUTTON_KINDS = frozenset({NoticeKind.KEY_LEAKED, NoticeKind.USER_DEACTIVATED})


NUDGE_KINDS = frozenset({NoticeKind.EXPIRY_NUDGE, NoticeKind.STALE_NUDGE})
# DMs with buttons that go alone, where they went recorded; and the updates of them (chat.update).
BUTTON_DMS = NUDGE_KINDS | {NoticeKind.ACCESS_REQUESTED, NoticeKind.REQUEST_APPROVED}
UPDATES = frozenset({NoticeKind.NUDGE_DECIDED, NoticeKind.REQUEST_DECIDED, NoticeKind.REVEAL_CLOSED})


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
    previous_role: str | None = None
    enterprise_id: str | None = None
    origin: str | None = None  # None: Slack; SHELL_ORIGIN: keybot shell, whose outbox worker alone sends it
    until: datetime | None = None  # a new expiry (None: never), or when a rolled key's old secret stops
    setting: str | None = None  # a policy setting that changed, and its new value
    value: str | None = None
    nudge: int | None = None  # a reminder's job id (its buttons, and the DM a decision updates)
    token: str | None = field(default=None, repr=False)  # the reminder's buttons' token, not a key's secret
    decision: str | None = None  # what an owner decided on a reminder (bot/domain/jobs.py Decision)
    since: datetime | None = None  # a stale key's last use (or creation)
    url: str | None = None  # where a leaked key was found (``value``: what keybot did about it)
    access_request: int | None = None  # an access request's id (its buttons carry it, with ``token``)
    requester: str | None = None  # who asked, on an access request's DMs (``value``: the reason)
    channel: str | None = None  # the conversation a leaked key was posted in (None: found by GitHub)
    poster: str | None = None  # who posted it there
    keys: tuple[tuple[str, str], ...] = ()  # (name, masked) of the keys a deactivated user created
    # the request that queued it (bot/domain/tracing.py), so its DM's send can be traced to the command
    request_id: str | None = field(default_factory=current_request_id, compare=False)

    def to_json(self) -> str:
        data = asdict(self)
        for name in ("at", "until", "since"):
            data[name] = None if data[name] is None else data[name].isoformat()
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> "Notice":
        data = json.loads(raw)
        data["kind"] = NoticeKind(data["kind"])
        data["keys"] = tuple(tuple(pair) for pair in data.get("keys", ()))
        for name in ("at", "until", "since"):
            if data.get(name) is not None:
                data[name] = datetime.fromisoformat(data[name])
        return cls(**data)

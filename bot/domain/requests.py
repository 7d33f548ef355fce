"""Access requests (DESIGN.md §5.4): a project ``admin`` or ``read-write`` member asks for a key, an owner
approves or denies it in a DM, and the requester reveals the key once. Pure rules, no I/O.

States: ``pending`` (waiting for an owner) → ``approved`` (the requester may reveal it for 24 hours) →
``revealed`` (the key was created and shown once). ``denied``, ``expired`` (nobody decided within 72
hours, or the reveal button was not used within 24 hours) and ``void`` (the requester left) are final.
The first decision wins: each step is one conditional update of the state.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.errors import InvalidInput
from bot.domain.names import storable_text

REQUEST_TTL = timedelta(hours=72)  # a pending request unanswered this long expires
REVEAL_TTL = timedelta(hours=24)  # how long the requester's Reveal key button works after approval
REASON_MAX = 500  # what keybot keeps of a reason: a DM section takes 3000 characters, a message more


class RequestState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    REVEALED = "revealed"
    VOID = "void"


FINAL = frozenset({RequestState.DENIED, RequestState.EXPIRED, RequestState.REVEALED, RequestState.VOID})


@dataclass(frozen=True, slots=True)
class NewAccessRequest:
    """A request to store. ``expires``: the ``<when>`` the requester asked for the key (None: the org's
    default), checked against the policy when asked and applied when the key is made; ``approvers`` the
    people its DM goes to; ``token`` its buttons' secret."""

    org_id: int
    project_id: int
    team_id: str
    requester: str
    created_at: datetime
    due_at: datetime
    approvers: tuple[str, ...]
    token: str = field(repr=False)
    enterprise_id: str | None = None
    reason: str | None = None
    expires: str | None = None


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """A stored request; ``project`` is the project's name, ``key_name`` that of the key once revealed."""

    id: int
    org_id: int
    project_id: int
    project: str
    team_id: str
    enterprise_id: str | None
    requester: str
    reason: str | None
    expires: str | None
    state: RequestState
    approvers: tuple[str, ...]
    token: str = field(repr=False)
    created_at: datetime | None = None
    due_at: datetime | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    reveal_until: datetime | None = None
    revealed_at: datetime | None = None
    key_row_id: int | None = None
    key_name: str | None = None


@dataclass(frozen=True, slots=True)
class RequestRef:
    """What a request's button carries: the request's id and its token."""

    request_id: int
    token: str = field(repr=False)


def clean_reason(raw: str) -> str:
    """A reason as stored: whitespace runs made single spaces; 1–500 characters, else InvalidInput."""
    reason = " ".join(raw.split())
    if not reason:
        raise InvalidInput("`for` needs a reason, like `for the nightly export job`.")
    if len(reason) > REASON_MAX:
        raise InvalidInput(
            f"A reason is at most {REASON_MAX} characters; yours has {len(reason)}. Shorten it, nothing was sent."
        )
    return storable_text(reason, what="A reason")


def request_key_name(request_id: int) -> str:
    """The name of the key a request creates: ``request-<id>`` (unique: the id is)."""
    return f"request-{request_id}"


def approvers_json(approvers: tuple[str, ...]) -> str:
    return json.dumps(list(approvers), separators=(",", ":"))


def approvers_from_json(raw: str | None) -> tuple[str, ...]:
    return tuple(json.loads(raw)) if raw else ()

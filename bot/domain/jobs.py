"""Scheduled work (DESIGN.md §5.1): what a job is, when the reminders about a key fall due, and whether
a reminder still applies when it fires. Pure rules, no I/O.

Kinds of job:

- ``expiry nudge``: 7 days and 1 day before a key expires, its owners get a DM with *Roll*, *Extend 30
  days* and *Let it expire*; scheduled when the key gets an expiry, for moments still to come.
- ``grace end``: when a rolled key's old secret stops working, its owners get a DM.
- ``stale nudge``: a key unused (last use, or creation) for the org's ``stale-after`` gets a DM with
  *Delete…* and *Keep*; once per ``stale-after`` period of disuse (the period's end is its due moment, so
  the jobs table's unique (kind, key, due moment) says whether it was already sent).
- ``request expiry``: an access request (bot/domain/requests.py) nobody decided within 72 hours expires;
  ``reveal expiry``: an approved request's *Reveal key* button stops working 24 hours after approval.
  Both carry the request's id (``request_id``) and no key.
- ``stale sweep``: one pending per organization, daily: finds stale keys (and keys expiring soon whose
  reminders were never scheduled, e.g. made before reminders existed) and schedules their nudges.

A job fires once: the worker that finishes it (``done_at``) in the transaction that queues its DMs is
the only one whose DMs commit. Every job re-checks at fire time that it still applies (the key still
exists, still has that expiry, is still unused…); one that no longer does is ``skipped``. What became
of a nudge is its ``decision``: an owner's (``rolled``, ``extended``…), or keybot's (``skipped``,
``cancelled`` when a change made it obsolete before it fired).
"""

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

NUDGE_LEADS = (timedelta(days=7), timedelta(days=1))  # before the expiry, longest first
EXTENSION = timedelta(days=30)  # what *Extend 30 days* adds, and a rolled key's lifetime at the least
SWEEP_EVERY = timedelta(days=1)
SWEEP_LOOKAHEAD = NUDGE_LEADS[0] + 2 * SWEEP_EVERY  # keys expiring this soon get their nudges scheduled


class JobKind(StrEnum):
    EXPIRY_NUDGE = "expiry nudge"
    GRACE_END = "grace end"
    STALE_NUDGE = "stale nudge"
    STALE_SWEEP = "stale sweep"
    REQUEST_EXPIRY = "request expiry"
    REVEAL_EXPIRY = "reveal expiry"


NUDGES = (JobKind.EXPIRY_NUDGE, JobKind.STALE_NUDGE)  # the jobs whose DMs carry buttons
REQUEST_JOBS = (JobKind.REQUEST_EXPIRY, JobKind.REVEAL_EXPIRY)  # the jobs of an access request


class Decision(StrEnum):
    """What became of a nudge: an owner's choice, or keybot's (``skipped``, ``cancelled``)."""

    ROLLED = "rolled"
    EXTENDED = "extended"
    LET_EXPIRE = "let expire"
    KEPT = "kept"
    DELETED = "deleted"
    SKIPPED = "skipped"  # it fired, but no longer applied: nothing was sent
    CANCELLED = "cancelled"  # a change made it obsolete before it fired


@dataclass(frozen=True, slots=True)
class JobData:
    """A job's payload. ``expires_at``: the expiry an expiry nudge is about; ``retiring_at``: when the old
    secret of a grace end stops, ``old_masked`` that secret and ``by`` who rolled it; ``since``: the last
    use (or creation) a stale nudge counts from. Once a nudge fired: ``recipients`` (who got it) and
    ``token`` (the secret part of its buttons' values)."""

    expires_at: datetime | None = None
    retiring_at: datetime | None = None
    since: datetime | None = None
    old_masked: str | None = None
    by: str | None = None
    recipients: tuple[str, ...] = ()
    token: str | None = field(default=None, repr=False)

    def to_json(self) -> str:
        data = {k: v for k, v in asdict(self).items() if v not in (None, ())}
        for name in ("expires_at", "retiring_at", "since"):
            if name in data:
                data[name] = data[name].isoformat()
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | None) -> "JobData":
        data = json.loads(raw) if raw else {}
        for name in ("expires_at", "retiring_at", "since"):
            if data.get(name) is not None:
                data[name] = datetime.fromisoformat(data[name])
        data["recipients"] = tuple(data.get("recipients", ()))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to schedule. ``key_row_id`` is None for an organization's sweep and an access request's
    jobs, which carry ``request_id`` instead."""

    kind: JobKind
    due_at: datetime
    org_id: int
    team_id: str
    created_at: datetime
    enterprise_id: str | None = None
    key_row_id: int | None = None
    data: JobData = JobData()
    request_id: int | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """A stored job. ``attempts`` counts claims; ``done_at`` is set once it fired (or was cancelled)."""

    id: int
    kind: JobKind
    due_at: datetime
    org_id: int
    team_id: str
    enterprise_id: str | None
    key_row_id: int | None
    data: JobData
    attempts: int = 0
    done_at: datetime | None = None
    decision: Decision | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    request_id: int | None = None


@dataclass(frozen=True, slots=True)
class NudgeRef:
    """What a nudge's button carries: the job's id and its token."""

    job_id: int
    token: str = field(repr=False)


def expiry_nudge_moments(expires_at: datetime, *, now: datetime) -> list[datetime]:
    """When to remind the owners of a key expiring at ``expires_at``: 7 days and 1 day before, those
    still to come (a key made to expire in 3 days gets only the 1-day reminder)."""
    return [expires_at - lead for lead in NUDGE_LEADS if expires_at - lead > now]


def expiry_nudge_applies(*, due_at: datetime, expires_at: datetime, now: datetime) -> bool:
    """Whether an expiry nudge due at ``due_at`` is still worth sending at ``now``: the key has not
    expired, and no nearer reminder has fallen due meanwhile (after an outage only the latest goes)."""
    if now >= expires_at:
        return False
    return not any(due_at < expires_at - lead <= now for lead in NUDGE_LEADS)


def stale_since(*, last_used_at: datetime | None, created_at: datetime) -> datetime:
    """When a key was last used, or made if it never was: what its disuse counts from."""
    return last_used_at or created_at


def stale_moment(since: datetime, *, stale_after: timedelta, now: datetime) -> datetime | None:
    """The end of the latest whole ``stale_after`` period of disuse since ``since``, or None while the key
    is not stale. A key unused for 200 days with ``stale-after 90d`` is at its second period (day 180)."""
    periods = (now - since) // stale_after
    return since + periods * stale_after if periods >= 1 else None


def backoff(attempts: int, *, base: float = 1.0, cap: float = 3600.0) -> timedelta:
    """How long a job that failed its ``attempts``-th try waits before the next."""
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), cap))

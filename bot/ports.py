"""The interfaces the services need, split by consumer. storage/ implements them on SQLAlchemy;
tests/fakes.py in memory.

- ``UnitOfWork`` (the services' changes): ``transaction()`` is one database transaction; everything
  done through it commits together when the ``async with`` block ends normally and rolls back on any
  exception. ``read()`` is a read-only snapshot.
- ``HotReads`` (``/apikeys list`` and the verifier): single cheap statements outside any transaction.
- ``Outbox`` (the DM worker): claim, mark sent, reschedule, bury (a dead letter).
- ``Health`` (``/healthz``): one cheap query that proves the database answers.
- ``DeadLetters`` (``keybot outbox``): list unsent DMs, bring dead ones back.
- ``Retention`` (the periodic purge): delete what is no longer needed, one bounded batch at a time.
- ``Jobs`` (the job runner): claim due jobs, retry one that failed; ``JobRows`` (in ``Transaction``)
  schedules, finishes, cancels and decides them with the change they belong to.
- ``NudgeMessages`` (the DM worker): where each reminder DM went (channel, ts), so a decision updates it.

Unique-name violations surface as ``bot.domain.errors.Conflict``; an unreachable database as
``bot.domain.errors.Unavailable``.
"""

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.domain.jobs import Decision, Job, JobData, JobKind, NewJob
from bot.domain.lifecycle import Policy
from bot.domain.model import (
    AuditEvent,
    ExportedEvent,
    KeyRecord,
    KeyState,
    NewKeyRecord,
    Notification,
    Org,
    PendingDeletion,
    Project,
    RoleGrant,
    Scope,
    VerifyRecord,
)
from bot.domain.notices import Notice
from bot.domain.requests import AccessRequest, NewAccessRequest, RequestState
from bot.domain.roles import OrgRole, ProjectRole

# -- the unit of work, by area ------------------------------------------------------------------


class OrgRows(Protocol):
    async def scope(self, *, team_id: str, user_id: str, project_name: str | None) -> Scope | None:
        """The org of ``team_id`` with the user's roles, and the named project (None if absent)."""

    async def lock_org(self, org_id: int) -> None:
        """Serialize role changes in one org (SELECT … FOR UPDATE on PostgreSQL)."""

    async def lock_team(self, team_id: str, *, shared: bool = False) -> None:
        """Lock the org of ``team_id`` (if any) before reading anyone's role in it: exclusively to change
        roles, ``shared`` to act on keys (FOR UPDATE / FOR SHARE on PostgreSQL). A change that reads the
        actor's roles after this sees every role change committed before it, and no role change commits
        while it runs. On SQLite a write transaction already holds the database lock: a no-op."""

    async def ensure_org(self, *, team_id: str, name: str, at: datetime) -> Org: ...

    async def org_teams(self) -> list[str]:
        """The team ids of every organization."""

    async def org_by_id(self, org_id: int) -> Org | None: ...


class ProjectRows(Protocol):
    async def visible_projects(self, *, org_id: int, user_id: str, all_projects: bool) -> list[Project]: ...

    async def add_project(self, *, org_id: int, name: str, created_by: str, at: datetime) -> Project: ...

    async def project_by_id(self, project_id: int) -> Project | None: ...


class KeyRows(Protocol):
    async def add_key(self, key: NewKeyRecord) -> KeyRecord: ...

    async def key_named(self, *, project_id: int, name: str) -> KeyRecord | None: ...

    async def key_by_row_id(self, row_id: int) -> KeyRecord | None: ...

    async def delete_key(self, row_id: int) -> bool: ...

    async def keys_created_by(self, *, org_id: int, user_id: str) -> list[tuple[Project, KeyRecord]]:
        """The org's keys ``user_id`` created, by project name then key name."""


class RoleRows(Protocol):
    async def org_role(self, *, org_id: int, user_id: str) -> OrgRole | None: ...

    async def set_org_role(self, *, org_id: int, user_id: str, role: OrgRole) -> None: ...

    async def delete_org_role(self, *, org_id: int, user_id: str) -> bool: ...

    async def count_org_owners(self, org_id: int) -> int: ...

    async def project_role(self, *, project_id: int, user_id: str) -> ProjectRole | None: ...

    async def set_project_role(self, *, project_id: int, user_id: str, role: ProjectRole) -> None: ...

    async def delete_project_role(self, *, project_id: int, user_id: str) -> bool: ...

    async def roles_of(self, *, org_id: int, user_id: str) -> list[RoleGrant]: ...

    async def members(self, *, org_id: int, project_id: int | None) -> list[RoleGrant]: ...

    async def project_owners(self, *, org_id: int, project_id: int) -> list[str]:
        """Org owners and this project's owners, each once."""


class PendingRows(Protocol):
    async def add_pending(self, pending: PendingDeletion) -> None: ...

    async def pending(self, token: str) -> PendingDeletion | None: ...

    async def use_pending(self, token: str, *, at: datetime) -> bool:
        """Mark unused ``token`` used; False if it was already used (atomic: one winner)."""

    async def void_pending_deletions(self, *, team_id: str, user_id: str, at: datetime) -> int:
        """Mark every unused confirmation ``user_id`` was given in ``team_id`` used; how many."""


class AuditRows(Protocol):
    async def add_audit(self, event: AuditEvent) -> None: ...

    async def audit_page(
        self, *, project_id: int, before_id: int | None, limit: int, after_id: int | None = None
    ) -> list[AuditEvent]:
        """Newest first: the newest ``limit``, those older than ``before_id``, or those just newer than
        ``after_id``."""


class NoticeRows(Protocol):
    async def notify(self, notice: Notice) -> None:
        """Queue a DM in the outbox, in this transaction."""


class LifecycleRows(Protocol):
    async def org_policy(self, org_id: int) -> Policy:
        """The org's key policy (defaults for what it never set)."""

    async def set_org_policy(self, org_id: int, policy: Policy) -> None: ...

    async def set_key_expiry(self, row_id: int, *, expires_at: datetime | None, at: datetime, by: str) -> None:
        """Set the key's expiry (None: never) and record the change (``at``, ``by``)."""

    async def set_key_disabled(self, row_id: int, *, disabled: bool, at: datetime, by: str) -> None:
        """Disable the key (``disabled_at = at``) or enable it, and record the change."""

    async def roll_key(
        self,
        row_id: int,
        *,
        key_id: str,
        masked: str,
        secret_hash: str,
        retiring_at: datetime,
        at: datetime,
        by: str,
    ) -> None:
        """Retire the key's current key id, hash and masked form (the old secret verifies until
        ``retiring_at``), give the key the new ones, and record the change."""


class JobRows(Protocol):
    async def schedule_job(self, job: NewJob, *, revive: bool = False) -> bool:
        """Add ``job`` unless the same one (kind, key, due moment; for a sweep: a pending sweep of the
        org) exists; with ``revive`` an existing one is made pending again with this payload. Whether
        it was added or revived."""

    async def job(self, job_id: int) -> Job | None: ...

    async def finish_job(
        self, job_id: int, *, at: datetime, data: JobData | None = None, decision: Decision | None = None
    ) -> bool:
        """Mark a pending job done (with its payload after firing, or ``skipped``); False if it already
        was (another worker fired it, or a change cancelled it): then nothing it would queue may commit."""

    async def cancel_jobs(self, key_row_id: int, *, kinds: Sequence[JobKind], at: datetime) -> int:
        """Mark the key's pending jobs of ``kinds`` done, ``cancelled``; how many."""

    async def decide_nudge(self, job_id: int, *, by: str | None, decision: Decision, at: datetime) -> bool:
        """Record what became of a fired nudge; False if it was already decided (one decision wins)."""

    async def open_nudges(self, key_row_id: int) -> list[Job]:
        """The key's nudges that were sent and not decided yet, oldest first."""

    async def orgs_without_sweep(self) -> list[Org]:
        """The organizations with no pending stale sweep."""

    async def stale_keys(self, org_id: int, *, unused_since: datetime, now: datetime) -> list[KeyRecord]:
        """The org's enabled, unexpired keys last used (or, never used, made) at or before ``unused_since``."""

    async def expiring_keys(self, org_id: int, *, after: datetime, until: datetime) -> list[KeyRecord]:
        """The org's keys that expire after ``after`` and at or before ``until``."""


class RequestRows(Protocol):
    async def add_request(self, request: NewAccessRequest) -> AccessRequest:
        """Store a pending request; ``Conflict`` if the requester already has one pending for the project."""

    async def access_request(self, request_id: int) -> AccessRequest | None: ...

    async def move_request(
        self,
        request_id: int,
        *,
        from_states: Sequence[RequestState],
        to: RequestState,
        at: datetime,
        by: str | None = None,
        reveal_until: datetime | None = None,
        key_row_id: int | None = None,
        key_name: str | None = None,
    ) -> bool:
        """Move the request to ``to`` if it is in one of ``from_states`` (one conditional update: of two
        racing decisions exactly one returns True). ``by`` records who decided (approve, deny)."""

    async def requests_seen_by(self, *, org_id: int, user_id: str, project_id: int | None, limit: int) -> list[AccessRequest]:
        """Pending requests ``user_id`` is an approver of, then the user's own (newest first), of one
        project or of the whole org; at most ``limit`` of each."""

    async def open_requests_of(self, *, org_id: int, user_id: str) -> list[AccessRequest]:
        """The user's pending and approved (not yet revealed) requests in the org."""

    async def request_for_key(self, key_row_id: int) -> AccessRequest | None:
        """The revealed request that made the key, if one did."""

    async def request_jobs(self, request_id: int) -> list[Job]:
        """The request's jobs (its expiry, its reveal button's), oldest first."""


class Transaction(
    OrgRows,
    ProjectRows,
    KeyRows,
    RoleRows,
    PendingRows,
    AuditRows,
    NoticeRows,
    LifecycleRows,
    JobRows,
    RequestRows,
    Protocol,
):
    """One database transaction: every area's rows."""


class WorkspaceDirectory(Protocol):
    """Who the workspace's people are, as Slack knows them (bot/slack/directory.py)."""

    async def admins(self, team_id: str, *, workspace: str | None = None) -> list[str]:
        """The user ids of the workspace's admins and owners (active humans only). ``team_id`` is the
        organization's key; for an org-wide Grid install (``E…``) ``workspace`` says which workspace."""


class UnitOfWork(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A write transaction: commits at the end of the block, rolls back on any exception."""

    def read(self) -> AbstractAsyncContextManager[Transaction]:
        """A read-only transaction (no write lock on SQLite)."""


# -- the hot reads ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyListingPage:
    """What ``key_listing`` read, as of one moment: the actor's scope (None: no org for the workspace),
    up to ``limit`` keys of the project, newest first, how many keys the project has (``total``) and how
    many of them are newer than every key of the page (``newer``)."""

    scope: Scope | None
    keys: list[KeyRecord]
    total: int = 0
    newer: int = 0


class KeyListing(Protocol):
    async def key_listing(
        self,
        *,
        team_id: str,
        user_id: str,
        project_name: str,
        before_id: int | None,
        after_id: int | None,
        limit: int,
    ) -> KeyListingPage:
        """The scope of the named project, one page of its keys (newest first; ``before_id``: rows
        older than it; ``after_id``: rows newer than it) and its counts, in one cheap round trip. The
        caller authorizes before using the keys."""


class VerifyReads(Protocol):
    async def verify_record(self, key_id: str) -> VerifyRecord | None:
        """The key with ``key_id``, or else the rolled key whose old secret had it (looked up only when
        no key has it now), with its state."""

    async def key_state(self, row_id: int, *, key_id: str) -> KeyState | None:
        """The key's state for re-checking a cached verification of ``key_id`` (one indexed query);
        None once the key is deleted."""

    async def touch_key(self, row_id: int, *, at: datetime) -> None: ...


# -- the outbox and health ----------------------------------------------------------------------


class Outbox(Protocol):
    async def claim_notifications(
        self,
        *,
        limit: int,
        now: datetime,
        lease_seconds: float,
        origin: str | None = None,
        settle_seconds: float = 0.0,
    ) -> Sequence[Notification]:
        """Claim due, unsent outbox rows of ``origin`` for this worker (SKIP LOCKED on PostgreSQL).
        A row is due ``settle_seconds`` after it was queued; with it come the other due rows for the
        same recipient, so several changes within a few seconds make one DM."""

    async def mark_sent(self, notification_id: int, *, at: datetime) -> None: ...

    async def reschedule(self, notification_id: int, *, at: datetime, error: str) -> None: ...

    async def waits_behind(self, notification_id: int, *, user_id: str) -> bool:
        """Whether an older row to ``user_id`` is still to be sent (neither sent nor dead): an update of
        a DM waits while the DM it updates may be that row."""

    async def hold_notifications(self, *, origin: str, at: datetime, error: str) -> int:
        """Make every waiting row of ``origin`` due no sooner than ``at`` (an ordered stream waits
        whole behind a failed row); how many were moved."""

    async def bury(self, notification_id: int, *, at: datetime, error: str) -> None:
        """Make the row a dead letter: Slack refused it for good, so it is never claimed again
        (until an operator revives it)."""


class Jobs(Protocol):
    async def claim_jobs(self, *, limit: int, now: datetime, lease_seconds: float) -> Sequence[Job]:
        """Claim due, pending jobs for ``lease_seconds`` (SKIP LOCKED on PostgreSQL), oldest due first;
        a job whose lease ran out (its worker died) is due again."""

    async def retry_job(self, job_id: int, *, at: datetime) -> None:
        """A job that failed: not claimed again before ``at``."""


class NudgeMessages(Protocol):
    async def record_nudge_dm(self, *, job_id: int, user_id: str, channel: str, ts: str, at: datetime) -> None:
        """The reminder ``job_id`` went to ``user_id`` as message ``ts`` in ``channel``."""

    async def nudge_dm(self, *, job_id: int, user_id: str) -> tuple[str, str] | None:
        """The (channel, ts) of the reminder ``job_id`` sent to ``user_id``; None if none was sent."""


class Health(Protocol):
    async def pending_notifications(self) -> int:
        """DMs and audit webhook deliveries still to be sent (not sent, not dead); raises
        ``Unavailable`` when the database does not answer."""

    async def dead_notifications(self) -> int:
        """DMs Slack refused for good, waiting for an operator."""

    async def oldest_pending_notification(self) -> datetime | None:
        """When the oldest row still to be sent (not sent, not dead) was queued; None if there is none."""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """An unsent DM as an operator sees it: who, what kind, how it went; never its text."""

    id: int
    user_id: str
    team_id: str | None
    kind: str | None  # the notice's kind; None for rows queued as text
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    dead_at: datetime | None


class DeadLetters(Health, Protocol):
    async def unsent_notifications(self, *, dead: bool, limit: int) -> list[OutboxEntry]:
        """Up to ``limit`` dead (or else pending) DMs, oldest first."""

    async def revive_notifications(self, ids: Sequence[int] | None, *, at: datetime) -> list[int]:
        """Make the dead rows among ``ids`` (every dead row when None) pending again, due at ``at``
        with a fresh count of attempts; the ids revived."""


class Retention(Protocol):
    """Each call deletes at most ``limit`` rows in one short statement and says how many it deleted
    (0 when there is nothing left): safe to run from several instances at once."""

    async def purge_sent_notifications(self, *, sent_before: datetime, limit: int) -> int: ...

    async def purge_dead_notifications(self, *, dead_before: datetime, limit: int) -> int: ...

    async def purge_pending_deletions(self, *, ended_before: datetime, limit: int) -> int:
        """Pending deletions used, or expired, before ``ended_before``."""


class AuditExportSource(Protocol):
    async def audit_batch(
        self, *, since: datetime, team_id: str | None, after_id: int, limit: int
    ) -> list[ExportedEvent]:
        """Audit events at or after ``since`` (of one workspace's org, or all), with ids above
        ``after_id``, oldest first, at most ``limit``."""

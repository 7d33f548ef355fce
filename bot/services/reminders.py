"""A key's reminders (bot/domain/jobs.py), scheduled in the transaction of the change that calls for
them, and closed in the transaction of the decision taken on them. Used by the keys, lifecycle, jobs and
nudges services.

- A key that gets an expiry (created with one, ``expiry``, a *Roll* or *Extend* click) gets its expiry
  nudges; a new expiry cancels the old ones (they would be skipped at fire time anyway).
- A roll with a grace period schedules the DM that says its old secret stopped working.
- A decision (a click, or the key's deletion) closes the key's open nudges: each copy of each DM is
  updated (a ``NUDGE_DECIDED`` notice per recipient) to say who did what.
"""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from bot.domain.jobs import Decision, Job, JobData, JobKind, NewJob, expiry_nudge_moments
from bot.domain.model import Actor, KeyRecord, Scope
from bot.domain.notices import Notice, NoticeKind
from bot.ports import Transaction


@dataclass(frozen=True, slots=True)
class Where:
    """The organization and workspace a job belongs to (its DMs use that workspace's token)."""

    org_id: int
    team_id: str
    enterprise_id: str | None = None

    @classmethod
    def of(cls, scope: Scope, actor: Actor) -> "Where":
        return cls(org_id=scope.org.id, team_id=scope.org.team_id, enterprise_id=actor.enterprise_id)

    @classmethod
    def of_job(cls, job: Job) -> "Where":
        return cls(org_id=job.org_id, team_id=job.team_id, enterprise_id=job.enterprise_id)

    def job(self, kind: JobKind, *, due_at: datetime, now: datetime, key_row_id: int | None, data: JobData) -> NewJob:
        return NewJob(
            kind=kind,
            due_at=due_at,
            org_id=self.org_id,
            team_id=self.team_id,
            enterprise_id=self.enterprise_id,
            key_row_id=key_row_id,
            created_at=now,
            data=data,
        )


async def schedule_expiry_nudges(
    tx: Transaction,
    where: Where,
    *,
    key_row_id: int,
    expires_at: datetime | None,
    now: datetime,
    revive: bool = False,
) -> None:
    """The reminders 7 days and 1 day before ``expires_at`` that are still to come. ``revive``: one
    cancelled before (the key had this expiry once) is made pending again."""
    if expires_at is None:
        return
    for moment in expiry_nudge_moments(expires_at, now=now):
        job = where.job(
            JobKind.EXPIRY_NUDGE, due_at=moment, now=now, key_row_id=key_row_id, data=JobData(expires_at=expires_at)
        )
        await tx.schedule_job(job, revive=revive)


async def expiry_changed(
    tx: Transaction, where: Where, *, key_row_id: int, expires_at: datetime | None, now: datetime
) -> None:
    """The key's expiry is now ``expires_at``: the pending reminders about the old one are cancelled."""
    await tx.cancel_jobs(key_row_id, kinds=[JobKind.EXPIRY_NUDGE], at=now)
    await schedule_expiry_nudges(tx, where, key_row_id=key_row_id, expires_at=expires_at, now=now, revive=True)


async def schedule_grace_end(
    tx: Transaction,
    where: Where,
    *,
    key_row_id: int,
    retiring_at: datetime,
    old_masked: str,
    by: str,
    now: datetime,
) -> None:
    """The DM that the old secret of a roll stopped working, when its grace ends (none for a grace of 0:
    the roll's own DM said so)."""
    if retiring_at <= now:
        return
    data = JobData(retiring_at=retiring_at, old_masked=old_masked, by=by)
    await tx.schedule_job(where.job(JobKind.GRACE_END, due_at=retiring_at, now=now, key_row_id=key_row_id, data=data))


async def close_nudges(
    tx: Transaction,
    actor: Actor,
    *,
    key: KeyRecord,
    project: str,
    decision: Decision,
    kinds: Collection[JobKind],
    at: datetime,
    until: datetime | None = None,
    origin: str | None = None,
) -> list[Job]:
    """Record ``decision`` on the key's sent, undecided nudges of ``kinds`` and queue the update of every
    copy of them; the nudges closed (one another decision closed first is not among them)."""
    closed = []
    for job in await tx.open_nudges(key.id):
        if job.kind not in kinds or not await tx.decide_nudge(job.id, by=actor.user_id, decision=decision, at=at):
            continue
        closed.append(job)
        for recipient in job.data.recipients:
            await tx.notify(
                Notice(
                    kind=NoticeKind.NUDGE_DECIDED,
                    recipient=recipient,
                    team_id=job.team_id,
                    enterprise_id=job.enterprise_id,
                    actor=actor.user_id,
                    at=at,
                    project=project,
                    key_name=key.name,
                    key_masked=key.masked,
                    nudge=job.id,
                    decision=decision.value,
                    until=until,
                    origin=origin,
                )
            )
    return closed

"""Scheduled work: what a due job does (``JobService``), and the loop that runs due jobs (``JobRunner``).

A job decides what to send and queues it in the outbox in one transaction, the one that marks it done
(``finish_job``), so each job's DMs commit once however many workers claimed it; the outbox worker
sends them, with its retries and dead letters. Every job re-checks at fire time that it still applies
(bot/domain/jobs.py); one that no longer does is marked ``skipped`` and sends nothing.

``JobRunner`` claims due jobs with a lease (bot/ports.py ``Jobs``), fires them one by one, and retries one
that failed later (exponential backoff, at most an hour). Once an hour (by its clock) it makes sure every
organization has its daily stale sweep pending. ``start()`` runs it until ``stop()``.
"""

import asyncio
import contextlib
import logging
import secrets
from dataclasses import replace
from datetime import datetime, timedelta

from bot.domain.errors import Unavailable
from bot.domain.jobs import (
    NUDGES,
    REQUEST_JOBS,
    SWEEP_EVERY,
    SWEEP_LOOKAHEAD,
    Decision,
    Job,
    JobData,
    JobKind,
    backoff,
    expiry_nudge_applies,
    stale_moment,
    stale_since,
)
from bot.domain.model import KeyRecord, Project
from bot.domain.notices import Notice, NoticeKind
from bot.ports import Jobs, Transaction
from bot.services.base import Clock, Service
from bot.services.reminders import Where, schedule_expiry_nudges
from bot.services.requests import expire_request

log = logging.getLogger("keybot.jobs")

SWEEP_CHECK = timedelta(hours=1)


class JobService(Service):
    """What each kind of job does when it falls due."""

    async def ensure_sweeps(self) -> int:
        """Give every organization without one a stale sweep, due now; how many were added."""
        async with self._uow.transaction() as tx:
            now = self._clock()
            added = 0
            for org in await tx.orgs_without_sweep():
                where = Where(org_id=org.id, team_id=org.team_id)
                sweep = where.job(JobKind.STALE_SWEEP, due_at=now, now=now, key_row_id=None, data=JobData())
                added += await tx.schedule_job(sweep)
        return added

    async def fire(self, job: Job) -> int:
        """Do what ``job`` is for, once; how many DMs it queued (0 when it no longer applies, or when
        another worker or a change finished it first)."""
        async with self._uow.transaction() as tx:
            current = await tx.job(job.id)
            if current is None or current.done_at is not None:  # its key was deleted, or it is done
                return 0
            now = self._clock()
            if current.kind is JobKind.STALE_SWEEP:
                await self._sweep(tx, current, now)
                return 0
            if current.kind in REQUEST_JOBS:
                queued = await expire_request(tx, current, now=now, origin=self._origin)
            else:
                queued = await self._remind(tx, current, now)
        if queued:
            self._on_notify()
        return queued

    async def _sweep(self, tx: Transaction, job: Job, now: datetime) -> None:
        """Schedule a stale nudge for each stale key (once per period of disuse), the expiry nudges of
        keys expiring soon (those already there stay as they are), and the next sweep."""
        if not await tx.finish_job(job.id, at=now):
            return
        where = Where.of_job(job)
        policy = await tx.org_policy(job.org_id)
        for key in await tx.stale_keys(job.org_id, unused_since=now - policy.stale_after, now=now):
            since = stale_since(last_used_at=key.last_used_at, created_at=key.created_at)
            moment = stale_moment(since, stale_after=policy.stale_after, now=now)
            if moment is not None:
                nudge = where.job(JobKind.STALE_NUDGE, due_at=moment, now=now, key_row_id=key.id, data=JobData(since=since))
                await tx.schedule_job(nudge)
        for key in await tx.expiring_keys(job.org_id, after=now, until=now + SWEEP_LOOKAHEAD):
            await schedule_expiry_nudges(tx, where, key_row_id=key.id, expires_at=key.expires_at, now=now)
        await tx.schedule_job(
            where.job(JobKind.STALE_SWEEP, due_at=now + SWEEP_EVERY, now=now, key_row_id=None, data=JobData())
        )

    async def _remind(self, tx: Transaction, job: Job, now: datetime) -> int:
        """A reminder to every owner of the key's project, if it still applies."""
        key = await tx.key_by_row_id(job.key_row_id) if job.key_row_id is not None else None
        project = await tx.project_by_id(key.project_id) if key is not None else None
        notice = None if key is None or project is None else await self._notice(tx, job, key, project, now)
        if notice is None or project is None:
            await tx.finish_job(job.id, at=now, decision=Decision.SKIPPED)
            return 0
        recipients = await tx.project_owners(org_id=project.org_id, project_id=project.id)
        token = secrets.token_urlsafe(12) if job.kind in NUDGES else None
        if not await tx.finish_job(job.id, at=now, data=replace(job.data, recipients=tuple(recipients), token=token)):
            return 0  # another worker fired it: nothing of this one may commit
        for recipient in recipients:
            await tx.notify(replace(notice, recipient=recipient, token=token))
        return len(recipients)

    async def _notice(self, tx: Transaction, job: Job, key: KeyRecord, project: Project, now: datetime) -> Notice | None:
        """The reminder as a notice (its recipient still to fill in), or None if it no longer applies."""
        base = Notice(
            kind=NoticeKind.EXPIRY_NUDGE,
            recipient="",
            team_id=job.team_id,
            enterprise_id=job.enterprise_id,
            actor=key.created_by,
            at=now,
            project=project.name,
            key_name=key.name,
            key_masked=key.masked,
            nudge=job.id,
            origin=self._origin,
        )
        disabled = key.disabled_at is not None
        match job.kind:
            case JobKind.EXPIRY_NUDGE:
                expires_at = job.data.expires_at
                if disabled or expires_at is None or key.expires_at != expires_at:
                    return None  # disabled, or its expiry changed since
                if not expiry_nudge_applies(due_at=job.due_at, expires_at=expires_at, now=now):
                    return None
                return replace(base, until=expires_at)
            case JobKind.STALE_NUDGE:
                since = stale_since(last_used_at=key.last_used_at, created_at=key.created_at)
                expired = key.expires_at is not None and now >= key.expires_at
                if disabled or expired or since != job.data.since:
                    return None  # switched off, expired, or used since
                if now < since + (await tx.org_policy(job.org_id)).stale_after:
                    return None  # the policy now waits longer
                return replace(base, kind=NoticeKind.STALE_NUDGE, since=since)
            case JobKind.GRACE_END:
                if job.data.retiring_at is None or key.retiring_at != job.data.retiring_at:
                    return None
                return replace(
                    base,
                    kind=NoticeKind.GRACE_ENDED,
                    actor=job.data.by or key.created_by,
                    key_masked=job.data.old_masked,
                    until=job.data.retiring_at,
                    nudge=None,
                )
        return None


class JobRunner:
    def __init__(
        self,
        queue: Jobs,
        service: JobService,
        *,
        clock: Clock,
        poll_interval: float = 1.0,
        batch: int = 20,
        lease_seconds: float = 60.0,
        base_backoff: float = 1.0,
    ) -> None:
        self._queue = queue
        self._service = service
        self._clock = clock
        self._poll = poll_interval
        self._batch = batch
        self._lease = lease_seconds
        self._base_backoff = base_backoff
        self._next_sweep_check: datetime | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.claimed = 0  # jobs claimed so far, and their total lag: claimed at minus due at (/metrics)
        self.lag_seconds = 0.0

    def wake(self) -> None:
        """Look for due jobs now (a test moved the clock, or a job was scheduled due at once)."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="keybot-jobs")

    async def stop(self, *, within: float = 5.0) -> None:
        """Stop after the job in progress (cancelled if it takes longer than ``within`` seconds); a job
        claimed and not fired is claimed again when its lease ends."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError):  # wait_for cancels it
                await asyncio.wait_for(self._task, timeout=within)

    async def run_once(self) -> int:
        """Ensure the sweeps (hourly), then claim and fire one batch of due jobs; how many were claimed."""
        now = self._clock()
        if self._next_sweep_check is None or now >= self._next_sweep_check:
            self._next_sweep_check = now + SWEEP_CHECK
            try:
                await self._service.ensure_sweeps()
            except Exception:  # due jobs still run; the sweeps are ensured again in a minute
                log.warning("jobs: could not ensure the stale sweeps; will try again", exc_info=True)
                self._next_sweep_check = now + timedelta(minutes=1)
        claimed = await self._queue.claim_jobs(limit=self._batch, now=now, lease_seconds=self._lease)
        self.claimed += len(claimed)
        self.lag_seconds += sum(max((now - job.due_at).total_seconds(), 0.0) for job in claimed)
        for job in claimed:
            if self._stopping:
                break
            try:
                await self._service.fire(job)
            except Exception as err:
                delay = backoff(job.attempts, base=self._base_backoff)
                if isinstance(err, Unavailable):
                    log.warning("jobs: database unavailable while firing job %s; retry in %s", job.id, delay)
                else:
                    log.exception("jobs: job %s (%s) failed; retry in %s", job.id, job.kind.value, delay)
                with contextlib.suppress(Exception):  # else its lease runs out and it is claimed again
                    await self._queue.retry_job(job.id, at=self._clock() + delay)
        return len(claimed)

    async def run(self) -> None:
        while not self._stopping:
            try:
                claimed = await self.run_once()
            except Unavailable:
                claimed = 0
                log.warning("jobs: database unavailable; will retry")
            except Exception:
                claimed = 0
                log.exception("jobs: unexpected error; will retry")
            if claimed and not self._stopping:
                continue  # more may be due (a sweep schedules nudges due at once)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
            self._wake.clear()

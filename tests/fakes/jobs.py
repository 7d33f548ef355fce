"""Scheduled jobs in memory: ``MemoryJobRows`` (``bot.ports.JobRows``, inherited by ``MemoryTransaction``)
and ``MemoryJobQueue`` (``Jobs`` and ``NudgeMessages``, inherited by ``MemoryStore``), following the
ports' docstrings: one job per (kind, key, due moment), one pending sweep per org, claims with a lease."""

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.domain.jobs import NUDGES, Decision, Job, JobData, JobKind, NewJob
from bot.domain.model import KeyRecord, Org
from tests.fakes.state import State

if TYPE_CHECKING:
    import asyncio

    from bot.ports import JobRows, Jobs, NudgeMessages


@dataclasses.dataclass(slots=True)
class JobRow:
    id: int
    kind: JobKind
    due_at: datetime
    org_id: int
    team_id: str
    enterprise_id: str | None
    key_row_id: int | None
    data: JobData
    created_at: datetime
    attempts: int = 0
    claimed_until: datetime | None = None
    done_at: datetime | None = None
    decision: Decision | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    request_id: int | None = None

    def as_job(self) -> Job:
        return Job(
            id=self.id,
            kind=self.kind,
            due_at=self.due_at,
            org_id=self.org_id,
            team_id=self.team_id,
            enterprise_id=self.enterprise_id,
            key_row_id=self.key_row_id,
            data=self.data,
            attempts=self.attempts,
            done_at=self.done_at,
            decision=self.decision,
            decided_by=self.decided_by,
            decided_at=self.decided_at,
            request_id=self.request_id,
        )


class MemoryJobRows:
    _s: State

    def _hit(self, method: str, *, write: bool = False) -> None:
        raise NotImplementedError  # MemoryTransaction's

    def _next_job_id(self) -> int:
        raise NotImplementedError  # MemoryTransaction's

    async def schedule_job(self, job: NewJob, *, revive: bool = False) -> bool:
        self._hit("schedule_job", write=True)
        if job.key_row_id is not None and job.key_row_id not in self._s.keys:
            raise AssertionError("jobs.key_row_id references api_keys")  # the foreign key
        if job.request_id is not None:
            same = []  # an access request's jobs: no key, and not a sweep
        elif job.key_row_id is None:
            same = [
                r
                for r in self._s.jobs.values()
                if r.org_id == job.org_id and r.key_row_id is None and r.request_id is None and r.done_at is None
            ]
        else:
            same = [
                r
                for r in self._s.jobs.values()
                if (r.kind, r.key_row_id, r.due_at) == (job.kind, job.key_row_id, job.due_at)
            ]
        if same:
            if not revive or job.key_row_id is None:
                return False
            row = same[0]
            row.data, row.done_at, row.claimed_until, row.attempts = job.data, None, None, 0
            row.decision, row.decided_by, row.decided_at = None, None, None
            return True
        row_id = self._next_job_id()
        self._s.jobs[row_id] = JobRow(
            id=row_id,
            kind=job.kind,
            due_at=job.due_at,
            org_id=job.org_id,
            team_id=job.team_id,
            enterprise_id=job.enterprise_id,
            key_row_id=job.key_row_id,
            data=job.data,
            created_at=job.created_at,
            request_id=job.request_id,
        )
        return True

    async def job(self, job_id: int) -> Job | None:
        self._hit("job")
        row = self._s.jobs.get(job_id)
        return None if row is None else row.as_job()

    async def finish_job(
        self, job_id: int, *, at: datetime, data: JobData | None = None, decision: Decision | None = None
    ) -> bool:
        self._hit("finish_job", write=True)
        row = self._s.jobs.get(job_id)
        if row is None or row.done_at is not None:
            return False
        row.done_at, row.claimed_until = at, None
        if data is not None:
            row.data = data
        if decision is not None:
            row.decision, row.decided_at = decision, at
        return True

    async def cancel_jobs(self, key_row_id: int, *, kinds: Sequence[JobKind], at: datetime) -> int:
        self._hit("cancel_jobs", write=True)
        doomed = [r for r in self._s.jobs.values() if r.key_row_id == key_row_id and r.kind in kinds and r.done_at is None]
        for row in doomed:
            row.done_at, row.claimed_until, row.decision, row.decided_at = at, None, Decision.CANCELLED, at
        return len(doomed)

    async def decide_nudge(self, job_id: int, *, by: str | None, decision: Decision, at: datetime) -> bool:
        self._hit("decide_nudge", write=True)
        row = self._s.jobs.get(job_id)
        if row is None or row.done_at is None or row.decision is not None:
            return False
        row.decision, row.decided_by, row.decided_at = decision, by, at
        return True

    async def open_nudges(self, key_row_id: int) -> list[Job]:
        self._hit("open_nudges")
        return [
            r.as_job()
            for _, r in sorted(self._s.jobs.items())
            if r.key_row_id == key_row_id and r.kind in NUDGES and r.done_at is not None and r.decision is None
        ]

    async def orgs_without_sweep(self) -> list[Org]:
        self._hit("orgs_without_sweep")
        swept = {r.org_id for r in self._s.jobs.values() if r.kind is JobKind.STALE_SWEEP and r.done_at is None}
        return [org for _, org in sorted(self._s.orgs.items()) if org.id not in swept]

    def _org_keys(self, org_id: int) -> list[KeyRecord]:
        return [
            row.as_record()
            for _, row in sorted(self._s.keys.items())
            if self._s.projects[row.project_id].org_id == org_id
        ]

    async def stale_keys(self, org_id: int, *, unused_since: datetime, now: datetime) -> list[KeyRecord]:
        self._hit("stale_keys")
        return [
            k
            for k in self._org_keys(org_id)
            if (k.last_used_at or k.created_at) <= unused_since
            and k.disabled_at is None
            and (k.expires_at is None or k.expires_at > now)
        ]

    async def expiring_keys(self, org_id: int, *, after: datetime, until: datetime) -> list[KeyRecord]:
        self._hit("expiring_keys")
        return [k for k in self._org_keys(org_id) if k.expires_at is not None and after < k.expires_at <= until]


class MemoryJobQueue:
    state: State
    _lock: "asyncio.Lock"

    def hit(self, method: str) -> None:
        raise NotImplementedError  # MemoryStore's

    async def claim_jobs(self, *, limit: int, now: datetime, lease_seconds: float) -> Sequence[Job]:
        self.hit("claim_jobs")
        async with self._lock:
            due = sorted(
                (
                    r
                    for r in self.state.jobs.values()
                    if r.done_at is None and r.due_at <= now and (r.claimed_until is None or r.claimed_until <= now)
                ),
                key=lambda r: (r.due_at, r.id),
            )[:limit]
            for row in due:
                row.claimed_until = now + timedelta(seconds=lease_seconds)
                row.attempts += 1
            return [row.as_job() for row in due]

    async def retry_job(self, job_id: int, *, at: datetime) -> None:
        self.hit("retry_job")
        async with self._lock:
            row = self.state.jobs.get(job_id)
            if row is not None and row.done_at is None:
                row.claimed_until = at

    async def record_nudge_dm(self, *, job_id: int, user_id: str, channel: str, ts: str, at: datetime) -> None:
        self.hit("record_nudge_dm")
        async with self._lock:
            self.state.nudge_dms[(job_id, user_id)] = (channel, ts)

    async def nudge_dm(self, *, job_id: int, user_id: str) -> tuple[str, str] | None:
        self.hit("nudge_dm")
        return self.state.nudge_dms.get((job_id, user_id))

    # -- test helpers (not ports; not counted) --

    def jobs(self, kind: JobKind | None = None) -> list[JobRow]:
        return [r for _, r in sorted(self.state.jobs.items()) if kind is None or r.kind is kind]


if TYPE_CHECKING:

    def _implements_ports(rows: MemoryJobRows, queue: MemoryJobQueue) -> tuple["JobRows", "Jobs", "NudgeMessages"]:
        return rows, queue, queue

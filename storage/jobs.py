"""Scheduled work in the ``jobs`` table (bot/domain/jobs.py) and where reminder DMs went.

- ``SqlJobRows``: the jobs part of ``bot.ports.Transaction`` (``JobRows``); ``SqlTransaction`` inherits
  it, so a job is scheduled, finished, cancelled or decided in the transaction of the change it is
  about.
- ``SqlJobQueue``: the ``Jobs`` and ``NudgeMessages`` ports on an engine: claiming due jobs like the
  outbox (an UPDATE of the rows a ``FOR UPDATE SKIP LOCKED`` sub-select picked on PostgreSQL; one
  atomic statement on SQLite), so with several instances each job is claimed by one worker at a time.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.domain.jobs import NUDGES, Decision, Job, JobData, JobKind, NewJob
from bot.domain.model import KeyRecord, Org
from storage.engine import single_statement
from storage.errors import translating
from storage.statements import KEY_COLUMNS
from storage.tables import api_keys, jobs, nudge_messages, orgs, projects

if TYPE_CHECKING:
    from bot.ports import JobRows, Jobs, NudgeMessages

JOB_COLUMNS = (
    jobs.c.id,
    jobs.c.kind,
    jobs.c.due_at,
    jobs.c.org_id,
    jobs.c.team_id,
    jobs.c.enterprise_id,
    jobs.c.key_row_id,
    jobs.c.payload,
    jobs.c.attempts,
    jobs.c.done_at,
    jobs.c.decision,
    jobs.c.decided_by,
    jobs.c.decided_at,
    jobs.c.request_id,
)


def job_of(row: Row[Any] | tuple[Any, ...]) -> Job:
    values: tuple[Any, ...] = tuple(row)
    job_id, kind, due_at, org_id, team_id, enterprise_id, key_row_id, payload, attempts, *rest = values
    done_at, decision, decided_by, decided_at, request_id = rest
    return Job(
        id=job_id,
        kind=JobKind(kind),
        due_at=due_at,
        org_id=org_id,
        team_id=team_id,
        enterprise_id=enterprise_id,
        key_row_id=key_row_id,
        data=JobData.from_json(payload),
        attempts=attempts,
        done_at=done_at,
        decision=Decision(decision) if decision else None,
        decided_by=decided_by,
        decided_at=decided_at,
        request_id=request_id,
    )


def _insert(dialect: str, table: Any) -> postgresql.Insert | sqlite.Insert:
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


class SqlJobRows:
    """Jobs on one transaction's connection."""

    _conn: AsyncConnection

    @translating
    async def schedule_job(self, job: NewJob, *, revive: bool = False) -> bool:
        stmt = _insert(self._conn.dialect.name, jobs).values(
            kind=job.kind.value,
            due_at=job.due_at,
            key_row_id=job.key_row_id,
            org_id=job.org_id,
            team_id=job.team_id,
            enterprise_id=job.enterprise_id,
            payload=job.data.to_json(),
            attempts=0,
            created_at=job.created_at,
            request_id=job.request_id,
        )
        if revive and job.key_row_id is not None:
            upsert = stmt.on_conflict_do_update(
                index_elements=["kind", "key_row_id", "due_at"],
                set_={
                    "payload": stmt.excluded.payload,
                    "done_at": None,
                    "claimed_until": None,
                    "attempts": 0,
                    "decision": None,
                    "decided_by": None,
                    "decided_at": None,
                },
            )
            return (await self._conn.execute(upsert)).rowcount == 1
        return (await self._conn.execute(stmt.on_conflict_do_nothing())).rowcount == 1

    @translating
    async def job(self, job_id: int) -> Job | None:
        row = (await self._conn.execute(select(*JOB_COLUMNS).where(jobs.c.id == job_id))).first()
        return None if row is None else job_of(row)

    @translating
    async def finish_job(
        self, job_id: int, *, at: datetime, data: JobData | None = None, decision: Decision | None = None
    ) -> bool:
        values: dict[str, Any] = {"done_at": at, "claimed_until": None}
        if data is not None:
            values["payload"] = data.to_json()
        if decision is not None:
            values.update(decision=decision.value, decided_at=at)
        stmt = update(jobs).where(jobs.c.id == job_id, jobs.c.done_at.is_(None)).values(values)
        return (await self._conn.execute(stmt)).rowcount == 1

    @translating
    async def cancel_jobs(self, key_row_id: int, *, kinds: Sequence[JobKind], at: datetime) -> int:
        stmt = (
            update(jobs)
            .where(
                jobs.c.key_row_id == key_row_id,
                jobs.c.kind.in_([kind.value for kind in kinds]),
                jobs.c.done_at.is_(None),
            )
            .values(done_at=at, claimed_until=None, decision=Decision.CANCELLED.value, decided_at=at)
        )
        return int((await self._conn.execute(stmt)).rowcount)

    @translating
    async def decide_nudge(self, job_id: int, *, by: str | None, decision: Decision, at: datetime) -> bool:
        stmt = (
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.done_at.is_not(None), jobs.c.decision.is_(None))
            .values(decision=decision.value, decided_by=by, decided_at=at)
        )
        return (await self._conn.execute(stmt)).rowcount == 1

    @translating
    async def open_nudges(self, key_row_id: int) -> list[Job]:
        stmt = (
            select(*JOB_COLUMNS)
            .where(
                jobs.c.key_row_id == key_row_id,
                jobs.c.kind.in_([kind.value for kind in NUDGES]),
                jobs.c.done_at.is_not(None),
                jobs.c.decision.is_(None),
            )
            .order_by(jobs.c.id)
        )
        return [job_of(row) for row in await self._conn.execute(stmt)]

    @translating
    async def orgs_without_sweep(self) -> list[Org]:
        pending = select(jobs.c.id).where(
            jobs.c.org_id == orgs.c.id,
            jobs.c.kind == JobKind.STALE_SWEEP.value,
            jobs.c.key_row_id.is_(None),
            jobs.c.request_id.is_(None),
            jobs.c.done_at.is_(None),
        )
        stmt = select(orgs.c.id, orgs.c.team_id, orgs.c.name).where(~pending.exists()).order_by(orgs.c.id)
        return [Org(*row) for row in await self._conn.execute(stmt)]

    def _org_keys(self, org_id: int) -> Any:
        return (
            select(*KEY_COLUMNS)
            .join(projects, projects.c.id == api_keys.c.project_id)
            .where(projects.c.org_id == org_id)
            .order_by(api_keys.c.id)
        )

    @translating
    async def stale_keys(self, org_id: int, *, unused_since: datetime, now: datetime) -> list[KeyRecord]:
        k = api_keys.c
        stmt = self._org_keys(org_id).where(
            func.coalesce(k.last_used_at, k.created_at) <= unused_since,
            k.disabled_at.is_(None),
            or_(k.expires_at.is_(None), k.expires_at > now),
        )
        return [KeyRecord(*row) for row in await self._conn.execute(stmt)]

    @translating
    async def expiring_keys(self, org_id: int, *, after: datetime, until: datetime) -> list[KeyRecord]:
        k = api_keys.c
        stmt = self._org_keys(org_id).where(and_(k.expires_at > after, k.expires_at <= until))
        return [KeyRecord(*row) for row in await self._conn.execute(stmt)]


class SqlJobQueue:
    """``Jobs`` and ``NudgeMessages`` on an engine; each call is one short statement."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._single = single_statement(engine)
        self._dialect = engine.dialect.name

    @translating
    async def claim_jobs(self, *, limit: int, now: datetime, lease_seconds: float) -> Sequence[Job]:
        j = jobs.c
        waiting = (j.done_at.is_(None), j.due_at <= now, or_(j.claimed_until.is_(None), j.claimed_until <= now))
        due = select(j.id).where(*waiting).order_by(j.due_at, j.id).limit(limit).with_for_update(skip_locked=True)
        stmt = (
            update(jobs)
            .where(j.id.in_(due.scalar_subquery()))
            .values(claimed_until=now + timedelta(seconds=lease_seconds), attempts=j.attempts + 1)
            .returning(*JOB_COLUMNS)
        )
        async with self._single.connect() as conn:
            # A read first: most polls find nothing due, and then take no write lock (SQLite's is global).
            if (await conn.execute(select(j.id).where(*waiting).limit(1))).first() is None:
                return []
            rows = (await conn.execute(stmt)).all()
            await conn.commit()
        return sorted((job_of(row) for row in rows), key=lambda job: (job.due_at, job.id))

    @translating
    async def retry_job(self, job_id: int, *, at: datetime) -> None:
        stmt = update(jobs).where(jobs.c.id == job_id, jobs.c.done_at.is_(None)).values(claimed_until=at)
        async with self._single.connect() as conn:
            await conn.execute(stmt)
            await conn.commit()

    @translating
    async def record_nudge_dm(self, *, job_id: int, user_id: str, channel: str, ts: str, at: datetime) -> None:
        stmt = _insert(self._dialect, nudge_messages).values(
            job_id=job_id, user_id=user_id, channel=channel, ts=ts, sent_at=at
        )
        upsert = stmt.on_conflict_do_update(
            index_elements=["job_id", "user_id"],
            set_={"channel": stmt.excluded.channel, "ts": stmt.excluded.ts, "sent_at": stmt.excluded.sent_at},
        )
        async with self._single.connect() as conn:
            await conn.execute(upsert)
            await conn.commit()

    @translating
    async def nudge_dm(self, *, job_id: int, user_id: str) -> tuple[str, str] | None:
        n = nudge_messages.c
        stmt = select(n.channel, n.ts).where(n.job_id == job_id, n.user_id == user_id)
        async with self._single.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else (row.channel, row.ts)


if TYPE_CHECKING:  # mypy proves that these implement the ports

    def _implements_ports(rows: SqlJobRows, queue: SqlJobQueue) -> tuple["JobRows", "Jobs", "NudgeMessages"]:
        return rows, queue, queue

"""The jobs table (storage/jobs.py) on SQLite and PostgreSQL: a reminder is scheduled once, one sweep is
pending per org, a job is finished and decided once, claims hold a lease and never hand one job to two
concurrent claimers, a key's jobs go with it, and where reminder DMs went is remembered."""

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.jobs import Decision, JobData, JobKind, NewJob
from storage import SqlStore, downgrade, make_engine, upgrade, writer
from storage.jobs import SqlJobQueue
from tests.storage.helpers import T0, TEAM, World, new_key, reset_postgres

DAY = timedelta(days=1)


def nudge(world: World, key_row_id: int, *, due: datetime = T0, kind: JobKind = JobKind.EXPIRY_NUDGE, **data: object) -> NewJob:
    return NewJob(
        kind=kind,
        due_at=due,
        org_id=world.org.id,
        team_id=TEAM,
        key_row_id=key_row_id,
        created_at=T0,
        data=JobData(expires_at=T0 + 7 * DAY, **data),  # type: ignore[arg-type]
    )


def sweep(world: World, *, due: datetime = T0) -> NewJob:
    return NewJob(kind=JobKind.STALE_SWEEP, due_at=due, org_id=world.org.id, team_id=TEAM, created_at=T0)


async def a_key(store: SqlStore, world: World, name: str = "ci", **fields: object) -> int:
    async with store.transaction() as tx:
        key = await tx.add_key(new_key(world.project.id, name))
        if fields:
            await store_key_fields(tx, key.id, fields)
    return key.id


async def store_key_fields(tx: object, row_id: int, fields: dict[str, object]) -> None:
    sets = ", ".join(f"{name} = :{name}" for name in fields)
    await tx._conn.execute(text(f"UPDATE api_keys SET {sets} WHERE id = :id"), {"id": row_id, **fields})  # type: ignore[attr-defined]


async def schedule(store: SqlStore, job: NewJob, *, revive: bool = False) -> bool:
    async with store.transaction() as tx:
        return await tx.schedule_job(job, revive=revive)


async def test_a_reminder_is_scheduled_once_per_kind_key_and_moment(store: SqlStore, world: World) -> None:
    key = await a_key(store, world)
    assert await schedule(store, nudge(world, key)) is True
    assert await schedule(store, nudge(world, key)) is False
    assert await schedule(store, nudge(world, key, due=T0 + DAY)) is True
    assert await schedule(store, nudge(world, key, kind=JobKind.STALE_NUDGE)) is True
    claimed = await SqlJobQueue(store.engine).claim_jobs(limit=9, now=T0 + DAY, lease_seconds=60)
    assert [(j.kind, j.due_at) for j in claimed] == [
        (JobKind.EXPIRY_NUDGE, T0), (JobKind.STALE_NUDGE, T0), (JobKind.EXPIRY_NUDGE, T0 + DAY)
    ]  # oldest due first


async def test_a_job_comes_back_as_it_was_scheduled(store: SqlStore, world: World) -> None:
    key = await a_key(store, world)
    await schedule(store, nudge(world, key, due=T0 + DAY))
    [job] = await SqlJobQueue(store.engine).claim_jobs(limit=9, now=T0 + DAY, lease_seconds=60)
    assert (job.kind, job.due_at, job.org_id, job.team_id, job.key_row_id, job.attempts) == (
        JobKind.EXPIRY_NUDGE, T0 + DAY, world.org.id, TEAM, key, 1
    )
    assert job.data == JobData(expires_at=T0 + 7 * DAY) and job.done_at is None and job.decision is None


async def test_a_cancelled_reminder_stays_cancelled_unless_revived(store: SqlStore, world: World) -> None:
    key = await a_key(store, world)
    await schedule(store, nudge(world, key))
    async with store.transaction() as tx:
        assert await tx.cancel_jobs(key, kinds=[JobKind.EXPIRY_NUDGE], at=T0) == 1
        assert await tx.cancel_jobs(key, kinds=[JobKind.EXPIRY_NUDGE], at=T0) == 0
    queue = SqlJobQueue(store.engine)
    assert await queue.claim_jobs(limit=9, now=T0 + DAY, lease_seconds=60) == []
    assert await schedule(store, nudge(world, key)) is False  # a sweep does not bring it back
    assert await schedule(store, nudge(world, key, old_masked="new payload"), revive=True) is True
    [job] = await queue.claim_jobs(limit=9, now=T0 + DAY, lease_seconds=60)
    assert job.data.old_masked == "new payload" and job.decision is None and job.attempts == 1


async def test_one_sweep_is_pending_per_organization(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        assert [o.id for o in await tx.orgs_without_sweep()] == [world.org.id]
    assert await schedule(store, sweep(world)) is True
    assert await schedule(store, sweep(world, due=T0 + DAY)) is False
    [job] = await SqlJobQueue(store.engine).claim_jobs(limit=9, now=T0, lease_seconds=60)
    async with store.transaction() as tx:
        assert await tx.orgs_without_sweep() == []
        assert await tx.finish_job(job.id, at=T0) is True
        assert await tx.schedule_job(sweep(world, due=T0 + DAY)) is True  # the next one, once this is done


async def test_two_instances_ensuring_sweeps_at_once_add_one(store: SqlStore, world: World) -> None:
    results = await asyncio.gather(*(schedule(store, sweep(world)) for _ in range(10)), return_exceptions=True)
    assert results.count(True) == 1 and results.count(False) == 9


async def test_a_job_is_finished_once_with_its_payload(store: SqlStore, world: World) -> None:
    key = await a_key(store, world)
    await schedule(store, nudge(world, key))
    [job] = await SqlJobQueue(store.engine).claim_jobs(limit=9, now=T0, lease_seconds=60)
    fired = JobData(expires_at=T0 + 7 * DAY, recipients=("U1", "U2"), token="tok")
    async with store.transaction() as tx:
        assert await tx.finish_job(job.id, at=T0, data=fired) is True
        assert await tx.finish_job(job.id, at=T0, data=fired) is False
        again = await tx.job(job.id)
    assert again is not None and again.data == fired and again.done_at == T0 and again.decision is None
    assert await SqlJobQueue(store.engine).claim_jobs(limit=9, now=T0 + DAY, lease_seconds=60) == []


async def test_a_fired_nudge_is_decided_once_and_then_no_longer_open(store: SqlStore, world: World) -> None:
    key = await a_key(store, world)
    await schedule(store, nudge(world, key))
    await schedule(store, nudge(world, key, due=T0 + DAY))  # not fired yet: not open
    [first, _] = await SqlJobQueue(store.engine).claim_jobs(limit=9, now=T0 + DAY, lease_seconds=1)
    async with store.transaction() as tx:
        assert await tx.decide_nudge(first.id, by="U1", decision=Decision.KEPT, at=T0) is False  # not sent yet
        await tx.finish_job(first.id, at=T0, data=JobData(recipients=("U1",), token="t"))
        assert [j.id for j in await tx.open_nudges(key)] == [first.id]
        assert await tx.decide_nudge(first.id, by="U1", decision=Decision.EXTENDED, at=T0 + DAY) is True
        assert await tx.decide_nudge(first.id, by="U2", decision=Decision.KEPT, at=T0 + DAY) is False
        assert await tx.open_nudges(key) == []
        decided = await tx.job(first.id)
    assert decided is not None and (decided.decision, decided.decided_by, decided.decided_at) == (
        Decision.EXTENDED, "U1", T0 + DAY
    )


async def test_twenty_concurrent_deciders_make_one_decision(store: SqlStore, world: World) -> None:
    key = await a_key(store, world)
    await schedule(store, nudge(world, key))
    [job] = await SqlJobQueue(store.engine).claim_jobs(limit=9, now=T0, lease_seconds=60)
    async with store.transaction() as tx:
        await tx.finish_job(job.id, at=T0)

    async def decide(n: int) -> bool:
        async with store.transaction() as tx:
            return await tx.decide_nudge(job.id, by=f"U{n}", decision=Decision.KEPT, at=T0)

    assert sorted(await asyncio.gather(*(decide(n) for n in range(20)))) == [False] * 19 + [True]


async def test_claims_hold_a_lease_and_a_retry_waits_its_time(store: SqlStore, world: World) -> None:
    key = await a_key(store, world)
    await schedule(store, nudge(world, key, due=T0 + DAY))
    queue = SqlJobQueue(store.engine)
    assert await queue.claim_jobs(limit=9, now=T0, lease_seconds=60) == []  # not due yet
    [job] = await queue.claim_jobs(limit=9, now=T0 + DAY, lease_seconds=60)
    assert await queue.claim_jobs(limit=9, now=T0 + DAY + timedelta(seconds=59), lease_seconds=60) == []
    [again] = await queue.claim_jobs(limit=9, now=T0 + DAY + timedelta(seconds=60), lease_seconds=60)
    assert (again.id, again.attempts) == (job.id, 2)
    await queue.retry_job(job.id, at=T0 + 2 * DAY)
    assert await queue.claim_jobs(limit=9, now=T0 + 2 * DAY - timedelta(seconds=1), lease_seconds=60) == []
    assert [j.attempts for j in await queue.claim_jobs(limit=9, now=T0 + 2 * DAY, lease_seconds=60)] == [3]


async def test_concurrent_claimers_on_separate_connections_never_get_the_same_job(
    store: SqlStore, world: World, url: str
) -> None:
    key = await a_key(store, world)
    for n in range(60):
        await schedule(store, nudge(world, key, due=T0 + timedelta(seconds=n)))
    engines = [make_engine(url) for _ in range(4)]
    try:
        queues = [SqlJobQueue(engine) for engine in engines]

        async def worker(queue: SqlJobQueue) -> list[int]:
            mine: list[int] = []
            while batch := await queue.claim_jobs(limit=3, now=T0 + DAY, lease_seconds=600):
                mine += [j.id for j in batch]
                await asyncio.sleep(0)
            return mine

        claimed = await asyncio.gather(*(worker(q) for q in queues + queues))
    finally:
        for engine in engines:
            await engine.dispose()
    every = [job_id for mine in claimed for job_id in mine]
    assert len(every) == len(set(every)) == 60


async def test_a_claimer_skips_jobs_another_holds_instead_of_waiting_on_postgresql(pg_url: str) -> None:
    engine = make_engine(pg_url)
    await reset_postgres(engine)
    await upgrade(engine)
    store = SqlStore(engine)
    try:
        async with store.transaction() as tx:
            for n in range(3):
                org = await tx.ensure_org(team_id=f"T{n}", name="Acme", at=T0)
                await tx.schedule_job(NewJob(JobKind.STALE_SWEEP, due_at=T0, org_id=org.id, team_id=f"T{n}", created_at=T0))
        queue = SqlJobQueue(engine)
        async with writer(engine).begin() as holder:
            await holder.execute(text("SELECT id FROM jobs WHERE id = 1 FOR UPDATE"))
            claimed = await asyncio.wait_for(queue.claim_jobs(limit=9, now=T0, lease_seconds=60), timeout=5)
        assert sorted(j.id for j in claimed) == [2, 3]
        assert [j.id for j in await queue.claim_jobs(limit=9, now=T0, lease_seconds=60)] == [1]
    finally:
        await store.close()


async def test_a_keys_jobs_go_with_it(store: SqlStore, world: World) -> None:
    key = await a_key(store, world)
    await schedule(store, nudge(world, key))
    await schedule(store, sweep(world))
    async with store.transaction() as tx:
        await tx.delete_key(key)
    claimed = await SqlJobQueue(store.engine).claim_jobs(limit=9, now=T0, lease_seconds=60)
    assert [j.kind for j in claimed] == [JobKind.STALE_SWEEP]  # the org's sweep has no key


async def test_where_a_reminder_went_is_remembered_per_recipient(store: SqlStore) -> None:
    queue = SqlJobQueue(store.engine)
    assert await queue.nudge_dm(job_id=1, user_id="U1") is None
    await queue.record_nudge_dm(job_id=1, user_id="U1", channel="DU1", ts="1.000001", at=T0)
    await queue.record_nudge_dm(job_id=1, user_id="U2", channel="DU2", ts="1.000002", at=T0)
    await queue.record_nudge_dm(job_id=1, user_id="U1", channel="DU1", ts="1.000009", at=T0)  # sent again
    assert await queue.nudge_dm(job_id=1, user_id="U1") == ("DU1", "1.000009")
    assert await queue.nudge_dm(job_id=1, user_id="U2") == ("DU2", "1.000002")


async def test_stale_and_expiring_keys_of_an_organization(store: SqlStore, world: World) -> None:
    used_long_ago = await a_key(store, world, "a", last_used_at=T0 - 100 * DAY)
    await a_key(store, world, "b", last_used_at=T0 - DAY)
    never_used = await a_key(store, world, "c")  # made at T0
    await a_key(store, world, "d", disabled_at=T0 - 200 * DAY, last_used_at=T0 - 200 * DAY)
    await a_key(store, world, "e", expires_at=T0 - DAY, last_used_at=T0 - 200 * DAY)
    soon = await a_key(store, world, "f", expires_at=T0 + 3 * DAY)
    await a_key(store, world, "g", expires_at=T0 + 30 * DAY)
    async with store.transaction() as tx:
        stale = await tx.stale_keys(world.org.id, unused_since=T0 - 90 * DAY, now=T0)
        assert [k.id for k in stale] == [used_long_ago]
        stale_later = await tx.stale_keys(world.org.id, unused_since=T0 + DAY, now=T0 + 91 * DAY)
        assert never_used in [k.id for k in stale_later] and soon not in [k.id for k in stale_later]
        expiring = await tx.expiring_keys(world.org.id, after=T0, until=T0 + 9 * DAY)
        assert [k.id for k in expiring] == [soon]
        assert await tx.stale_keys(world.org.id + 1, unused_since=T0, now=T0) == []


async def test_migration_0005_adds_the_jobs_tables_and_its_downgrade_removes_them(engine: AsyncEngine) -> None:
    def tables(conn: Connection) -> set[str]:
        return set(inspect(conn).get_table_names())

    await upgrade(engine, "0004")
    async with engine.connect() as conn:
        assert not {"jobs", "nudge_messages"} & await conn.run_sync(tables)
    await upgrade(engine, "0005")
    async with engine.connect() as conn:
        assert {"jobs", "nudge_messages"} <= await conn.run_sync(tables)
        indexes = {i["name"] for i in await conn.run_sync(lambda c: inspect(c).get_indexes("jobs"))}
    assert {"ix_jobs_done_at_due_at", "ix_jobs_key_row_id", "uq_jobs_pending_sweep"} <= indexes
    await downgrade(engine, "0004")
    async with engine.connect() as conn:
        assert not {"jobs", "nudge_messages"} & await conn.run_sync(tables)

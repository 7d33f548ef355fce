"""The access_requests table (storage/requests.py) on SQLite and PostgreSQL: one pending request per
requester and project, every move of a request's state taken once (two racing decisions: one wins),
what a user may decide and what they asked for, a request's jobs beside an org's pending sweep, and
migration 0006 up and down."""

import asyncio
from datetime import timedelta

from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.errors import Conflict
from bot.domain.jobs import JobData, JobKind, NewJob
from bot.domain.requests import NewAccessRequest, RequestState
from storage import SqlStore, downgrade, upgrade
from tests.storage.helpers import T0, TEAM, World, new_key

WRITER = "UWRITER1"
APPROVERS = ("UOWNER01", "UOWNER02")


def asked(world: World, requester: str = WRITER, reason: str | None = "the importer") -> NewAccessRequest:
    return NewAccessRequest(
        org_id=world.org.id,
        project_id=world.project.id,
        team_id=TEAM,
        requester=requester,
        created_at=T0,
        due_at=T0 + timedelta(hours=72),
        approvers=APPROVERS,
        token="t" * 16,
        reason=reason,
        expires="30d",
    )


async def test_a_request_reads_back_and_a_second_pending_one_for_the_same_project_is_a_conflict(
    store: SqlStore, world: World
) -> None:
    async with store.transaction() as tx:
        request = await tx.add_request(asked(world))
    assert (request.project, request.state, request.approvers, request.expires) == (
        "Web", RequestState.PENDING, APPROVERS, "30d",
    )
    try:
        async with store.transaction() as tx:
            await tx.add_request(asked(world, reason="again"))
        raise AssertionError("a second pending request was stored")
    except Conflict:
        pass
    async with store.transaction() as tx:
        assert await tx.move_request(request.id, from_states=[RequestState.PENDING], to=RequestState.DENIED, at=T0, by=APPROVERS[0])
        again = await tx.add_request(asked(world, reason="again"))  # none pending now
    assert again.id != request.id


async def test_of_two_racing_decisions_exactly_one_moves_the_request(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        request = await tx.add_request(asked(world))

    async def decide(to: RequestState, by: str) -> bool:
        async with store.transaction() as tx:
            return await tx.move_request(request.id, from_states=[RequestState.PENDING], to=to, at=T0, by=by)

    results = await asyncio.gather(decide(RequestState.APPROVED, APPROVERS[0]), decide(RequestState.DENIED, APPROVERS[1]))
    assert sorted(results) == [False, True]
    async with store.transaction() as tx:
        found = await tx.access_request(request.id)
    assert found is not None and (found.state, found.decided_by) in {
        (RequestState.APPROVED, APPROVERS[0]), (RequestState.DENIED, APPROVERS[1]),
    }


async def test_a_revealed_request_names_its_key_and_is_found_by_it(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        request = await tx.add_request(asked(world))
        until = T0 + timedelta(hours=24)
        assert await tx.move_request(request.id, from_states=[RequestState.PENDING], to=RequestState.APPROVED, at=T0, by=APPROVERS[0], reveal_until=until)
        key = await tx.add_key(new_key(world.project.id, "request-1"))
        assert await tx.move_request(request.id, from_states=[RequestState.APPROVED], to=RequestState.REVEALED, at=T0, key_row_id=key.id, key_name="request-1")
        assert not await tx.move_request(request.id, from_states=[RequestState.APPROVED], to=RequestState.REVEALED, at=T0)
        found = await tx.request_for_key(key.id)
    assert found is not None and (found.state, found.decided_by, found.reveal_until, found.key_name) == (
        RequestState.REVEALED, APPROVERS[0], until, "request-1",
    )


async def test_requests_seen_by_an_approver_and_by_a_requester(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        first = await tx.add_request(asked(world))
        other = await tx.add_request(asked(world, requester="UADMIN01"))
        assert await tx.move_request(other.id, from_states=[RequestState.PENDING], to=RequestState.DENIED, at=T0, by=APPROVERS[0])
        approver = await tx.requests_seen_by(org_id=world.org.id, user_id=APPROVERS[1], project_id=None, limit=10)
        requester = await tx.requests_seen_by(org_id=world.org.id, user_id=WRITER, project_id=world.project.id, limit=10)
        stranger = await tx.requests_seen_by(org_id=world.org.id, user_id="UOWNER0", project_id=None, limit=10)
        open_ = await tx.open_requests_of(org_id=world.org.id, user_id=WRITER)
    assert [r.id for r in approver] == [first.id]  # pending only; a prefix of an id is not the id
    assert [r.id for r in requester] == [first.id] and stranger == [] and [r.id for r in open_] == [first.id]


async def test_a_requests_jobs_live_beside_the_orgs_pending_sweep(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        request = await tx.add_request(asked(world))
        sweep = NewJob(kind=JobKind.STALE_SWEEP, due_at=T0, org_id=world.org.id, team_id=TEAM, created_at=T0)
        assert await tx.schedule_job(sweep)
        expiry = NewJob(kind=JobKind.REQUEST_EXPIRY, due_at=T0, org_id=world.org.id, team_id=TEAM, created_at=T0, data=JobData(), request_id=request.id)
        assert await tx.schedule_job(expiry)
        assert await tx.orgs_without_sweep() == []
        [job] = await tx.request_jobs(request.id)
    assert (job.kind, job.request_id, job.key_row_id) == (JobKind.REQUEST_EXPIRY, request.id, None)


async def test_migration_0006_adds_the_requests_table_and_its_downgrade_removes_it(engine: AsyncEngine) -> None:
    def tables(conn: Connection) -> set[str]:
        return set(inspect(conn).get_table_names())

    await upgrade(engine, "0005")
    async with engine.connect() as conn:
        assert "access_requests" not in await conn.run_sync(tables)
    await upgrade(engine, "0006")
    async with engine.connect() as conn:
        assert "access_requests" in await conn.run_sync(tables)
        columns = {c["name"] for c in await conn.run_sync(lambda c: inspect(c).get_columns("jobs"))}
    assert "request_id" in columns
    await downgrade(engine, "0005")
    async with engine.connect() as conn:
        assert "access_requests" not in await conn.run_sync(tables)
        columns = {c["name"] for c in await conn.run_sync(lambda c: inspect(c).get_columns("jobs"))}
    assert "request_id" not in columns

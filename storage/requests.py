"""Access requests (bot/domain/requests.py) in the ``access_requests`` table: the requests part of
``bot.ports.Transaction`` (``RequestRows``); ``SqlTransaction`` inherits it, so a request moves from one
state to the next in the transaction of the change that goes with it (its audit event, its DMs, the key
a reveal makes). Every move is one conditional UPDATE: of two racing decisions, on any number of
instances, exactly one finds the row still in the state it expects.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain.errors import Conflict
from bot.domain.jobs import Job
from bot.domain.requests import (
    AccessRequest,
    NewAccessRequest,
    RequestState,
    approvers_from_json,
    approvers_json,
)
from storage.errors import is_unique_violation, translating
from storage.jobs import JOB_COLUMNS, job_of
from storage.tables import access_requests, jobs, projects

if TYPE_CHECKING:
    from bot.ports import RequestRows

_r = access_requests.c
_COLUMNS = (
    _r.id,
    _r.org_id,
    _r.project_id,
    projects.c.name,
    _r.team_id,
    _r.enterprise_id,
    _r.requester,
    _r.reason,
    _r.expires,
    _r.state,
    _r.approvers,
    _r.token,
    _r.created_at,
    _r.due_at,
    _r.decided_by,
    _r.decided_at,
    _r.reveal_until,
    _r.revealed_at,
    _r.key_row_id,
    _r.key_name,
)
DUPLICATE = "a pending request for this project already exists"


def _request(row: Row[Any]) -> AccessRequest:
    values = list(row)
    values[9] = RequestState(values[9])
    values[10] = approvers_from_json(values[10])
    return AccessRequest(*values)


def _select() -> Select[Any]:
    return select(*_COLUMNS).join(projects, projects.c.id == _r.project_id)


class SqlRequestRows:
    """Access requests on one transaction's connection."""

    _conn: AsyncConnection

    @translating
    async def add_request(self, request: NewAccessRequest) -> AccessRequest:
        stmt = (
            access_requests.insert()
            .values(
                org_id=request.org_id,
                project_id=request.project_id,
                team_id=request.team_id,
                enterprise_id=request.enterprise_id,
                requester=request.requester,
                reason=request.reason,
                expires=request.expires,
                state=RequestState.PENDING.value,
                approvers=approvers_json(request.approvers),
                token=request.token,
                created_at=request.created_at,
                due_at=request.due_at,
            )
            .returning(_r.id)
        )
        try:
            async with self._conn.begin_nested():  # the partial unique index decides between two racers
                request_id = int((await self._conn.execute(stmt)).scalar_one())
        except IntegrityError as exc:
            if is_unique_violation(exc):
                raise Conflict(DUPLICATE) from None
            raise
        found = await self.access_request(request_id)
        assert found is not None
        return found

    @translating
    async def access_request(self, request_id: int) -> AccessRequest | None:
        row = (await self._conn.execute(_select().where(_r.id == request_id))).first()
        return None if row is None else _request(row)

    @translating
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
        values: dict[str, Any] = {"state": to.value}
        if tuple(from_states) == (RequestState.PENDING,):  # a decision: an owner's, or keybot's (None)
            values.update(decided_by=by, decided_at=at)
        if reveal_until is not None:
            values["reveal_until"] = reveal_until
        if to is RequestState.REVEALED:
            values.update(revealed_at=at, key_row_id=key_row_id, key_name=key_name)
        stmt = (
            update(access_requests)
            .where(_r.id == request_id, _r.state.in_([state.value for state in from_states]))
            .values(values)
        )
        return (await self._conn.execute(stmt)).rowcount == 1

    @translating
    async def requests_seen_by(
        self, *, org_id: int, user_id: str, project_id: int | None, limit: int
    ) -> list[AccessRequest]:
        where = [_r.org_id == org_id]
        if project_id is not None:
            where.append(_r.project_id == project_id)
        # The approvers column is a JSON list of Slack ids (no quotes or commas inside one): a LIKE on
        # the quoted id finds it, on SQLite and PostgreSQL alike.
        awaiting = (
            _select()
            .where(*where, _r.state == RequestState.PENDING.value, _r.approvers.contains(f'"{user_id}"', autoescape=True))
            .order_by(_r.id.desc())
            .limit(limit)
        )
        own = _select().where(*where, _r.requester == user_id).order_by(_r.id.desc()).limit(limit)
        mine = [_request(row) for row in await self._conn.execute(own)]
        theirs = [_request(row) for row in await self._conn.execute(awaiting)]
        return theirs + [request for request in mine if request.id not in {r.id for r in theirs}]

    @translating
    async def open_requests_of(self, *, org_id: int, user_id: str) -> list[AccessRequest]:
        stmt = (
            _select()
            .where(
                _r.org_id == org_id,
                _r.requester == user_id,
                or_(_r.state == RequestState.PENDING.value, _r.state == RequestState.APPROVED.value),
            )
            .order_by(_r.id)
        )
        return [_request(row) for row in await self._conn.execute(stmt)]

    @translating
    async def request_for_key(self, key_row_id: int) -> AccessRequest | None:
        stmt = _select().where(_r.key_row_id == key_row_id).order_by(_r.id.desc()).limit(1)
        row = (await self._conn.execute(stmt)).first()
        return None if row is None else _request(row)

    @translating
    async def request_jobs(self, request_id: int) -> list[Job]:
        stmt = select(*JOB_COLUMNS).where(jobs.c.request_id == request_id).order_by(jobs.c.id)
        return [job_of(row) for row in await self._conn.execute(stmt)]


if TYPE_CHECKING:  # mypy proves that this implements the port

    def _implements_port(rows: SqlRequestRows) -> "RequestRows":
        return rows

"""Access requests in memory: ``MemoryRequestRows`` (``bot.ports.RequestRows``, inherited by
``MemoryTransaction``), following the port's docstrings: one pending request per requester and project,
every move conditional on the current state."""

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from bot.domain.errors import Conflict
from bot.domain.jobs import Job
from bot.domain.requests import AccessRequest, NewAccessRequest, RequestState
from tests.fakes.state import State


class MemoryRequestRows:
    _s: State

    def _hit(self, method: str, *, write: bool = False) -> None:
        raise NotImplementedError  # MemoryTransaction's

    def _next_request_id(self) -> int:
        raise NotImplementedError  # MemoryTransaction's

    async def add_request(self, request: NewAccessRequest) -> AccessRequest:
        self._hit("add_request", write=True)
        if any(
            r.project_id == request.project_id and r.requester == request.requester and r.state is RequestState.PENDING
            for r in self._s.requests.values()
        ):
            raise Conflict("a pending request for this project already exists")
        row = AccessRequest(
            id=self._next_request_id(),
            org_id=request.org_id,
            project_id=request.project_id,
            project=self._s.projects[request.project_id].name,
            team_id=request.team_id,
            enterprise_id=request.enterprise_id,
            requester=request.requester,
            reason=request.reason,
            expires=request.expires,
            state=RequestState.PENDING,
            approvers=request.approvers,
            token=request.token,
            created_at=request.created_at,
            due_at=request.due_at,
        )
        self._s.requests[row.id] = row
        return row

    async def access_request(self, request_id: int) -> AccessRequest | None:
        self._hit("access_request")
        row: AccessRequest | None = self._s.requests.get(request_id)
        if row is None or row.project_id not in self._s.projects:
            return None
        return row

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
        self._hit("move_request", write=True)
        row = self._s.requests.get(request_id)
        if row is None or row.state not in from_states:
            return False
        changes: dict[str, object] = {"state": to}
        if tuple(from_states) == (RequestState.PENDING,):
            changes.update(decided_by=by, decided_at=at)
        if reveal_until is not None:
            changes["reveal_until"] = reveal_until
        if to is RequestState.REVEALED:
            changes.update(revealed_at=at, key_row_id=key_row_id, key_name=key_name)
        self._s.requests[request_id] = dataclasses.replace(row, **changes)  # type: ignore[arg-type]
        return True

    def _of(self, org_id: int, project_id: int | None) -> list[AccessRequest]:
        return [
            r
            for _, r in sorted(self._s.requests.items(), reverse=True)
            if r.org_id == org_id and (project_id is None or r.project_id == project_id)
        ]

    async def requests_seen_by(
        self, *, org_id: int, user_id: str, project_id: int | None, limit: int
    ) -> list[AccessRequest]:
        self._hit("requests_seen_by")
        rows = self._of(org_id, project_id)
        theirs = [r for r in rows if r.state is RequestState.PENDING and user_id in r.approvers][:limit]
        mine = [r for r in rows if r.requester == user_id][:limit]
        return theirs + [r for r in mine if r not in theirs]

    async def open_requests_of(self, *, org_id: int, user_id: str) -> list[AccessRequest]:
        self._hit("open_requests_of")
        wanted = (RequestState.PENDING, RequestState.APPROVED)
        return [r for r in reversed(self._of(org_id, None)) if r.requester == user_id and r.state in wanted]

    async def request_for_key(self, key_row_id: int) -> AccessRequest | None:
        self._hit("request_for_key")
        return next((r for r in self._of_all() if r.key_row_id == key_row_id), None)

    def _of_all(self) -> list[AccessRequest]:
        return [r for _, r in sorted(self._s.requests.items(), reverse=True)]

    async def request_jobs(self, request_id: int) -> list[Job]:
        self._hit("request_jobs")
        return [row.as_job() for _, row in sorted(self._s.jobs.items()) if row.request_id == request_id]

"""The audit trail read out in id order, one bounded batch at a time (``keybot audit export``)."""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.model import ExportedEvent
from storage.errors import translating
from storage.tables import audit_events, orgs, projects

_a = audit_events.c
EXPORTED_EVENTS = (
    select(
        _a.id,
        _a.at,
        orgs.c.team_id,
        projects.c.name,
        _a.actor,
        _a.action,
        _a.key_name,
        _a.key_masked,
        _a.target_user,
        _a.role,
        _a.origin,
        _a.detail,
    )  # in ExportedEvent's field order; the export and the audit webhook's bodies
    .select_from(
        audit_events.join(orgs, orgs.c.id == _a.org_id).outerjoin(projects, projects.c.id == _a.project_id)
    )
    .order_by(_a.id)
)


class SqlAuditExport:
    """``bot.ports.AuditExportSource`` on an AsyncEngine: keyset pages by id, no long transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @translating
    async def audit_batch(
        self, *, since: datetime, team_id: str | None, after_id: int, limit: int
    ) -> list[ExportedEvent]:
        stmt: Any = EXPORTED_EVENTS.where(_a.id > after_id, _a.at >= since).limit(limit)
        if team_id is not None:
            stmt = stmt.where(orgs.c.team_id == team_id)
        async with self._engine.connect() as conn:
            return [ExportedEvent(*row) for row in await conn.execute(stmt)]

"""The audit log of a project, newest first (owners only)."""

from collections.abc import AsyncIterator
from datetime import datetime

from bot.domain.model import Actor, ExportedEvent
from bot.domain.names import validate_name
from bot.domain.roles import Action
from bot.ports import AuditExportSource
from bot.services.base import PAGE_SIZE, Service
from bot.services.results import AuditPage


class AuditService(Service):
    async def page(
        self, actor: Actor, *, project: str, before_id: int | None = None, after_id: int | None = None
    ) -> AuditPage:
        """Recent changes in a project, newest first; ``before_id`` pages older, ``after_id`` newer."""
        validate_name(project, kind="project")
        async with self._uow.read() as tx:
            _, proj = await self._project_scope(tx, actor, project, Action.READ_AUDIT)
            rows = await tx.audit_page(
                project_id=proj.id, before_id=before_id, after_id=after_id, limit=PAGE_SIZE + 1
            )
        if after_id is not None:
            more = len(rows) > PAGE_SIZE
            if not rows:  # nothing newer: back to the newest page
                return await self.page(actor, project=project)
            return AuditPage(project=proj.name, events=rows[-PAGE_SIZE:], has_older=True, has_newer=more)
        return AuditPage(
            project=proj.name,
            events=rows[:PAGE_SIZE],
            has_older=len(rows) > PAGE_SIZE,
            has_newer=before_id is not None,
        )


EXPORT_BATCH = 1000


async def export_audit(
    source: AuditExportSource, *, since: datetime, team_id: str | None = None, batch: int = EXPORT_BATCH
) -> AsyncIterator[ExportedEvent]:
    """Every audit event at or after ``since``, oldest first, read in batches: constant memory however
    long the trail. For operators (``keybot audit export``); no Slack actor is involved."""
    after = 0
    while True:
        rows = await source.audit_batch(since=since, team_id=team_id, after_id=after, limit=batch)
        for row in rows:
            yield row
        if len(rows) < batch:
            return
        after = rows[-1].id

"""The audit log of a project, newest first (owners only)."""

from bot.domain.model import Actor
from bot.domain.names import validate_name
from bot.domain.roles import Action
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

"""Projects: create one (with its ``default`` key) and list those the actor can see."""

from bot.domain.errors import Conflict
from bot.domain.model import Actor, AuditEvent
from bot.domain.roles import Action, OrgRole
from bot.services.base import Context, Service
from bot.services.keys import KeyMaker, KeyService
from bot.services.people import org_owners
from bot.services.results import CreatedKey, VisibleProjects

DEFAULT_KEY_NAME = "default"


class ProjectService(Service):
    def __init__(self, context: Context, *, maker: KeyMaker, keys: KeyService) -> None:
        super().__init__(context)
        self._maker = maker
        self._keys = keys

    async def create(self, actor: Actor, *, name: str) -> CreatedKey:
        """Create a project and its ``default`` key; the key's secret goes back to the creator only."""
        self._keys.checked_name(name, kind="project")
        async with self._uow.read() as tx:
            await self._authorize(tx, await self._scope(tx, actor), Action.CREATE_PROJECT)
        key = await self._maker.new_key()
        async with self._uow.transaction() as tx:
            await tx.lock_team(actor.team_id, shared=True)  # authority is read after it: see lock_team
            scope = await self._scope(tx, actor, name)
            await self._authorize(tx, scope, Action.CREATE_PROJECT)
            if scope.project is not None:
                raise Conflict(f"A project named `{scope.project.name}` already exists.")
            try:
                project = await tx.add_project(
                    org_id=scope.org.id, name=name, created_by=actor.user_id, at=self._clock()
                )
            except Conflict:
                raise Conflict(f"A project named `{name}` already exists.") from None
            await tx.add_audit(
                AuditEvent(
                    org_id=scope.org.id,
                    project_id=project.id,
                    actor=actor.user_id,
                    action="project created",
                    at=self._clock(),
                    origin=self._origin,
                )
            )
            created = await self._keys.insert(tx, actor, scope, project, name=DEFAULT_KEY_NAME, key=key)
        self._on_notify()
        return created

    async def visible(self, actor: Actor) -> VisibleProjects:
        """Projects the actor can see: all of them for org owners, else those it has a role in."""
        async with self._uow.read() as tx:
            scope = await self._scope(tx, actor)
            found = await tx.visible_projects(
                org_id=scope.org.id, user_id=actor.user_id, all_projects=scope.org_role is OrgRole.OWNER
            )
            owners = [] if found else await org_owners(tx, scope)
        role = None if scope.org_role is None else scope.org_role.value
        return VisibleProjects(projects=found, org_role=role, org_owners=owners)

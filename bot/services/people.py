"""People and roles: who am I, who holds which role, grant and revoke, and the operator's bootstrap."""

from bot.domain.errors import Conflict, NotFound, PermissionDenied, User
from bot.domain.model import Actor, AuditEvent, Scope
from bot.domain.names import ORG_NAME_MAX, shown, validate_name
from bot.domain.notices import Notice, NoticeKind
from bot.domain.roles import Action, OrgRole, org_role_named, project_role_named
from bot.ports import Transaction
from bot.services.base import Service
from bot.services.base import people_parts as _people
from bot.services.results import Members, RoleChange, Whoami


class PeopleService(Service):
    async def whoami(self, actor: Actor) -> Whoami:
        async with self._uow.read() as tx:
            scope = await self._scope(tx, actor)
            grants = await tx.roles_of(org_id=scope.org.id, user_id=actor.user_id)
            owners = await org_owners(tx, scope)
        return Whoami(org=shown_org(scope), user_id=actor.user_id, grants=grants, org_owners=owners)

    async def members(self, actor: Actor, *, project: str | None = None) -> Members:
        """Who holds which role, in the org or in one project."""
        async with self._uow.read() as tx:
            if project is None:
                scope = await self._scope(tx, actor)
                if scope.org_role is None and not await tx.roles_of(
                    org_id=scope.org.id, user_id=actor.user_id
                ):
                    raise PermissionDenied(
                        "Only members of this organization may see its members. Ask an organization owner "
                        "for a role: ",
                        *_people(await org_owners(tx, scope)),
                        ".",
                    )
                return Members(
                    scope=scope.org.name, grants=await tx.members(org_id=scope.org.id, project_id=None)
                )
            validate_name(project, kind="project")
            scope, proj = await self._project_scope(tx, actor, project, Action.SEE_MEMBERS)
            owners = [  # they control this project's keys too
                g for g in await tx.members(org_id=scope.org.id, project_id=None) if g.role == OrgRole.OWNER
            ]
            grants = await tx.members(org_id=scope.org.id, project_id=proj.id)
            return Members(scope=proj.name, grants=owners + grants, project=proj.name)

    async def grant(self, actor: Actor, *, user_id: str, role: str, project: str | None = None) -> RoleChange:
        """Give ``user_id`` a role in the org (org owners) or in a project (its owners too)."""
        async with self._uow.transaction() as tx:
            await tx.lock_team(actor.team_id)  # the actor's roles are read after the lock: see lock_team
            if project is None:
                scope = await self._scope(tx, actor)
                await self._authorize(tx, scope, Action.GRANT_ORG_ROLE)
                org_role = org_role_named(role)
                current = await tx.org_role(org_id=scope.org.id, user_id=user_id)
                if current is OrgRole.OWNER and org_role is not OrgRole.OWNER:
                    await _keep_an_owner(tx, scope.org.id)
                await tx.set_org_role(org_id=scope.org.id, user_id=user_id, role=org_role)
                project_id, project_name, text_role = None, None, org_role.value
                previous = None if current is None else current.value
            else:
                validate_name(project, kind="project")
                scope, proj = await self._project_scope(tx, actor, project, Action.GRANT_PROJECT_ROLE)
                project_role = project_role_named(role)
                held = await tx.project_role(project_id=proj.id, user_id=user_id)
                await tx.set_project_role(project_id=proj.id, user_id=user_id, role=project_role)
                project_id, project_name, text_role = proj.id, proj.name, project_role.value
                previous = None if held is None else held.value
            if previous == text_role:  # nothing changes: no audit event, no DM
                return RoleChange(user_id=user_id, role=text_role, project=project_name, previous=previous)
            await self._record_role_change(
                tx,
                actor,
                scope,
                user_id=user_id,
                project_id=project_id,
                project=project_name,
                role=text_role,
                previous=previous,
            )
        self._on_notify()
        return RoleChange(user_id=user_id, role=text_role, project=project_name, previous=previous)

    async def revoke(self, actor: Actor, *, user_id: str, project: str | None = None) -> RoleChange:
        """Remove ``user_id``'s role in the org or in a project; the org always keeps an owner."""
        async with self._uow.transaction() as tx:
            await tx.lock_team(actor.team_id)  # the actor's roles are read after the lock: see lock_team
            if project is None:
                scope = await self._scope(tx, actor)
                await self._authorize(tx, scope, Action.GRANT_ORG_ROLE)
                current = await tx.org_role(org_id=scope.org.id, user_id=user_id)
                if current is None:
                    raise NotFound(User(user_id), " has no organization role.")
                if current is OrgRole.OWNER:
                    await _keep_an_owner(tx, scope.org.id)
                await tx.delete_org_role(org_id=scope.org.id, user_id=user_id)
                project_id, name, removed = None, None, current.value
            else:
                validate_name(project, kind="project")
                scope, proj = await self._project_scope(tx, actor, project, Action.GRANT_PROJECT_ROLE)
                held = await tx.project_role(project_id=proj.id, user_id=user_id)
                if held is None or not await tx.delete_project_role(project_id=proj.id, user_id=user_id):
                    raise NotFound(User(user_id), f" has no role in `{proj.name}`.")
                project_id, name, removed = proj.id, proj.name, held.value
            await self._record_role_change(
                tx, actor, scope, user_id=user_id, project_id=project_id, project=name, role=None, previous=removed
            )
        self._on_notify()
        return RoleChange(user_id=user_id, role=None, project=name, previous=removed)

    async def _record_role_change(
        self,
        tx: Transaction,
        actor: Actor,
        scope: Scope,
        *,
        user_id: str,
        project_id: int | None,
        project: str | None,
        role: str | None,
        previous: str | None,
    ) -> None:
        """Audit a grant (``role`` set) or revoke (``role`` None; the audit keeps the role removed) and
        DM the user it concerns — unless they made the change themselves and saw the reply."""
        now = self._clock()
        kind = NoticeKind.ROLE_GRANTED if role else NoticeKind.ROLE_REVOKED
        await tx.add_audit(
            AuditEvent(
                org_id=scope.org.id,
                project_id=project_id,
                actor=actor.user_id,
                action=kind.value,
                at=now,
                target_user=user_id,
                role=role or previous,
                origin=self._origin,
            )
        )
        if user_id == actor.user_id:
            return
        await tx.notify(
            Notice(
                kind=kind,
                recipient=user_id,
                team_id=actor.team_id,
                enterprise_id=actor.enterprise_id,
                actor=actor.user_id,
                at=now,
                project=project,
                org=shown_org(scope),
                role=role,
                previous_role=previous,
                origin=self._origin,
            )
        )


async def org_owners(tx: Transaction, scope: Scope) -> list[str]:
    return [g.user_id for g in await tx.members(org_id=scope.org.id, project_id=None) if g.role == OrgRole.OWNER]


def shown_org(scope: Scope) -> str:
    """The org's name as Slack may show it: an operator typed it (``keybot bootstrap --org``)."""
    return shown(scope.org.name, limit=ORG_NAME_MAX)


async def _keep_an_owner(tx: Transaction, org_id: int) -> None:
    if await tx.count_org_owners(org_id) <= 1:
        raise Conflict("The organization must keep at least one owner. Make someone else an owner first.")

"""What operators do outside Slack: bootstrap a workspace's organization, see which exist."""

from bot.domain.model import AuditEvent
from bot.domain.roles import OrgRole
from bot.services.base import Service

BOOTSTRAP_ACTOR = "keybot bootstrap"
INSTALL_ACTOR = "slack install"


class OperatorService(Service):
    async def bootstrap(self, *, team_id: str, owner: str, org_name: str) -> bool:
        """Create the org of a workspace and make ``owner`` its owner. Idempotent; True if changed."""
        return await self._first_owner(team_id=team_id, owner=owner, org_name=org_name, actor=BOOTSTRAP_ACTOR)

    async def install(self, *, team_id: str, installer: str, org_name: str) -> bool:
        """keybot was installed through OAuth in a workspace (or an Enterprise Grid org, keyed by its
        enterprise id): an org that has no owner yet, new or not, gets ``installer`` as its first owner;
        a reinstall of an org that has owners changes nothing (roles stay as they were). True if changed."""
        return await self._first_owner(
            team_id=team_id, owner=installer, org_name=org_name, actor=INSTALL_ACTOR, only_if_ownerless=True
        )

    async def _first_owner(
        self, *, team_id: str, owner: str, org_name: str, actor: str, only_if_ownerless: bool = False
    ) -> bool:
        async with self._uow.transaction() as tx:
            now = self._clock()
            await tx.lock_team(team_id)
            org = await tx.ensure_org(team_id=team_id, name=org_name, at=now)
            if await tx.org_role(org_id=org.id, user_id=owner) is OrgRole.OWNER:
                return False
            if only_if_ownerless and any(
                g.role == OrgRole.OWNER.value for g in await tx.members(org_id=org.id, project_id=None)
            ):
                return False
            await tx.set_org_role(org_id=org.id, user_id=owner, role=OrgRole.OWNER)
            await tx.add_audit(
                AuditEvent(
                    org_id=org.id,
                    project_id=None,
                    actor=actor,
                    action="role granted",
                    at=now,
                    target_user=owner,
                    role=OrgRole.OWNER.value,
                    origin=self._origin,
                )
            )
        return True

    async def org_teams(self) -> list[str]:
        """The team ids of every organization in this database."""
        async with self._uow.read() as tx:
            return await tx.org_teams()

    async def org_owners(self, team_id: str) -> list[str]:
        """The owners of the organization of ``team_id`` (empty if it has none)."""
        async with self._uow.read() as tx:
            scope = await tx.scope(team_id=team_id, user_id="", project_name=None)
            if scope is None:
                return []
            grants = await tx.members(org_id=scope.org.id, project_id=None)
        return [g.user_id for g in grants if g.role == OrgRole.OWNER.value]

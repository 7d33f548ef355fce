"""Offboarding (DESIGN.md §5.5): a user deactivated in Slack (``user_change`` with ``deleted: true``).

In one transaction: every role the user held in the workspace's org ends (each audited by keybot,
"deactivated in Slack"), the delete confirmations they were given become void, and the owners of each
project where they created keys get one DM listing those keys, with *Roll* and *Delete…* buttons (each
re-checks the clicker's role at click time). If they were the org's last owner, the workspace's admins
(``WorkspaceDirectory``, asked after the commit) are DMed how to name a new owner.

Slack sends ``user_change`` again for every later change of a deactivated user's profile: a user who
holds no role any more is left alone, so the owners are told once. Access requests and reveal buttons
(bot/services/requests.py) are voided in ``_void_access``, in the same transaction.
"""

from dataclasses import dataclass, field

from bot.domain.model import AuditEvent, KeyRecord, Org, Project
from bot.domain.notices import Notice, NoticeKind
from bot.domain.roles import OrgRole
from bot.ports import Transaction, WorkspaceDirectory
from bot.services.base import Context, Service
from bot.services.requests import void_requests_in

OFFBOARDING_ACTOR = "keybot"  # the actor of the audit events: nobody in keybot revoked these roles
DEACTIVATED = "deactivated in Slack"  # their detail


@dataclass(slots=True)
class Offboarded:
    """What a deactivation ended: the roles (``"owner"``, ``"owner of payments"``), the delete
    confirmations voided, the projects whose owners were told about keys, and the admins told the org
    has no owner left (empty unless it has none)."""

    user_id: str
    roles: list[str] = field(default_factory=list)
    voided: int = 0
    projects: list[str] = field(default_factory=list)
    admins_told: list[str] = field(default_factory=list)
    ownerless: bool = False


class OffboardingService(Service):
    def __init__(self, context: Context, *, directory: WorkspaceDirectory) -> None:
        super().__init__(context)
        self._directory = directory

    async def deactivated(self, *, team_id: str, user_id: str, workspace: str | None = None) -> Offboarded:
        """End ``user_id``'s access in the org of ``team_id`` (nothing if there is none, or if they hold
        no role any more). ``workspace``: the Slack workspace the deactivation came from."""
        result = Offboarded(user_id=user_id)
        org: Org | None = None
        async with self._uow.transaction() as tx:
            await tx.lock_team(team_id)
            scope = await tx.scope(team_id=team_id, user_id=user_id, project_name=None)
            grants = [] if scope is None else await tx.roles_of(org_id=scope.org.id, user_id=user_id)
            if scope is None or not grants:
                return result
            org = scope.org
            now = self._clock()
            for grant in grants:
                project: Project | None = None
                if grant.project is None:
                    await tx.delete_org_role(org_id=org.id, user_id=user_id)
                else:
                    held = await tx.scope(team_id=team_id, user_id=user_id, project_name=grant.project)
                    project = None if held is None else held.project
                    if project is None:
                        continue
                    await tx.delete_project_role(project_id=project.id, user_id=user_id)
                result.roles.append(grant.role if project is None else f"{grant.role} of {project.name}")
                await tx.add_audit(
                    AuditEvent(
                        org_id=org.id,
                        project_id=None if project is None else project.id,
                        actor=OFFBOARDING_ACTOR,
                        action=NoticeKind.ROLE_REVOKED.value,
                        at=now,
                        target_user=user_id,
                        role=grant.role,
                        origin=self._origin,
                        detail=DEACTIVATED,
                    )
                )
            result.voided = await tx.void_pending_deletions(team_id=team_id, user_id=user_id, at=now)
            await self._void_access(tx, org=org, user_id=user_id)
            was_owner = any(g.project is None and g.role == OrgRole.OWNER.value for g in grants)
            result.ownerless = was_owner and await tx.count_org_owners(org.id) == 0
            by_project: dict[int, tuple[Project, list[KeyRecord]]] = {}
            for project, key in await tx.keys_created_by(org_id=org.id, user_id=user_id):
                by_project.setdefault(project.id, (project, []))[1].append(key)
            for project, keys in by_project.values():
                result.projects.append(project.name)
                for owner in await tx.project_owners(org_id=org.id, project_id=project.id):
                    await tx.notify(
                        Notice(
                            kind=NoticeKind.USER_DEACTIVATED,
                            recipient=owner,
                            team_id=team_id,
                            actor=user_id,
                            at=now,
                            project=project.name,
                            keys=tuple((key.name, key.masked) for key in keys),
                            origin=self._origin,
                        )
                    )
        if result.ownerless and org is not None:
            result.admins_told = await self._tell_admins(org, user_id=user_id, workspace=workspace)
        self._on_notify()
        return result

    async def _void_access(self, tx: Transaction, *, org: Org, user_id: str) -> None:
        """The user's pending access requests and unrevealed reveal buttons become void, in the
        deactivation's transaction (their approvers' and their own DMs are updated to say so)."""
        await void_requests_in(tx, org_id=org.id, user_id=user_id, at=self._clock(), origin=self._origin)

    async def _tell_admins(self, org: Org, *, user_id: str, workspace: str | None) -> list[str]:
        listed = await self._directory.admins(org.team_id, workspace=workspace)
        admins = [admin for admin in listed if admin != user_id]
        async with self._uow.transaction() as tx:
            now = self._clock()
            for admin in admins:
                await tx.notify(
                    Notice(
                        kind=NoticeKind.ORG_OWNERLESS,
                        recipient=admin,
                        team_id=org.team_id,
                        actor=user_id,
                        at=now,
                        org=org.name,
                        origin=self._origin,
                    )
                )
        return admins

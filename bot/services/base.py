"""What every service shares: its dependencies, the actor's scope, authorization, owner notices."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bot.domain.errors import NotFound, NotSetUp, PermissionDenied, User
from bot.domain.model import Actor, Project, Scope
from bot.domain.names import shown
from bot.domain.notices import Notice, NoticeKind
from bot.domain.roles import ORG_SCOPED, Action, OrgRole, ProjectRole, allowed, required_roles
from bot.ports import Transaction, UnitOfWork

PAGE_SIZE = 20

Clock = Callable[[], datetime]


def _nothing(*_: object) -> None:
    return None


@dataclass(frozen=True)
class Context:
    """The dependencies of a service. ``on_notify`` runs after a commit that queued DMs;
    ``on_key_revoked`` after a commit that revoked a key (with its public key id); ``on_key_changed``
    after a commit that changed whether a key's secrets verify (disable, enable, roll, expiry, delete;
    with the key's row id, which its old secrets share). ``origin`` is stamped on every audit event and
    notice (None: Slack; ``SHELL_ORIGIN``: keybot shell)."""

    uow: UnitOfWork
    clock: Clock
    on_notify: Callable[[], None] = field(default=_nothing)
    on_key_revoked: Callable[[str], None] = field(default=_nothing)
    origin: str | None = None
    on_key_changed: Callable[[int], None] = field(default=_nothing)


def not_set_up(actor: Actor) -> NotSetUp:
    return NotSetUp(
        "keybot is not set up for this workspace yet. An operator can run "
        f"`keybot bootstrap --team-id {shown(actor.team_id)} --owner <your user id>`."
    )


def authorize(scope: Scope, action: Action, *, project: str | None = None) -> None:
    """Raise unless the scope allows ``action``. Projects the actor cannot see look absent."""
    if project is not None:
        visible = scope.project is not None and allowed(
            Action.SEE_PROJECT, org_role=scope.org_role, project_role=scope.project_role
        )
        if not visible:
            raise NotFound(f"No project named `{shown(project)}` that you can see. `/apikeys projects` lists yours.")
    if not allowed(action, org_role=scope.org_role, project_role=scope.project_role):
        where = f" in `{scope.project.name}`" if scope.project is not None else ""
        raise PermissionDenied(
            f"Only {required_roles(action)} may {action.value}{where}. "
            "Ask an organization owner if you need access."
        )


def people_parts(user_ids: list[str]) -> list[str | User]:
    """``@a, @b and @c`` as message parts."""
    parts: list[str | User] = []
    for n, user_id in enumerate(user_ids):
        if n:
            parts.append(" and " if n == len(user_ids) - 1 else ", ")
        parts.append(User(user_id))
    return parts


async def who_can(tx: Transaction, scope: Scope, action: Action) -> PermissionDenied:
    """The refusal of ``action``, naming the people who can do it (and so can help)."""
    org_owners = [
        g.user_id for g in await tx.members(org_id=scope.org.id, project_id=None) if g.role == OrgRole.OWNER
    ]
    if action in ORG_SCOPED or scope.project is None:
        return PermissionDenied(
            f"Only organization owners can {action.value}: ", *people_parts(org_owners), ". Ask one of them."
        )
    project = scope.project
    project_owners = [
        g.user_id
        for g in await tx.members(org_id=scope.org.id, project_id=project.id)
        if g.role == ProjectRole.OWNER and g.user_id not in org_owners
    ]
    parts: list[str | User] = [f"Only owners of `{project.name}` can {action.value}: "]
    parts += [*people_parts(org_owners), " (organization owners)" if len(org_owners) > 1 else " (organization owner)"]
    if project_owners:
        parts += [" or ", *people_parts(project_owners)]
        parts.append(" (project owners)" if len(project_owners) > 1 else " (project owner)")
    parts.append(f". Ask one of them to make you an owner of `{project.name}`, or to do it for you.")
    return PermissionDenied(*parts)


class Service:
    """Base of the services: a unit of work, a clock, and the hooks that follow a commit."""

    def __init__(self, context: Context) -> None:
        self._uow = context.uow
        self._clock = context.clock
        self._on_notify = context.on_notify
        self._on_key_revoked = context.on_key_revoked
        self._on_key_changed = context.on_key_changed
        self._origin = context.origin

    async def _authorize(
        self, tx: Transaction, scope: Scope, action: Action, *, project: str | None = None
    ) -> None:
        """``authorize``, with a refusal that names who can help."""
        try:
            authorize(scope, action, project=project)
        except PermissionDenied:
            raise await who_can(tx, scope, action) from None

    async def _scope(self, tx: Transaction, actor: Actor, project: str | None = None) -> Scope:
        scope = await tx.scope(team_id=actor.team_id, user_id=actor.user_id, project_name=project)
        if scope is None:
            raise not_set_up(actor)
        return scope

    async def _project_scope(
        self, tx: Transaction, actor: Actor, project: str, action: Action
    ) -> tuple[Scope, Project]:
        scope = await self._scope(tx, actor, project)
        await self._authorize(tx, scope, action, project=project)
        assert scope.project is not None
        return scope, scope.project

    async def _notify_owners(
        self,
        tx: Transaction,
        actor: Actor,
        scope: Scope,
        project: Project,
        *,
        kind: NoticeKind,
        key_name: str,
        key_masked: str,
        until: datetime | None = None,
    ) -> None:
        """Queue a DM about a key of ``project`` to each of its owners (org owners included), except
        the actor, who saw the reply. ``until``: a new expiry, or when a rolled key's old secret stops."""
        now = self._clock()
        for user_id in await tx.project_owners(org_id=scope.org.id, project_id=project.id):
            if user_id == actor.user_id:
                continue  # the actor saw the reply
            await tx.notify(
                Notice(
                    kind=kind,
                    recipient=user_id,
                    team_id=actor.team_id,
                    enterprise_id=actor.enterprise_id,
                    actor=actor.user_id,
                    at=now,
                    project=project.name,
                    key_name=key_name,
                    key_masked=key_masked,
                    origin=self._origin,
                    until=until,
                )
            )

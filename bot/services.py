"""Use cases of keybot. Every call authorizes its actor; every change writes its audit event and its
DM notifications in the same transaction as the change itself."""

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.domain.errors import ConfirmationRefused, Conflict, NotFound, NotSetUp, PermissionDenied
from bot.domain.hashing import Hasher
from bot.domain.keys import KeyFormat, NewKey
from bot.domain.model import (
    Actor,
    AuditEvent,
    KeyRecord,
    NewKeyRecord,
    PendingDeletion,
    Project,
    RoleGrant,
    Scope,
)
from bot.domain.names import shown, validate_name
from bot.domain.roles import (
    Action,
    OrgRole,
    allowed,
    org_role_named,
    project_role_named,
    required_roles,
)
from bot.ports import Store, Transaction

PAGE_SIZE = 20
PENDING_TTL = timedelta(minutes=10)
DEFAULT_KEY_NAME = "default"

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _key_name_taken(name: str, project: str) -> Conflict:
    return Conflict(f"A key named `{name}` already exists in `{project}`. Pick another name.")


def slack_date(at: datetime) -> str:
    """Slack's date formatting: shown in each reader's own time zone."""
    ts = int(at.timestamp())
    return f"<!date^{ts}^{{date_short_pretty}} at {{time}}|{at.strftime('%Y-%m-%d %H:%M UTC')}>"


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """The one object that carries a plaintext secret, to the one ephemeral reply. Hidden from repr."""

    project: str
    name: str
    masked: str
    plaintext: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class KeyPage:
    project: str
    keys: list[KeyRecord]
    has_newer: bool
    has_older: bool


@dataclass(frozen=True, slots=True)
class DeleteRequest:
    token: str
    project: str
    name: str
    masked: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class DeletedKey:
    project: str
    name: str
    masked: str


@dataclass(frozen=True, slots=True)
class Whoami:
    org: str
    user_id: str
    grants: list[RoleGrant]


@dataclass(frozen=True, slots=True)
class Members:
    scope: str
    grants: list[RoleGrant]


@dataclass(frozen=True, slots=True)
class AuditPage:
    project: str
    events: list[AuditEvent]
    has_older: bool


@dataclass(frozen=True, slots=True)
class RoleChange:
    user_id: str
    role: str | None
    project: str | None


class Keybot:
    """The application services: what a Slack command (or any other front end) may ask for."""

    def __init__(
        self,
        store: Store,
        *,
        hasher: Hasher,
        key_format: KeyFormat,
        clock: Clock = utcnow,
        on_notify: Callable[[], None] | None = None,
        on_key_deleted: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.hasher = hasher
        self.key_format = key_format
        self.clock = clock
        self._on_notify = on_notify or (lambda: None)
        self._on_key_deleted = on_key_deleted or (lambda key_id: None)

    # -- helpers ---------------------------------------------------------------------------

    async def _scope(self, tx: Transaction, actor: Actor, project: str | None = None) -> Scope:
        scope = await tx.scope(team_id=actor.team_id, user_id=actor.user_id, project_name=project)
        if scope is None:
            raise self._not_set_up(actor)
        return scope

    @staticmethod
    def _not_set_up(actor: Actor) -> NotSetUp:
        return NotSetUp(
            "keybot is not set up for this workspace yet. An operator can run "
            f"`keybot bootstrap --team-id {shown(actor.team_id)} --owner <your user id>`."
        )

    @staticmethod
    def _authorize(scope: Scope, action: Action, *, project: str | None = None) -> None:
        """Raise unless the scope allows ``action``. Projects the actor cannot see look absent."""
        if project is not None:
            visible = scope.project is not None and allowed(
                Action.SEE_PROJECT, org_role=scope.org_role, project_role=scope.project_role
            )
            if not visible:
                raise NotFound(
                    f"No project named `{shown(project)}` that you can see. `/apikeys projects` lists yours."
                )
        if not allowed(action, org_role=scope.org_role, project_role=scope.project_role):
            where = f" in `{scope.project.name}`" if scope.project is not None else ""
            raise PermissionDenied(
                f"Only {required_roles(action)} may {action.value}{where}. "
                "Ask an organization owner if you need access."
            )

    async def _project_scope(
        self, tx: Transaction, actor: Actor, project: str, action: Action
    ) -> tuple[Scope, Project]:
        scope = await self._scope(tx, actor, project)
        self._authorize(scope, action, project=project)
        assert scope.project is not None
        return scope, scope.project

    async def _notify_owners(self, tx: Transaction, scope: Scope, project: Project, text: str) -> None:
        now = self.clock()
        for user_id in await tx.project_owners(org_id=scope.org.id, project_id=project.id):
            await tx.notify(user_id=user_id, text=text, at=now)

    # -- keys --------------------------------------------------------------------------------

    async def _insert_key(
        self,
        tx: Transaction,
        actor: Actor,
        scope: Scope,
        project: Project,
        name: str,
        digest_and_key: tuple[str, NewKey],
    ) -> CreatedKey:
        digest, new = digest_and_key
        now = self.clock()
        try:  # the unique index decides, also between two owners racing for one name
            await tx.add_key(
                NewKeyRecord(
                    project_id=project.id,
                    key_id=new.key_id,
                    name=name,
                    masked=new.masked,
                    secret_hash=digest,
                    created_by=actor.user_id,
                    created_at=now,
                )
            )
        except Conflict:
            raise _key_name_taken(name, project.name) from None
        await tx.add_audit(
            AuditEvent(
                org_id=scope.org.id,
                project_id=project.id,
                actor=actor.user_id,
                action="key created",
                at=now,
                key_name=name,
                key_masked=new.masked,
            )
        )
        await self._notify_owners(
            tx,
            scope,
            project,
            f":key: <@{actor.user_id}> created key `{name}` (`{new.masked}`) in project `{project.name}` "
            f"on {slack_date(now)}.",
        )
        return CreatedKey(project=project.name, name=name, masked=new.masked, plaintext=new.plaintext)

    async def _new_key(self) -> tuple[str, NewKey]:
        new = self.key_format.generate()
        return await self.hasher.hash(new.plaintext), new

    async def create_project(self, actor: Actor, name: str) -> CreatedKey:
        """Create a project and its ``default`` key; the key's secret goes back to the creator only."""
        validate_name(name, kind="project")
        async with self.store.read() as tx:
            self._authorize(await self._scope(tx, actor), Action.CREATE_PROJECT)
        key = await self._new_key()
        async with self.store.transaction() as tx:
            scope = await self._scope(tx, actor, name)
            self._authorize(scope, Action.CREATE_PROJECT)
            if scope.project is not None:
                raise Conflict(f"A project named `{scope.project.name}` already exists.")
            try:
                project = await tx.add_project(
                    org_id=scope.org.id, name=name, created_by=actor.user_id, at=self.clock()
                )
            except Conflict:
                raise Conflict(f"A project named `{name}` already exists.") from None
            await tx.add_audit(
                AuditEvent(
                    org_id=scope.org.id,
                    project_id=project.id,
                    actor=actor.user_id,
                    action="project created",
                    at=self.clock(),
                )
            )
            created = await self._insert_key(tx, actor, scope, project, DEFAULT_KEY_NAME, key)
        self._on_notify()
        return created

    async def create_key(self, actor: Actor, project: str, name: str) -> CreatedKey:
        """Create a key; its plaintext is returned once and stored only as an argon2id hash."""
        validate_name(project, kind="project")
        validate_name(name, kind="key")
        async with self.store.read() as tx:
            scope, proj = await self._project_scope(tx, actor, project, Action.CREATE_KEY)
            if await tx.key_named(project_id=proj.id, name=name) is not None:  # before paying argon2
                raise _key_name_taken(name, proj.name)
        key = await self._new_key()
        async with self.store.transaction() as tx:
            scope, proj = await self._project_scope(tx, actor, project, Action.CREATE_KEY)
            created = await self._insert_key(tx, actor, scope, proj, name, key)
        self._on_notify()
        return created

    async def list_keys(
        self, actor: Actor, project: str, *, before_id: int | None = None, after_id: int | None = None
    ) -> KeyPage:
        """One page of a project's keys, newest first, masked."""
        validate_name(project, kind="project")
        scope, rows = await self.store.key_listing(
            team_id=actor.team_id,
            user_id=actor.user_id,
            project_name=project,
            before_id=before_id,
            after_id=after_id,
            limit=PAGE_SIZE + 1,
        )
        if scope is None:
            raise self._not_set_up(actor)
        self._authorize(scope, Action.LIST_KEYS, project=project)
        assert scope.project is not None
        name = scope.project.name
        if after_id is not None:
            more = len(rows) > PAGE_SIZE
            return KeyPage(
                project=name, keys=rows[-PAGE_SIZE:] if more else rows, has_newer=more, has_older=True
            )
        keys = rows[:PAGE_SIZE]
        return KeyPage(
            project=name, keys=keys, has_newer=before_id is not None, has_older=len(rows) > PAGE_SIZE
        )

    async def request_delete(self, actor: Actor, project: str, name: str) -> DeleteRequest:
        """Step one of a delete: a single-use pending deletion bound to ``actor``, valid 10 minutes."""
        validate_name(project, kind="project")
        validate_name(name, kind="key")
        async with self.store.transaction() as tx:
            _, proj = await self._project_scope(tx, actor, project, Action.DELETE_KEY)
            key = await tx.key_named(project_id=proj.id, name=name)
            if key is None:
                raise NotFound(
                    f"No key named `{name}` in `{proj.name}`. `/apikeys list {proj.name}` shows its keys."
                )
            expires = self.clock() + PENDING_TTL
            token = secrets.token_urlsafe(18)
            await tx.add_pending(
                PendingDeletion(
                    token=token,
                    key_row_id=key.id,
                    project_id=proj.id,
                    user_id=actor.user_id,
                    team_id=actor.team_id,
                    expires_at=expires,
                    used_at=None,
                )
            )
        return DeleteRequest(
            token=token, project=proj.name, name=key.name, masked=key.masked, expires_at=expires
        )

    async def _claim_pending(self, tx: Transaction, actor: Actor, token: str) -> PendingDeletion:
        pending = await tx.pending(token)
        if pending is None or pending.team_id != actor.team_id:
            raise ConfirmationRefused(
                "This confirmation is not valid. Run `/apikeys delete <project> <key>` again."
            )
        if pending.user_id != actor.user_id:
            raise ConfirmationRefused(
                f"Only <@{pending.user_id}>, who asked for this deletion, can confirm or cancel it. Nothing changed."
            )
        if pending.used_at is not None:
            raise ConfirmationRefused("This confirmation was already used. Nothing changed.")
        if self.clock() >= pending.expires_at:
            raise ConfirmationRefused(
                "This confirmation expired (they last 10 minutes). Nothing changed; run the delete again."
            )
        if not await tx.use_pending(token, at=self.clock()):
            raise ConfirmationRefused("This confirmation was already used. Nothing changed.")
        return pending

    async def confirm_delete(self, actor: Actor, token: str) -> DeletedKey:
        """Step two: re-check everything, then delete the key and revoke it at once."""
        async with self.store.transaction() as tx:
            pending = await self._claim_pending(tx, actor, token)
            scope = await self._scope(tx, actor)
            project_role = await tx.project_role(project_id=pending.project_id, user_id=actor.user_id)
            if not allowed(Action.DELETE_KEY, org_role=scope.org_role, project_role=project_role):
                raise PermissionDenied(
                    f"You are no longer {required_roles(Action.DELETE_KEY)}, so the key was not deleted."
                )
            key = await tx.key_by_row_id(pending.key_row_id)
            if key is None:
                raise ConfirmationRefused("That key was already deleted. Nothing changed.")
            await tx.delete_key(key.id)
            now = self.clock()
            project = Project(
                id=pending.project_id,
                org_id=scope.org.id,
                name=await self._project_name(tx, scope, pending.project_id),
            )
            await tx.add_audit(
                AuditEvent(
                    org_id=scope.org.id,
                    project_id=project.id,
                    actor=actor.user_id,
                    action="key deleted",
                    at=now,
                    key_name=key.name,
                    key_masked=key.masked,
                )
            )
            await self._notify_owners(
                tx,
                scope,
                project,
                f":wastebasket: <@{actor.user_id}> deleted key `{key.name}` (`{key.masked}`) in project "
                f"`{project.name}` on {slack_date(now)}. It no longer verifies.",
            )
        self._on_key_deleted(key.key_id)
        self._on_notify()
        return DeletedKey(project=project.name, name=key.name, masked=key.masked)

    @staticmethod
    async def _project_name(tx: Transaction, scope: Scope, project_id: int) -> str:
        project = await tx.project_by_id(project_id)
        if project is None or project.org_id != scope.org.id:
            raise ConfirmationRefused("That project no longer exists. Nothing changed.")
        return project.name

    async def cancel_delete(self, actor: Actor, token: str) -> DeletedKey:
        """Use up a pending deletion without deleting anything."""
        async with self.store.transaction() as tx:
            pending = await self._claim_pending(tx, actor, token)
            key = await tx.key_by_row_id(pending.key_row_id)
            scope = await self._scope(tx, actor)
            name = await self._project_name(tx, scope, pending.project_id)
        return DeletedKey(project=name, name=key.name if key else "?", masked=key.masked if key else "?")

    # -- people ------------------------------------------------------------------------------

    async def whoami(self, actor: Actor) -> Whoami:
        async with self.store.read() as tx:
            scope = await self._scope(tx, actor)
            grants = await tx.roles_of(org_id=scope.org.id, user_id=actor.user_id)
        return Whoami(org=scope.org.name, user_id=actor.user_id, grants=grants)

    async def projects(self, actor: Actor) -> list[Project]:
        """Projects the actor can see: all of them for org owners, else those it has a role in."""
        async with self.store.read() as tx:
            scope = await self._scope(tx, actor)
            return await tx.visible_projects(
                org_id=scope.org.id, user_id=actor.user_id, all_projects=scope.org_role is OrgRole.OWNER
            )

    async def members(self, actor: Actor, project: str | None = None) -> Members:
        """Who holds which role, in the org or in one project."""
        async with self.store.read() as tx:
            if project is None:
                scope = await self._scope(tx, actor)
                if scope.org_role is None and not await tx.roles_of(
                    org_id=scope.org.id, user_id=actor.user_id
                ):
                    raise PermissionDenied("Only members of this organization may see its members.")
                return Members(
                    scope=scope.org.name, grants=await tx.members(org_id=scope.org.id, project_id=None)
                )
            validate_name(project, kind="project")
            scope, proj = await self._project_scope(tx, actor, project, Action.SEE_MEMBERS)
            return Members(scope=proj.name, grants=await tx.members(org_id=scope.org.id, project_id=proj.id))

    async def grant(self, actor: Actor, user_id: str, role: str, project: str | None = None) -> RoleChange:
        """Give ``user_id`` a role in the org (org owners) or in a project (its owners too)."""
        async with self.store.transaction() as tx:
            if project is None:
                scope = await self._scope(tx, actor)
                self._authorize(scope, Action.GRANT_ORG_ROLE)
                org_role = org_role_named(role)
                await tx.lock_org(scope.org.id)
                current = await tx.org_role(org_id=scope.org.id, user_id=user_id)
                if current is OrgRole.OWNER and org_role is not OrgRole.OWNER:
                    await self._keep_an_owner(tx, scope.org.id)
                await tx.set_org_role(org_id=scope.org.id, user_id=user_id, role=org_role)
                where, project_id, text_role = f"the organization `{scope.org.name}`", None, org_role.value
                project_name = None
            else:
                validate_name(project, kind="project")
                scope, proj = await self._project_scope(tx, actor, project, Action.GRANT_PROJECT_ROLE)
                project_role = project_role_named(role)
                await tx.set_project_role(project_id=proj.id, user_id=user_id, role=project_role)
                where, project_id, text_role = f"project `{proj.name}`", proj.id, project_role.value
                project_name = proj.name
            await self._record_role_change(
                tx,
                actor,
                scope,
                user_id=user_id,
                project_id=project_id,
                role=text_role,
                text=f"made you *{text_role}* of {where}",
            )
        self._on_notify()
        return RoleChange(user_id=user_id, role=text_role, project=project_name)

    async def _record_role_change(
        self,
        tx: Transaction,
        actor: Actor,
        scope: Scope,
        *,
        user_id: str,
        project_id: int | None,
        role: str | None,
        text: str,
    ) -> None:
        """Audit a grant (``role`` set) or revoke (``role`` None) and DM the user it concerns."""
        now = self.clock()
        await tx.add_audit(
            AuditEvent(
                org_id=scope.org.id,
                project_id=project_id,
                actor=actor.user_id,
                action="role granted" if role else "role revoked",
                at=now,
                target_user=user_id,
                role=role,
            )
        )
        await tx.notify(
            user_id=user_id,
            at=now,
            text=f":bust_in_silhouette: <@{actor.user_id}> {text} on {slack_date(now)}.",
        )

    async def _keep_an_owner(self, tx: Transaction, org_id: int) -> None:
        if await tx.count_org_owners(org_id) <= 1:
            raise Conflict("The organization must keep at least one owner. Make someone else an owner first.")

    async def revoke(self, actor: Actor, user_id: str, project: str | None = None) -> RoleChange:
        """Remove ``user_id``'s role in the org or in a project; the org always keeps an owner."""
        async with self.store.transaction() as tx:
            if project is None:
                scope = await self._scope(tx, actor)
                self._authorize(scope, Action.GRANT_ORG_ROLE)
                await tx.lock_org(scope.org.id)
                current = await tx.org_role(org_id=scope.org.id, user_id=user_id)
                if current is None:
                    raise NotFound(f"<@{user_id}> has no organization role.")
                if current is OrgRole.OWNER:
                    await self._keep_an_owner(tx, scope.org.id)
                await tx.delete_org_role(org_id=scope.org.id, user_id=user_id)
                where, project_id, name = f"the organization `{scope.org.name}`", None, None
            else:
                validate_name(project, kind="project")
                scope, proj = await self._project_scope(tx, actor, project, Action.GRANT_PROJECT_ROLE)
                if not await tx.delete_project_role(project_id=proj.id, user_id=user_id):
                    raise NotFound(f"<@{user_id}> has no role in `{proj.name}`.")
                where, project_id, name = f"project `{proj.name}`", proj.id, proj.name
            await self._record_role_change(
                tx,
                actor,
                scope,
                user_id=user_id,
                project_id=project_id,
                role=None,
                text=f"removed your role in {where}",
            )
        self._on_notify()
        return RoleChange(user_id=user_id, role=None, project=name)

    async def audit(self, actor: Actor, project: str, *, before_id: int | None = None) -> AuditPage:
        """Recent changes in a project, newest first (owners only)."""
        validate_name(project, kind="project")
        async with self.store.read() as tx:
            _, proj = await self._project_scope(tx, actor, project, Action.READ_AUDIT)
            rows = await tx.audit_page(project_id=proj.id, before_id=before_id, limit=PAGE_SIZE + 1)
        return AuditPage(project=proj.name, events=rows[:PAGE_SIZE], has_older=len(rows) > PAGE_SIZE)

    # -- operators ---------------------------------------------------------------------------

    async def bootstrap(self, *, team_id: str, owner: str, org_name: str) -> bool:
        """Create the org of a workspace and make ``owner`` its owner. Idempotent; True if changed."""
        async with self.store.transaction() as tx:
            org = await tx.ensure_org(team_id=team_id, name=org_name)
            if await tx.org_role(org_id=org.id, user_id=owner) is OrgRole.OWNER:
                return False
            now = self.clock()
            await tx.set_org_role(org_id=org.id, user_id=owner, role=OrgRole.OWNER)
            await tx.add_audit(
                AuditEvent(
                    org_id=org.id,
                    project_id=None,
                    actor="keybot bootstrap",
                    action="role granted",
                    at=now,
                    target_user=owner,
                    role="owner",
                )
            )
        return True

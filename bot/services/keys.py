"""Keys: create (the secret returned once), list (masked, paged), and the two-step delete."""

import secrets
from datetime import datetime, timedelta

from bot.domain.durations import parse_when
from bot.domain.errors import ConfirmationRefused, Conflict, NotFound, PermissionDenied, User
from bot.domain.hashing import Hasher
from bot.domain.jobs import NUDGES, Decision
from bot.domain.keys import KeyFormat, NewKey
from bot.domain.lifecycle import Policy, clean_note
from bot.domain.model import Actor, AuditEvent, NewKeyRecord, PendingDeletion, Project, Scope
from bot.domain.names import validate_name
from bot.domain.notices import NoticeKind
from bot.domain.roles import Action, allowed, required_roles
from bot.ports import KeyListing, Transaction
from bot.services.base import PAGE_SIZE, Context, Service, authorize, not_set_up, who_can
from bot.services.reminders import Where, close_nudges, schedule_expiry_nudges
from bot.services.results import CreatedKey, DeletedKey, DeleteRequest, KeyPage

PENDING_TTL = timedelta(minutes=10)


def key_name_taken(name: str, project: str) -> Conflict:
    return Conflict(f"A key named `{name}` already exists in `{project}`. Pick another name.")


class KeyMaker:
    """Generates a key and hashes it (argon2, off the event loop), then inserts it in a transaction."""

    def __init__(self, *, hasher: Hasher, key_format: KeyFormat) -> None:
        self.hasher = hasher
        self.key_format = key_format

    async def new_key(self) -> tuple[str, NewKey]:
        new = self.key_format.generate()
        return await self.hasher.hash(new.plaintext), new


class KeyService(Service):
    def __init__(self, context: Context, *, maker: KeyMaker, listing: KeyListing) -> None:
        super().__init__(context)
        self._maker = maker
        self._listing = listing

    async def insert(
        self,
        tx: Transaction,
        actor: Actor,
        scope: Scope,
        project: Project,
        *,
        name: str,
        key: tuple[str, NewKey],
        expires_at: datetime | None = None,
        note: str | None = None,
        by_policy: bool = True,
    ) -> CreatedKey:
        """Insert a hashed key, audit it and notify the project's owners, in ``tx``. ``by_policy``: the
        org's policy sets the expiry (``Policy.default_expiry``), else ``expires_at`` does."""
        digest, new = key
        now = self._clock()
        if by_policy:
            expires_at = (await tx.org_policy(scope.org.id)).default_expiry(now=now)
        try:  # the unique index decides, also between two owners racing for one name
            record = await tx.add_key(
                NewKeyRecord(
                    project_id=project.id,
                    key_id=new.key_id,
                    name=name,
                    masked=new.masked,
                    secret_hash=digest,
                    created_by=actor.user_id,
                    created_at=now,
                    expires_at=expires_at,
                    note=note,
                )
            )
        except Conflict:
            raise key_name_taken(name, project.name) from None
        await schedule_expiry_nudges(tx, Where.of(scope, actor), key_row_id=record.id, expires_at=expires_at, now=now)
        await tx.add_audit(
            AuditEvent(
                org_id=scope.org.id,
                project_id=project.id,
                actor=actor.user_id,
                action="key created",
                at=now,
                key_name=name,
                key_masked=new.masked,
                origin=self._origin,
                detail=None if expires_at is None else expires_at.isoformat(),
            )
        )
        await self._notify_owners(
            tx, actor, scope, project, kind=NoticeKind.KEY_CREATED, key_name=name, key_masked=new.masked
        )
        return CreatedKey(
            project=project.name, name=name, masked=new.masked, plaintext=new.plaintext, expires_at=expires_at
        )

    def checked_name(self, name: str, *, kind: str) -> str:
        """A new key's or project's name (``validate_name``) that is not itself a key: names are listed,
        audited and DMed to every owner, and a key's plaintext must never be."""
        return self._maker.key_format.refuse_key_in(validate_name(name, kind=kind), what=f"A {kind} name")

    def checked_note(self, note: str) -> str:
        """A key's note as stored (``clean_note``), never holding a key (InvalidInput otherwise)."""
        return self._maker.key_format.refuse_key_in(clean_note(note), what="A note")

    async def create(
        self, actor: Actor, *, project: str, name: str, expires: str | None = None, note: str | None = None
    ) -> CreatedKey:
        """Create a key; its plaintext is returned once and stored only as an argon2id hash. ``expires``
        is a ``<when>`` (bot/domain/durations.py); without it the org's default lifetime applies. An
        expiry beyond the policy's maximum is refused before any hashing."""
        validate_name(project, kind="project")
        self.checked_name(name, kind="key")
        noted = None if note is None else self.checked_note(note)
        async with self._uow.read() as tx:
            scope, proj = await self._project_scope(tx, actor, project, Action.CREATE_KEY)
            if await tx.key_named(project_id=proj.id, name=name) is not None:  # before paying argon2
                raise key_name_taken(name, proj.name)
            _expiry(await tx.org_policy(scope.org.id), expires, now=self._clock())  # refuse before argon2
        key = await self._maker.new_key()
        async with self._uow.transaction() as tx:
            await tx.lock_team(actor.team_id, shared=True)  # authority is read after it: see lock_team
            scope, proj = await self._project_scope(tx, actor, project, Action.CREATE_KEY)
            expires_at = _expiry(await tx.org_policy(scope.org.id), expires, now=self._clock())
            created = await self.insert(
                tx, actor, scope, proj, name=name, key=key, expires_at=expires_at, note=noted, by_policy=False
            )
        self._on_notify()
        return created

    async def page(
        self, actor: Actor, *, project: str, before_id: int | None = None, after_id: int | None = None
    ) -> KeyPage:
        """One page of a project's keys, newest first, masked."""
        validate_name(project, kind="project")
        listing = await self._listing.key_listing(
            team_id=actor.team_id,
            user_id=actor.user_id,
            project_name=project,
            before_id=before_id,
            after_id=after_id,
            limit=PAGE_SIZE + 1,
        )
        scope, rows = listing.scope, listing.keys
        if scope is None:
            raise not_set_up(actor)
        try:
            authorize(scope, Action.LIST_KEYS, project=project)
        except PermissionDenied:  # off the hot path: name who can help
            async with self._uow.read() as tx:
                raise await who_can(tx, scope, Action.LIST_KEYS) from None
        assert scope.project is not None
        keys = rows[-PAGE_SIZE:] if after_id is not None else rows[:PAGE_SIZE]
        short = after_id is not None and len(keys) < PAGE_SIZE  # fewer than a page newer: the newest page
        if short or (not keys and before_id is not None):  # …or the keys it led to are gone
            return await self.page(actor, project=project)
        newer = listing.newer
        if after_id is not None:  # the rows left out of the page were newer than it
            newer += len(rows) - len(keys)
        return KeyPage(
            project=scope.project.name, keys=keys, total=listing.total, first=newer + 1, now=self._clock()
        )

    async def request_delete(self, actor: Actor, *, project: str, name: str) -> DeleteRequest:
        """Step one of a delete: a single-use pending deletion bound to ``actor``, valid 10 minutes."""
        validate_name(project, kind="project")
        validate_name(name, kind="key")
        async with self._uow.transaction() as tx:
            _, proj = await self._project_scope(tx, actor, project, Action.DELETE_KEY)
            key = await tx.key_named(project_id=proj.id, name=name)
            if key is None:
                raise NotFound(
                    f"No key named `{name}` in `{proj.name}`. `/apikeys list {proj.name}` shows its keys."
                )
            expires = self._clock() + PENDING_TTL
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
                "Only ", User(pending.user_id), ", who asked for this deletion, can confirm or cancel it. "
                "Nothing changed."
            )
        if pending.used_at is not None:
            raise ConfirmationRefused("This confirmation was already used. Nothing changed.", final=True)
        if self._clock() >= pending.expires_at:
            again = await _delete_command(tx, pending)
            raise ConfirmationRefused(
                f"This confirmation expired (they last 10 minutes). Nothing changed; run {again} again.",
                final=True,
            )
        if not await tx.use_pending(token, at=self._clock()):
            raise ConfirmationRefused("This confirmation was already used. Nothing changed.", final=True)
        return pending

    async def confirm_delete(self, actor: Actor, *, token: str) -> DeletedKey:
        """Step two: re-check everything, then delete the key and revoke it at once."""
        async with self._uow.transaction() as tx:
            await tx.lock_team(actor.team_id, shared=True)  # authority is read after it: see lock_team
            pending = await self._claim_pending(tx, actor, token)
            scope = await self._scope(tx, actor)
            project_role = await tx.project_role(project_id=pending.project_id, user_id=actor.user_id)
            if not allowed(Action.DELETE_KEY, org_role=scope.org_role, project_role=project_role):
                raise PermissionDenied(
                    f"You are no longer {required_roles(Action.DELETE_KEY)}, so the key was not deleted.",
                    final=True,
                )
            key = await tx.key_by_row_id(pending.key_row_id)
            if key is None:
                raise ConfirmationRefused("That key was already deleted. Nothing changed.", final=True)
            project = await _project_of(tx, scope, pending.project_id)
            await close_nudges(  # before its jobs go with it: every copy of its reminders says so
                tx, actor, key=key, project=project.name, decision=Decision.DELETED, kinds=NUDGES,
                at=self._clock(), origin=self._origin,
            )
            await tx.delete_key(key.id)
            await tx.add_audit(
                AuditEvent(
                    org_id=scope.org.id,
                    project_id=project.id,
                    actor=actor.user_id,
                    action="key deleted",
                    at=self._clock(),
                    key_name=key.name,
                    key_masked=key.masked,
                    origin=self._origin,
                )
            )
            await self._notify_owners(
                tx, actor, scope, project, kind=NoticeKind.KEY_DELETED, key_name=key.name, key_masked=key.masked
            )
        self._on_key_revoked(key.key_id)
        self._on_key_changed(key.id)  # its rolled-away secrets too
        self._on_notify()
        return DeletedKey(project=project.name, name=key.name, masked=key.masked)

    async def cancel_delete(self, actor: Actor, *, token: str) -> DeletedKey:
        """Use up a pending deletion without deleting anything."""
        async with self._uow.transaction() as tx:
            pending = await self._claim_pending(tx, actor, token)
            key = await tx.key_by_row_id(pending.key_row_id)
            scope = await self._scope(tx, actor)
            project = await _project_of(tx, scope, pending.project_id)
            if key is None:  # another owner deleted it meanwhile: "not deleted" would be false
                raise ConfirmationRefused(
                    f"Nothing to cancel: that key of `{project.name}` was already deleted, by another owner "
                    f"or an earlier confirmation. `/apikeys audit {project.name}` shows who."
                )
        return DeletedKey(project=project.name, name=key.name, masked=key.masked)


async def _delete_command(tx: Transaction, pending: PendingDeletion) -> str:
    """The exact command that asks for this deletion again (or its usage, if the key is gone)."""
    key, project = await tx.key_by_row_id(pending.key_row_id), await tx.project_by_id(pending.project_id)
    if key is None or project is None:
        return "`/apikeys delete <project> <key-name>`"
    return f"`/apikeys delete {project.name} {key.name}`"


def _expiry(policy: Policy, expires: str | None, *, now: datetime) -> datetime | None:
    """The expiry of a key created ``now`` with ``expires`` typed (or not), within ``policy``."""
    requested = None if expires is None else parse_when(expires, now=now)
    return policy.expiry(requested, asked=expires is not None, now=now)


async def _project_of(tx: Transaction, scope: Scope, project_id: int) -> Project:
    project = await tx.project_by_id(project_id)
    if project is None or project.org_id != scope.org.id:
        raise ConfirmationRefused("That project no longer exists. Nothing changed.")
    return project

"""A key's life after its creation: show, expiry, disable and enable, roll with a grace period, and the
organization's key policy (DESIGN.md §5.1).

Every change locks the org before it reads the actor's roles (``lock_team``), re-checks the key inside
its transaction, writes its audit event and DMs the other owners there, and after the commit tells
this instance's verifier (``on_key_changed``) so the change holds here at once; other instances see
it within a second (bot/services/verification.py). A refused request changes nothing.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot.domain.durations import parse_duration, parse_when
from bot.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from bot.domain.jobs import EXTENSION
from bot.domain.keys import NewKey
from bot.domain.lifecycle import (
    KeyStatus,
    Policy,
    PolicyField,
    grace_period,
    policy_field_named,
    policy_text,
    policy_value,
    status_of,
)
from bot.domain.model import Actor, AuditEvent, KeyRecord, Project, Scope
from bot.domain.names import shown, validate_name
from bot.domain.notices import Notice, NoticeKind
from bot.domain.roles import Action, OrgRole, ProjectRole, allowed
from bot.ports import Transaction
from bot.services.base import Context, Service
from bot.services.keys import KeyMaker
from bot.services.people import shown_org
from bot.services.reminders import Where, expiry_changed, schedule_expiry_nudges, schedule_grace_end


@dataclass(frozen=True, slots=True)
class KeyDetails:
    """One key as ``show`` reads it; ``now`` is when, so its status is as of then."""

    project: str
    key: KeyRecord
    now: datetime
    approved_by: str | None = None  # for a key made by an access request: the owner who approved it


@dataclass(frozen=True, slots=True)
class KeyChange:
    """The outcome of ``disable``, ``enable`` or ``expiry``: ``kind`` says which; ``changed`` is False
    when the key already was as asked (nothing written, nobody told)."""

    kind: NoticeKind
    project: str
    name: str
    masked: str
    expires_at: datetime | None
    now: datetime
    changed: bool = True


@dataclass(frozen=True, slots=True)
class RolledKey:
    """A rolled key: its new secret (shown once, hidden from repr) and when the old one stops working."""

    project: str
    name: str
    masked: str
    old_masked: str
    retiring_at: datetime
    expires_at: datetime | None
    now: datetime
    plaintext: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class PolicyView:
    """The org's key policy; ``changed``: the setting just set (None when only shown), ``already`` if it
    already had that value (nothing written, nobody told)."""

    org: str
    policy: Policy
    may_change: bool
    changed: PolicyField | None = None
    already: bool = False


def _moment(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def _key_missing(name: str, project: str) -> NotFound:
    return NotFound(f"No key named `{shown(name)}` in `{project}`. `/apikeys list {project}` shows its keys.")


class LifecycleService(Service):
    def __init__(self, context: Context, *, maker: KeyMaker) -> None:
        super().__init__(context)
        self._maker = maker

    async def show(self, actor: Actor, *, project: str, name: str) -> KeyDetails:
        """One key's details, masked: status, note, creator, last use, expiry, last change."""
        validate_name(project, kind="project")
        validate_name(name, kind="key")
        async with self._uow.read() as tx:
            _, proj = await self._project_scope(tx, actor, project, Action.LIST_KEYS)
            key = await tx.key_named(project_id=proj.id, name=name)
            request = None if key is None else await tx.request_for_key(key.id)
        if key is None:
            raise _key_missing(name, proj.name)
        approver = None if request is None else request.decided_by
        return KeyDetails(project=proj.name, key=key, now=self._clock(), approved_by=approver)

    async def disable(self, actor: Actor, *, project: str, name: str) -> KeyChange:
        """Switch a key off: it answers DISABLED (its old secret too) until it is enabled again."""
        return await self._switch(actor, project=project, name=name, disabled=True)

    async def enable(self, actor: Actor, *, project: str, name: str) -> KeyChange:
        """Switch a disabled key on again; an expired key is refused (change its expiry first)."""
        return await self._switch(actor, project=project, name=name, disabled=False)

    async def _switch(self, actor: Actor, *, project: str, name: str, disabled: bool) -> KeyChange:
        validate_name(project, kind="project")
        validate_name(name, kind="key")
        kind = NoticeKind.KEY_DISABLED if disabled else NoticeKind.KEY_ENABLED
        async with self._uow.transaction() as tx:
            scope, proj, key = await self._key_for_change(tx, actor, project, name)
            now = self._clock()
            if not disabled and key.expires_at is not None and now > key.expires_at:
                raise InvalidInput(
                    f"`{key.name}` expired on {_moment(key.expires_at)}, so enabling it would not make it "
                    "work. "
                    f"Change its expiry first, e.g. `/apikeys expiry {proj.name} {key.name} 30d`."
                )
            if (key.disabled_at is not None) == disabled:
                return KeyChange(kind, proj.name, key.name, key.masked, key.expires_at, now, changed=False)
            await tx.set_key_disabled(key.id, disabled=disabled, at=now, by=actor.user_id)
            await self._record(tx, actor, scope, proj, key, kind=kind)
        self._after_change(key)
        return KeyChange(kind, proj.name, key.name, key.masked, key.expires_at, now)

    async def set_expiry(self, actor: Actor, *, project: str, name: str, when: str) -> KeyChange:
        """Set a key's expiry to ``when`` (bot/domain/durations.py), within the org's maximum lifetime."""
        validate_name(project, kind="project")
        validate_name(name, kind="key")
        requested = parse_when(when, now=self._clock())
        async with self._uow.transaction() as tx:
            scope, proj, key = await self._key_for_change(tx, actor, project, name)
            now = self._clock()
            expires_at = (await tx.org_policy(scope.org.id)).expiry(requested, asked=True, now=now)
            await self.set_expiry_in(tx, actor, scope, proj, key, expires_at=expires_at)
        self._after_change(key)
        return KeyChange(NoticeKind.EXPIRY_CHANGED, proj.name, key.name, key.masked, expires_at, now)

    async def extend(self, actor: Actor, *, project: str, name: str) -> KeyChange:
        """*Extend 30 days* (the App Home's button): as a reminder's button, 30 days later than the key
        would have expired, within the org's maximum lifetime."""
        validate_name(project, kind="project")
        validate_name(name, kind="key")
        async with self._uow.transaction() as tx:
            scope, proj, key = await self._key_for_change(tx, actor, project, name)
            if key.expires_at is None:  # made permanent since the button was shown: keep it so
                raise InvalidInput(
                    f"`{key.name}` never expires now, so there is nothing to extend. Nothing changed; "
                    f"`/apikeys expiry {proj.name} {key.name} <when>` gives it an expiry."
                )
            now = self._clock()
            expires_at = extended_expiry(await tx.org_policy(scope.org.id), key, project=proj.name, now=now)
            await self.set_expiry_in(tx, actor, scope, proj, key, expires_at=expires_at)
        self._after_change(key)
        return KeyChange(NoticeKind.EXPIRY_CHANGED, proj.name, key.name, key.masked, expires_at, now)

    async def set_expiry_in(
        self, tx: Transaction, actor: Actor, scope: Scope, project: Project, key: KeyRecord, *, expires_at: datetime | None
    ) -> None:
        """Give ``key`` (found and authorized in ``tx``) the expiry ``expires_at``, within the policy:
        audited, DMed to the other owners, its reminders rescheduled."""
        now = self._clock()
        await tx.set_key_expiry(key.id, expires_at=expires_at, at=now, by=actor.user_id)
        await self._record(tx, actor, scope, project, key, kind=NoticeKind.EXPIRY_CHANGED, until=expires_at)
        await expiry_changed(tx, Where.of(scope, actor), key_row_id=key.id, expires_at=expires_at, now=now)

    async def roll(self, actor: Actor, *, project: str, name: str, grace: str | None = None) -> RolledKey:
        """Give a key a new secret (returned once, stored only as a hash); its old secret keeps
        verifying for ``grace`` (default 24 h, ``0`` ends it at once, at most 7 days)."""
        validate_name(project, kind="project")
        validate_name(name, kind="key")
        period = grace_period(None if grace is None else parse_duration(grace, allow_zero=True))
        async with self._uow.read() as tx:  # refuse before paying argon2
            _, proj, key = await self._key_for_change(tx, actor, project, name, lock=False)
            _check_rollable(key, project=proj.name, now=self._clock(), grace=period)
        digest, new = await self._maker.new_key()
        async with self._uow.transaction() as tx:
            scope, proj, key = await self._key_for_change(tx, actor, project, name)
            rolled = await self.roll_in(tx, actor, scope, proj, key, new=(digest, new), grace=period)
        self._after_change(key)
        return rolled

    async def roll_in(
        self,
        tx: Transaction,
        actor: Actor,
        scope: Scope,
        project: Project,
        key: KeyRecord,
        *,
        new: tuple[str, NewKey],
        grace: timedelta,
    ) -> RolledKey:
        """Roll ``key`` (found and authorized in ``tx``) to the hashed ``new`` key, unless it may not be
        rolled now: audited, DMed to the other owners, the end of its grace scheduled."""
        digest, made = new
        now = self._clock()
        _check_rollable(key, project=project.name, now=now, grace=grace)
        retiring_at = now + grace
        await tx.roll_key(
            key.id,
            key_id=made.key_id,
            masked=made.masked,
            secret_hash=digest,
            retiring_at=retiring_at,
            at=now,
            by=actor.user_id,
        )
        rolled = replace(key, key_id=made.key_id, masked=made.masked)
        await self._record(tx, actor, scope, project, rolled, kind=NoticeKind.KEY_ROLLED, until=retiring_at)
        where = Where.of(scope, actor)
        await schedule_grace_end(
            tx, where, key_row_id=key.id, retiring_at=retiring_at, old_masked=key.masked, by=actor.user_id, now=now
        )
        await schedule_expiry_nudges(tx, where, key_row_id=key.id, expires_at=key.expires_at, now=now)
        return RolledKey(
            project=project.name,
            name=key.name,
            masked=made.masked,
            old_masked=key.masked,
            retiring_at=retiring_at,
            expires_at=key.expires_at,
            now=now,
            plaintext=made.plaintext,
        )

    async def policy(self, actor: Actor) -> PolicyView:
        """The org's key policy, for org owners and the owners of any project."""
        async with self._uow.read() as tx:
            scope = await self._scope(tx, actor)
            if not allowed(Action.SEE_POLICY, org_role=scope.org_role, project_role=None):
                grants = await tx.roles_of(org_id=scope.org.id, user_id=actor.user_id)
                roles = [ProjectRole(g.role) for g in grants if g.project is not None]
                if not any(allowed(Action.SEE_POLICY, org_role=None, project_role=r) for r in roles):
                    raise PermissionDenied(
                        "Only organization owners and project owners may see the key policy. "
                        "Ask an organization owner if you need it."
                    )
            policy = await tx.org_policy(scope.org.id)
        may_change = allowed(Action.SET_POLICY, org_role=scope.org_role, project_role=None)
        return PolicyView(org=shown_org(scope), policy=policy, may_change=may_change)

    async def set_policy(self, actor: Actor, *, setting: str, value: str) -> PolicyView:
        """Change one setting of the org's key policy (org owners); keys already made keep their expiry."""
        chosen = policy_field_named(setting)
        parsed = policy_value(chosen, value)
        async with self._uow.transaction() as tx:
            await tx.lock_team(actor.team_id)  # exclusive: one policy change at a time, after the roles
            scope = await self._scope(tx, actor)
            await self._authorize(tx, scope, Action.SET_POLICY)
            before = await tx.org_policy(scope.org.id)
            after = before.with_field(chosen, parsed)
            if after == before:
                org = shown_org(scope)
                return PolicyView(org=org, policy=before, may_change=True, changed=chosen, already=True)
            await tx.set_org_policy(scope.org.id, after)
            await self._record_policy(tx, actor, scope, f"{chosen.value} {policy_text(after, chosen)}")
        self._on_notify()
        return PolicyView(org=shown_org(scope), policy=after, may_change=True, changed=chosen)

    # -- shared steps -------------------------------------------------------------------------

    async def _key_for_change(
        self, tx: Transaction, actor: Actor, project: str, name: str, *, lock: bool = True
    ) -> tuple[Scope, Project, KeyRecord]:
        """Lock the org (``lock``: in a write transaction), then authorize and find the key."""
        if lock:
            await tx.lock_team(actor.team_id, shared=True)  # authority is read after it: see lock_team
        scope, proj = await self._project_scope(tx, actor, project, Action.MANAGE_KEYS)
        key = await tx.key_named(project_id=proj.id, name=name)
        if key is None:
            raise _key_missing(name, proj.name)
        return scope, proj, key

    async def _record(
        self,
        tx: Transaction,
        actor: Actor,
        scope: Scope,
        project: Project,
        key: KeyRecord,
        *,
        kind: NoticeKind,
        until: datetime | None = None,
    ) -> None:
        """The audit event of a change to ``key``, and a DM to each other owner of its project."""
        detail = None
        if kind in (NoticeKind.EXPIRY_CHANGED, NoticeKind.KEY_ROLLED):
            detail = "never" if until is None else until.isoformat()
        await tx.add_audit(
            AuditEvent(
                org_id=scope.org.id,
                project_id=project.id,
                actor=actor.user_id,
                action=kind.value,
                at=self._clock(),
                key_name=key.name,
                key_masked=key.masked,
                origin=self._origin,
                detail=detail,
            )
        )
        await self._notify_owners(
            tx, actor, scope, project, kind=kind, key_name=key.name, key_masked=key.masked, until=until
        )

    async def _record_policy(self, tx: Transaction, actor: Actor, scope: Scope, detail: str) -> None:
        now = self._clock()
        await tx.add_audit(
            AuditEvent(
                org_id=scope.org.id,
                project_id=None,
                actor=actor.user_id,
                action=NoticeKind.POLICY_CHANGED.value,
                at=now,
                origin=self._origin,
                detail=detail,
            )
        )
        setting, value = detail.split(" ", 1)
        for grant in await tx.members(org_id=scope.org.id, project_id=None):
            if grant.role != OrgRole.OWNER or grant.user_id == actor.user_id:
                continue  # only org owners; the actor saw the reply
            await tx.notify(
                Notice(
                    kind=NoticeKind.POLICY_CHANGED,
                    recipient=grant.user_id,
                    team_id=actor.team_id,
                    enterprise_id=actor.enterprise_id,
                    actor=actor.user_id,
                    at=now,
                    org=shown_org(scope),
                    setting=setting,
                    value=value,
                    origin=self._origin,
                )
            )

    def _after_change(self, key: KeyRecord) -> None:
        self._on_key_changed(key.id)
        self._on_notify()


def _check_rollable(key: KeyRecord, *, project: str, now: datetime, grace: timedelta) -> None:
    """Refuse to roll a disabled or expired key, or one whose previous roll is still in its grace, unless
    this roll has no grace: then it ends that grace too (a leaked key: every old secret stops at once)."""
    status = status_of(disabled=key.disabled_at is not None, expires_at=key.expires_at, now=now)
    if status is KeyStatus.DISABLED:
        raise InvalidInput(
            f"`{key.name}` is disabled, so it cannot be rolled. Enable it first with "
            f"`/apikeys enable {project} {key.name}`, or delete it and create a new key."
        )
    if status is KeyStatus.EXPIRED:
        assert key.expires_at is not None
        raise InvalidInput(
            f"`{key.name}` expired on {_moment(key.expires_at)}, so it cannot be rolled. Change its expiry "
            f"first, e.g. `/apikeys expiry {project} {key.name} 30d`, or create a new key."
        )
    if key.retiring_at is not None and now < key.retiring_at and grace > timedelta(0):
        raise Conflict(
            f"`{key.name}` was rolled recently and its old secret still works until "
            f"{_moment(key.retiring_at)}. You can roll it again after that, or now with no grace "
            f"(`/apikeys roll {project} {key.name} grace 0`), which stops every old secret at once "
            "(for a leaked key)."
        )


def extended_expiry(policy: Policy, key: KeyRecord, *, project: str, now: datetime) -> datetime | None:
    """*Extend 30 days*: 30 days after the key's expiry (after now if that has passed), within
    ``policy`` (InvalidInput saying so, and how to set an earlier expiry, otherwise)."""
    wanted = max(key.expires_at or now, now) + EXTENSION
    try:
        return policy.expiry(wanted, asked=True, now=now)
    except InvalidInput as err:
        raise InvalidInput(
            *err.parts, f" Nothing changed; `/apikeys expiry {project} {key.name} <when>` sets an earlier expiry."
        ) from None

"""The buttons of a reminder DM (bot/domain/jobs.py): *Roll*, *Extend 30 days* and *Let it expire* on an
expiry nudge; *Delete…* and *Keep* on a stale one.

Every click re-checks, in the transaction of its change: the button is one keybot sent (the nudge exists,
belongs to the clicker's workspace, its token matches), the clicker got this reminder, nobody decided
it yet, the key is still there (and, for an expiry nudge, still has that expiry), and the clicker is
still an owner of its project. A refused click changes nothing and says why. The first decision wins:
it is recorded on the nudge, audited like the same command, and every copy of the reminder (the key's
other open reminders too) is updated to say who did what. *Delete…* only asks for the usual
confirmation; the deletion, when confirmed, closes the key's reminders (bot/services/keys.py).
"""

import hmac
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime

from bot.domain.durations import parse_duration
from bot.domain.errors import ConfirmationRefused, KeybotError, PermissionDenied, User
from bot.domain.jobs import EXTENSION, NUDGES, Decision, Job, JobKind, NudgeRef
from bot.domain.lifecycle import DEFAULT_GRACE, grace_period
from bot.domain.model import Actor, AuditEvent, KeyRecord, Project, Scope
from bot.domain.notices import NoticeKind
from bot.domain.roles import Action, allowed
from bot.ports import Transaction
from bot.services.base import Context, Service
from bot.services.keys import KeyMaker, KeyService
from bot.services.lifecycle import KeyChange, LifecycleService, RolledKey, extended_expiry
from bot.services.reminders import close_nudges
from bot.services.results import DeleteRequest

NOT_OURS = "This reminder is out of date, or its button is not one keybot sent. Nothing changed."
EXPIRY_ACCEPTED = "expiry accepted"  # audit actions of the decisions that change nothing on the key
STALE_KEPT = "stale key kept"


@dataclass(frozen=True, slots=True)
class NudgeOutcome:
    """The reply to *Let it expire* or *Keep*: the key as it stays."""

    decision: Decision
    project: str
    name: str
    masked: str
    expires_at: datetime | None
    now: datetime


@dataclass(frozen=True, slots=True)
class _Open:
    """A nudge a click may decide, with what the click acts on."""

    job: Job
    scope: Scope
    project: Project
    key: KeyRecord


def _answered(job: Job) -> KeybotError:
    if job.decided_by is None:
        return ConfirmationRefused("This reminder no longer applies. Nothing changed.")
    what = {
        Decision.ROLLED: "rolled the key",
        Decision.EXTENDED: "extended the key",
        Decision.LET_EXPIRE: "chose to let the key expire",
        Decision.KEPT: "chose to keep the key",
        Decision.DELETED: "deleted the key",
    }.get(job.decision or Decision.SKIPPED, "answered it")
    return ConfirmationRefused("This reminder was already answered: ", User(job.decided_by), f" {what}. Nothing changed.")


class NudgeService(Service):
    def __init__(self, context: Context, *, keys: KeyService, lifecycle: LifecycleService, maker: KeyMaker) -> None:
        super().__init__(context)
        self._keys = keys
        self._lifecycle = lifecycle
        self._maker = maker

    async def about(self, actor: Actor, ref: NudgeRef) -> tuple[str, str, str]:
        """The project, name and masked form of the key an expiry reminder is about, if the clicker may
        roll it now (what the roll modal shows); else the refusal the Roll button would give."""
        async with self._uow.read() as tx:
            nudge = await self._open(tx, actor, ref, kinds=(JobKind.EXPIRY_NUDGE,), action=Action.MANAGE_KEYS)
        return nudge.project.name, nudge.key.name, nudge.key.masked

    async def roll(self, actor: Actor, ref: NudgeRef, *, grace: str | None = None) -> RolledKey:
        """*Roll*: a new secret (returned once; the old one works for ``grace``, by default 24 h) and a
        fresh lifetime (the org's default lifetime, else its maximum, else 30 days)."""
        period = DEFAULT_GRACE if grace is None else grace_period(parse_duration(grace, allow_zero=True))
        async with self._uow.read() as tx:  # refuse before paying argon2
            await self._open(tx, actor, ref, kinds=(JobKind.EXPIRY_NUDGE,), action=Action.MANAGE_KEYS)
        new = await self._maker.new_key()
        async with self._uow.transaction() as tx:
            await tx.lock_team(actor.team_id, shared=True)  # authority is read after it: see lock_team
            nudge = await self._open(tx, actor, ref, kinds=(JobKind.EXPIRY_NUDGE,), action=Action.MANAGE_KEYS)
            scope, project, key = nudge.scope, nudge.project, nudge.key
            rolled = await self._lifecycle.roll_in(tx, actor, scope, project, key, new=new, grace=period)
            now = self._clock()
            expires_at = (await tx.org_policy(scope.org.id)).default_expiry(now=now) or now + EXTENSION
            renewed = replace(key, key_id=new[1].key_id, masked=rolled.masked)
            await self._lifecycle.set_expiry_in(tx, actor, scope, project, renewed, expires_at=expires_at)
            await self._close(tx, actor, nudge, renewed, decision=Decision.ROLLED, kinds=NUDGES, until=expires_at)
        self._changed(key)
        return replace(rolled, expires_at=expires_at)

    async def extend(self, actor: Actor, ref: NudgeRef) -> KeyChange:
        """*Extend 30 days*: the key expires 30 days later than it would have, within the policy."""
        async with self._uow.transaction() as tx:
            await tx.lock_team(actor.team_id, shared=True)
            nudge = await self._open(tx, actor, ref, kinds=(JobKind.EXPIRY_NUDGE,), action=Action.MANAGE_KEYS)
            scope, project, key = nudge.scope, nudge.project, nudge.key
            now = self._clock()
            expires_at = extended_expiry(await tx.org_policy(scope.org.id), key, project=project.name, now=now)
            await self._lifecycle.set_expiry_in(tx, actor, scope, project, key, expires_at=expires_at)
            kinds = (JobKind.EXPIRY_NUDGE,)
            await self._close(tx, actor, nudge, key, decision=Decision.EXTENDED, kinds=kinds, until=expires_at)
        self._changed(key)
        return KeyChange(NoticeKind.EXPIRY_CHANGED, project.name, key.name, key.masked, expires_at, now)

    async def let_expire(self, actor: Actor, ref: NudgeRef) -> NudgeOutcome:
        """*Let it expire*: nothing changes on the key; its remaining expiry reminders are cancelled."""
        return await self._acknowledge(actor, ref, kind=JobKind.EXPIRY_NUDGE, decision=Decision.LET_EXPIRE)

    async def keep(self, actor: Actor, ref: NudgeRef) -> NudgeOutcome:
        """*Keep*: the unused key stays; it is reminded of again after another ``stale-after`` unused."""
        return await self._acknowledge(actor, ref, kind=JobKind.STALE_NUDGE, decision=Decision.KEPT)

    async def delete(self, actor: Actor, ref: NudgeRef) -> DeleteRequest:
        """*Delete…*: the usual confirmation (a pending deletion, yours alone, 10 minutes)."""
        async with self._uow.read() as tx:
            nudge = await self._open(tx, actor, ref, kinds=(JobKind.STALE_NUDGE,), action=Action.DELETE_KEY)
        return await self._keys.request_delete(actor, project=nudge.project.name, name=nudge.key.name)

    # -- shared steps -------------------------------------------------------------------------

    async def _acknowledge(self, actor: Actor, ref: NudgeRef, *, kind: JobKind, decision: Decision) -> NudgeOutcome:
        async with self._uow.transaction() as tx:
            await tx.lock_team(actor.team_id, shared=True)
            nudge = await self._open(tx, actor, ref, kinds=(kind,), action=Action.MANAGE_KEYS)
            key, now = nudge.key, self._clock()
            if decision is Decision.LET_EXPIRE:
                await tx.cancel_jobs(key.id, kinds=[JobKind.EXPIRY_NUDGE], at=now)
            moment = key.expires_at if decision is Decision.LET_EXPIRE else nudge.job.data.since
            await tx.add_audit(
                AuditEvent(
                    org_id=nudge.scope.org.id,
                    project_id=nudge.project.id,
                    actor=actor.user_id,
                    action=EXPIRY_ACCEPTED if decision is Decision.LET_EXPIRE else STALE_KEPT,
                    at=now,
                    key_name=key.name,
                    key_masked=key.masked,
                    origin=self._origin,
                    detail=None if moment is None else moment.isoformat(),
                )
            )
            await self._close(tx, actor, nudge, key, decision=decision, kinds=(kind,), until=key.expires_at)
        self._on_notify()
        return NudgeOutcome(decision, nudge.project.name, key.name, key.masked, key.expires_at, now)

    async def _open(
        self, tx: Transaction, actor: Actor, ref: NudgeRef, *, kinds: Collection[JobKind], action: Action
    ) -> _Open:
        """The nudge ``ref`` names, if the clicker may decide it now; else a refusal that says why."""
        job = await tx.job(ref.job_id)
        token = job.data.token if job is not None else None
        if job is None or token is None or not hmac.compare_digest(token, ref.token) or job.team_id != actor.team_id:
            raise ConfirmationRefused(NOT_OURS)
        if job.kind not in kinds:
            raise ConfirmationRefused(NOT_OURS)
        if actor.user_id not in job.data.recipients:
            raise ConfirmationRefused(
                "This reminder was sent to other people, not to you. Nothing changed; "
                "`/apikeys show <project> <key-name>` shows a key you own."
            )
        if job.decision is not None:
            raise _answered(job)
        key = await tx.key_by_row_id(job.key_row_id) if job.key_row_id is not None else None
        project = await tx.project_by_id(key.project_id) if key is not None else None
        if key is None or project is None:
            raise ConfirmationRefused("That key was deleted. Nothing changed.")
        scope = await self._scope(tx, actor, project.name)
        if not allowed(action, org_role=scope.org_role, project_role=scope.project_role):
            raise PermissionDenied(
                f"You are no longer an owner of `{project.name}` or of the organization, so nothing changed. "
                "Ask an organization owner if you need access."
            )
        if job.kind is JobKind.EXPIRY_NUDGE and key.expires_at != job.data.expires_at:
            raise ConfirmationRefused(
                f"This reminder is out of date: the expiry of key `{key.name}` changed since it was sent. "
                f"Nothing changed; `/apikeys show {project.name} {key.name}` shows it now."
            )
        return _Open(job=job, scope=scope, project=project, key=key)

    async def _close(
        self,
        tx: Transaction,
        actor: Actor,
        nudge: _Open,
        key: KeyRecord,
        *,
        decision: Decision,
        kinds: Collection[JobKind],
        until: datetime | None,
    ) -> None:
        """Decide the clicked nudge (and the key's other open ones of ``kinds``) and update every copy;
        if another decision came first, everything this click did is rolled back."""
        closed = await close_nudges(
            tx,
            actor,
            key=key,
            project=nudge.project.name,
            decision=decision,
            kinds=kinds,
            at=self._clock(),
            until=until,
            origin=self._origin,
        )
        if nudge.job.id not in {job.id for job in closed}:
            latest = await tx.job(nudge.job.id)
            raise _answered(latest or nudge.job)

    def _changed(self, key: KeyRecord) -> None:
        self._on_key_changed(key.id)
        self._on_notify()

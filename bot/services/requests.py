"""Access requests (DESIGN.md §5.4, bot/domain/requests.py): ask for a key, approve or deny it from a DM,
reveal it once.

- ``request``: a project ``admin`` or ``read-write`` member asks; the project's owners (org owners
  included; the requester never) each get a DM with *Approve* and *Deny*; it expires unanswered after 72
  hours (a ``request expiry`` job, bot/services/jobs.py).
- *Approve* / *Deny*: the clicker must have got the DM and still be an owner; the first decision wins
  (one conditional update, across instances) and every approver's DM is updated (``chat.update``).
- *Reveal key*: the requester alone, once, within 24 hours of the approval, while still an ``admin`` or
  ``read-write`` member (or an owner): the key is created at the click (argon2 then) and its plaintext
  goes only into the reply to the click. It records the requester as its creator and the approver on
  the request (``show`` and ``audit`` display both).
- ``requests``: the pending requests the actor may decide, and the actor's own.
- ``void_requests_in`` ends a departed user's pending requests and unused reveal buttons (for the
  offboarding of DESIGN.md §5.5); ``awaiting`` lists the requests awaiting a user (for the App Home).

Every refusal says why and changes nothing.
"""

import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime

from bot.domain.durations import parse_when
from bot.domain.errors import ConfirmationRefused, Conflict, InvalidInput, KeybotError, PermissionDenied, User
from bot.domain.jobs import Decision, Job, JobData, JobKind, NewJob
from bot.domain.keys import NewKey
from bot.domain.lifecycle import Policy
from bot.domain.model import Actor, AuditEvent, Project, Scope
from bot.domain.names import shown, validate_name
from bot.domain.notices import Notice, NoticeKind
from bot.domain.requests import (
    REQUEST_TTL,
    REVEAL_TTL,
    AccessRequest,
    NewAccessRequest,
    RequestRef,
    RequestState,
    clean_reason,
    request_key_name,
)
from bot.domain.roles import Action, allowed
from bot.ports import Transaction
from bot.services.base import Context, Service, people_parts
from bot.services.keys import KeyMaker, KeyService
from bot.services.reminders import Where
from bot.services.results import CreatedKey

KEYBOT = "keybot"  # the actor of what keybot does by itself (an expiry)
LIST_LIMIT = 20
NOT_OURS = "This button is out of date, or not one keybot sent. Nothing changed."

# Audit actions
REQUESTED = "access requested"
APPROVED = "access approved"
DENIED = "access denied"
EXPIRED = "access request expired"
REVEAL_EXPIRED = "reveal expired"
REVEALED = "access revealed"
VOIDED = "access request void"


@dataclass(frozen=True, slots=True)
class RequestSent:
    """The reply to ``request``: the stored request and who was asked."""

    request: AccessRequest


@dataclass(frozen=True, slots=True)
class RequestDecided:
    """The reply to *Approve* or *Deny*."""

    request: AccessRequest
    state: RequestState


@dataclass(frozen=True, slots=True)
class RequestList:
    """``requests``: those the actor may decide on (``awaiting``), and the actor's own (newest first)."""

    awaiting: list[AccessRequest]
    own: list[AccessRequest]
    project: str | None
    now: datetime


def _overdue(request: AccessRequest, now: datetime) -> bool:
    """A pending request past its 72 hours, which the expiry job (polled, or behind after an outage)
    has not closed yet."""
    return request.due_at is not None and now >= request.due_at


def _ended(request: AccessRequest, *, for_requester: bool = False) -> KeybotError:
    """Why a button on ``request`` no longer works."""
    match request.state:
        case RequestState.APPROVED if for_requester:
            return ConfirmationRefused("The time to reveal this key is over (24 hours after the approval). Nothing changed; ask again with `/apikeys request " + request.project + "`.")
        case RequestState.APPROVED:
            return ConfirmationRefused("This request was already approved by ", User(request.decided_by or ""), ". Nothing changed.")
        case RequestState.DENIED:
            return ConfirmationRefused("This request was already denied by ", User(request.decided_by or ""), ". Nothing changed.")
        case RequestState.REVEALED:
            return ConfirmationRefused(
                f"This key was already revealed, as `{request.key_name}`: it is shown only once. Nothing changed. "
                f"If it was lost, ask an owner to roll it, or ask again with `/apikeys request {request.project}`."
            )
        case RequestState.EXPIRED:
            return ConfirmationRefused(
                "This request expired. Nothing changed; ask again with `/apikeys request " + request.project + "`."
            )
        case RequestState.VOID:
            return ConfirmationRefused("This request was withdrawn. Nothing changed.")
    return ConfirmationRefused(NOT_OURS)


def key_expiry(policy: Policy, expires: str | None, *, now: datetime) -> datetime | None:
    """The expiry of a key made ``now`` for a request that asked ``expires`` (None: the org's default),
    within ``policy`` (InvalidInput naming the maximum otherwise)."""
    requested = None if expires is None else parse_when(expires, now=now)
    return policy.expiry(requested, asked=expires is not None, now=now)


def revealed_expiry(policy: Policy, request: AccessRequest, *, now: datetime) -> datetime | None:
    """The expiry of the key a request reveals ``now``: what it asked for, never later. A date that has
    passed since it was asked refuses the reveal (InvalidInput); one beyond a policy tightened since it
    was asked becomes the longest the policy allows now."""
    requested = None
    if request.expires is not None:
        try:
            requested = parse_when(request.expires, now=now)
        except InvalidInput:
            raise InvalidInput(
                f"This key was asked to expire `{request.expires}`, which has passed, so it was not created. "
                f"Nothing changed; ask again with `/apikeys request {request.project}`."
            ) from None
    try:
        return policy.expiry(requested, asked=requested is not None, now=now)
    except InvalidInput:  # the policy tightened since it was asked: the longest it allows now
        return policy.default_expiry(now=now) if policy.max_lifetime is None else now + policy.max_lifetime


class RequestService(Service):
    def __init__(self, context: Context, *, keys: KeyService, maker: KeyMaker) -> None:
        super().__init__(context)
        self._keys = keys
        self._maker = maker

    # -- asking --------------------------------------------------------------------------------

    async def request(
        self, actor: Actor, *, project: str, expires: str | None = None, reason: str | None = None
    ) -> RequestSent:
        """Ask the project's owners for a key; they each get a DM with *Approve* and *Deny*."""
        validate_name(project, kind="project")
        why = None if reason is None else self._maker.key_format.refuse_key_in(clean_reason(reason), what="A reason")
        async with self._uow.transaction() as tx:
            await tx.lock_team(actor.team_id, shared=True)
            scope, proj = await self._requester_scope(tx, actor, project)
            now = self._clock()
            policy = await tx.org_policy(scope.org.id)
            if not policy.requests:
                raise PermissionDenied(
                    "Your organization's policy turned access requests off (`/apikeys policy requests`). "
                    f"Ask an owner of `{proj.name}` to create a key for you. Nothing was sent."
                )
            key_expiry(policy, expires, now=now)  # refused now, not after an owner approved
            approvers = [u for u in await tx.project_owners(org_id=scope.org.id, project_id=proj.id) if u != actor.user_id]
            if not approvers:
                raise PermissionDenied(f"Nobody but you could approve a request for `{proj.name}`. Nothing was sent.")
            try:
                request = await tx.add_request(
                    NewAccessRequest(
                        org_id=scope.org.id,
                        project_id=proj.id,
                        team_id=scope.org.team_id,
                        enterprise_id=actor.enterprise_id,
                        requester=actor.user_id,
                        created_at=now,
                        due_at=now + REQUEST_TTL,
                        approvers=tuple(approvers),
                        token=secrets.token_urlsafe(12),
                        reason=why,
                        expires=None if expires is None else expires.strip().lower(),
                    )
                )
            except Conflict:
                raise Conflict(
                    f"You already asked for a key of `{proj.name}` and no owner has answered yet. Nothing was sent; "
                    "`/apikeys requests` shows your requests."
                ) from None
            where = Where.of(scope, actor)
            job = where.job(JobKind.REQUEST_EXPIRY, due_at=request.due_at or now, now=now, key_row_id=None, data=JobData())
            await tx.schedule_job(_for_request(job, request.id))
            dm_job = await self._job(tx, request, JobKind.REQUEST_EXPIRY)
            await self._audit(tx, request, actor=actor.user_id, action=REQUESTED, at=now, detail=why)
            for approver in approvers:
                await tx.notify(_notice(request, NoticeKind.ACCESS_REQUESTED, approver, actor=actor.user_id, at=now, nudge=dm_job.id, origin=self._origin, token=request.token))
        self._on_notify()
        return RequestSent(request)

    async def _requester_scope(self, tx: Transaction, actor: Actor, project: str) -> tuple[Scope, Project]:
        scope = await self._scope(tx, actor, project)
        visible = scope.project is not None and allowed(
            Action.SEE_PROJECT, org_role=scope.org_role, project_role=scope.project_role
        )
        if not visible or scope.project is None:
            raise PermissionDenied(
                f"No project named `{shown(project)}` that you can see. `/apikeys projects` lists yours. Nothing was sent."
            )
        proj = scope.project
        if allowed(Action.CREATE_KEY, org_role=scope.org_role, project_role=scope.project_role):
            raise InvalidInput(
                f"You are an owner of `{proj.name}`: you need no approval. Create the key yourself with "
                f"`/apikeys create {proj.name} <key-name>`."
            )
        if not allowed(Action.REQUEST_KEY, org_role=scope.org_role, project_role=scope.project_role):
            owners = await tx.project_owners(org_id=scope.org.id, project_id=proj.id)
            raise PermissionDenied(
                f"Only `admin` and `read-write` members of `{proj.name}` may ask for a key; you are "
                f"`{scope.project_role or 'not a member'}` there. ",
                *people_parts(owners),
                f" can make you `read-write` (`/apikeys grant @you read-write {proj.name}`). Nothing was sent.",
            )
        return scope, proj

    # -- deciding ------------------------------------------------------------------------------

    async def approve(self, actor: Actor, ref: RequestRef) -> RequestDecided:
        """*Approve*: the requester gets a DM with *Reveal key*, which works for 24 hours."""
        return await self._decide(actor, ref, to=RequestState.APPROVED)

    async def deny(self, actor: Actor, ref: RequestRef) -> RequestDecided:
        """*Deny*: the requester is told; no key is made."""
        return await self._decide(actor, ref, to=RequestState.DENIED)

    async def _decide(self, actor: Actor, ref: RequestRef, *, to: RequestState) -> RequestDecided:
        async with self._uow.transaction() as tx:
            await tx.lock_team(actor.team_id, shared=True)  # roles are read after it: see lock_team
            request = await self._request(tx, actor, ref)
            if actor.user_id == request.requester:
                raise PermissionDenied("Nobody approves their own request. Nothing changed.")
            if actor.user_id not in request.approvers:
                raise ConfirmationRefused(
                    "This request was sent to its project's owners, not to you. Nothing changed; "
                    "`/apikeys requests` shows those you may decide on."
                )
            now = self._clock()
            if request.state is not RequestState.PENDING:
                raise _ended(request)
            if _overdue(request, now):  # its expiry job has not run yet: it is over all the same
                raise _ended(replace(request, state=RequestState.EXPIRED))
            scope = await self._scope(tx, actor, request.project)
            if scope.project is None or not allowed(Action.CREATE_KEY, org_role=scope.org_role, project_role=scope.project_role):
                raise PermissionDenied(
                    f"You are no longer an owner of `{request.project}` or of the organization, so you cannot "
                    "decide this request. Nothing changed."
                )
            reveal_until = now + REVEAL_TTL if to is RequestState.APPROVED else None
            if not await tx.move_request(
                request.id, from_states=(RequestState.PENDING,), to=to, at=now, by=actor.user_id, reveal_until=reveal_until
            ):
                latest = await tx.access_request(request.id)
                raise _ended(latest or request)
            decided = await tx.access_request(request.id)
            assert decided is not None
            dm_job = await self._job(tx, request, JobKind.REQUEST_EXPIRY)
            await tx.finish_job(dm_job.id, at=now, decision=Decision.CANCELLED)
            await self._audit(tx, decided, actor=actor.user_id, action=APPROVED if reveal_until else DENIED, at=now, target=request.requester)
            await _update_approvers(tx, decided, dm_job, actor=actor.user_id, at=now, origin=self._origin)
            if reveal_until is not None:
                where = Where(org_id=request.org_id, team_id=request.team_id, enterprise_id=request.enterprise_id)
                job = where.job(JobKind.REVEAL_EXPIRY, due_at=reveal_until, now=now, key_row_id=None, data=JobData())
                await tx.schedule_job(_for_request(job, request.id))
                reveal_job = await self._job(tx, request, JobKind.REVEAL_EXPIRY)
                notice = _notice(decided, NoticeKind.REQUEST_APPROVED, request.requester, actor=actor.user_id, at=now, nudge=reveal_job.id, origin=self._origin, token=request.token)
            else:
                notice = _notice(decided, NoticeKind.REQUEST_ENDED, request.requester, actor=actor.user_id, at=now, origin=self._origin, decision=to.value)
            await tx.notify(notice)
        self._on_notify()
        return RequestDecided(decided, to)

    # -- revealing -----------------------------------------------------------------------------

    async def reveal(self, actor: Actor, ref: RequestRef) -> CreatedKey:
        """*Reveal key*: the key is created now and its plaintext returned, once, to the requester."""
        async with self._uow.read() as tx:  # refuse before paying argon2
            await self._revealable(tx, actor, ref)
        new = await self._maker.new_key()
        try:
            return await self._reveal(actor, ref, new)
        except Conflict:
            # two clicks at once (two instances): both found no `request-<n>` yet, the other's insert won
            async with self._uow.read() as tx:
                latest = await tx.access_request(ref.request_id)
            if latest is not None and latest.state is not RequestState.APPROVED:
                raise _ended(latest, for_requester=True) from None
            raise

    async def _reveal(self, actor: Actor, ref: RequestRef, new: tuple[str, NewKey]) -> CreatedKey:
        async with self._uow.transaction() as tx:
            await tx.lock_team(actor.team_id, shared=True)
            request, scope, project = await self._revealable(tx, actor, ref)
            now = self._clock()
            policy = await tx.org_policy(scope.org.id)
            expires_at = revealed_expiry(policy, request, now=now)
            name = request_key_name(request.id)
            if await tx.key_named(project_id=project.id, name=name) is not None:
                name = f"{name}-{secrets.token_hex(3)}"
            created = await self._keys.insert(tx, actor, scope, project, name=name, key=new, expires_at=expires_at, by_policy=False)
            record = await tx.key_named(project_id=project.id, name=name)
            assert record is not None
            if not await tx.move_request(
                request.id, from_states=(RequestState.APPROVED,), to=RequestState.REVEALED, at=now,
                key_row_id=record.id, key_name=name,
            ):
                latest = await tx.access_request(request.id)
                raise _ended(latest or request, for_requester=True)  # rolls the key back
            revealed = await tx.access_request(request.id)
            assert revealed is not None
            await self._audit(tx, revealed, actor=actor.user_id, action=REVEALED, at=now, target=request.decided_by, key_name=name, key_masked=record.masked)
            reveal_job = await self._job(tx, request, JobKind.REVEAL_EXPIRY)
            await tx.finish_job(reveal_job.id, at=now, decision=Decision.CANCELLED)
            await tx.notify(
                _notice(revealed, NoticeKind.REVEAL_CLOSED, request.requester, actor=actor.user_id, at=now, nudge=reveal_job.id, origin=self._origin, decision=RequestState.REVEALED.value, key_name=name, key_masked=record.masked)
            )
        self._on_notify()
        return created

    async def _revealable(self, tx: Transaction, actor: Actor, ref: RequestRef) -> tuple[AccessRequest, Scope, Project]:
        request = await self._request(tx, actor, ref)
        if actor.user_id != request.requester:
            raise PermissionDenied(
                "Only ", User(request.requester), " can reveal this key: it was asked for by them. Nothing changed."
            )
        if request.state is not RequestState.APPROVED or (request.reveal_until and self._clock() >= request.reveal_until):
            raise _ended(request, for_requester=True)
        scope = await self._scope(tx, actor, request.project)
        project = scope.project
        can = allowed(Action.REQUEST_KEY, org_role=scope.org_role, project_role=scope.project_role) or allowed(
            Action.CREATE_KEY, org_role=scope.org_role, project_role=scope.project_role
        )
        if project is None or project.id != request.project_id or not can:
            raise PermissionDenied(
                f"You no longer hold a role in `{request.project}` that may have keys (`admin` or `read-write`), "
                "so this key was not created. Ask an owner of the project. Nothing changed."
            )
        return request, scope, project

    # -- reading -------------------------------------------------------------------------------

    async def requests(self, actor: Actor, *, project: str | None = None) -> RequestList:
        """``requests [<project>]``: the pending requests you may decide on, then your own."""
        if project is not None:
            validate_name(project, kind="project")
        async with self._uow.read() as tx:
            scope = await self._scope(tx, actor, project)
            if project is not None:
                visible = scope.project is not None and allowed(Action.SEE_PROJECT, org_role=scope.org_role, project_role=scope.project_role)
                if not visible:
                    raise PermissionDenied(f"No project named `{shown(project)}` that you can see. `/apikeys projects` lists yours.")
            rows = await tx.requests_seen_by(
                org_id=scope.org.id, user_id=actor.user_id, project_id=scope.project.id if scope.project else None, limit=LIST_LIMIT
            )
            awaiting = await self._decidable(tx, actor, rows)
        own = [r for r in rows if r.requester == actor.user_id]
        return RequestList(awaiting=awaiting, own=own, project=scope.project.name if scope.project else None, now=self._clock())

    async def awaiting(self, actor: Actor) -> list[AccessRequest]:
        """The pending requests ``actor`` may approve or deny now (for the App Home), newest first."""
        async with self._uow.read() as tx:
            scope = await tx.scope(team_id=actor.team_id, user_id=actor.user_id, project_name=None)
            if scope is None:
                return []
            rows = await tx.requests_seen_by(org_id=scope.org.id, user_id=actor.user_id, project_id=None, limit=LIST_LIMIT)
            return await self._decidable(tx, actor, rows)

    async def _decidable(self, tx: Transaction, actor: Actor, rows: list[AccessRequest]) -> list[AccessRequest]:
        found, now = [], self._clock()
        for request in rows:
            if request.state is not RequestState.PENDING or actor.user_id not in request.approvers:
                continue
            if _overdue(request, now):
                continue
            scope = await self._scope(tx, actor, request.project)
            if allowed(Action.CREATE_KEY, org_role=scope.org_role, project_role=scope.project_role):
                found.append(request)
        return found

    async def void_requests_of(self, org_id: int, *, user_id: str) -> int:
        """End ``user_id``'s pending requests and unused reveal buttons in the org (the user left); how many."""
        async with self._uow.transaction() as tx:
            count = await void_requests_in(tx, org_id=org_id, user_id=user_id, at=self._clock(), origin=self._origin)
        if count:
            self._on_notify()
        return count

    # -- shared steps --------------------------------------------------------------------------

    async def _request(self, tx: Transaction, actor: Actor, ref: RequestRef) -> AccessRequest:
        request = await tx.access_request(ref.request_id)
        if request is None or request.team_id != actor.team_id or not hmac.compare_digest(request.token, ref.token):
            raise ConfirmationRefused(NOT_OURS)
        return request

    async def _job(self, tx: Transaction, request: AccessRequest, kind: JobKind) -> Job:
        return next(job for job in await tx.request_jobs(request.id) if job.kind is kind)

    async def _audit(
        self,
        tx: Transaction,
        request: AccessRequest,
        *,
        actor: str,
        action: str,
        at: datetime,
        detail: str | None = None,
        target: str | None = None,
        key_name: str | None = None,
        key_masked: str | None = None,
    ) -> None:
        await _audit(tx, request, actor=actor, action=action, at=at, origin=self._origin, detail=detail, target=target, key_name=key_name, key_masked=key_masked)


def _for_request(job: NewJob, request_id: int) -> NewJob:
    return replace(job, request_id=request_id)


async def _audit(
    tx: Transaction,
    request: AccessRequest,
    *,
    actor: str,
    action: str,
    at: datetime,
    origin: str | None,
    detail: str | None = None,
    target: str | None = None,
    key_name: str | None = None,
    key_masked: str | None = None,
) -> None:
    await tx.add_audit(
        AuditEvent(
            org_id=request.org_id,
            project_id=request.project_id,
            actor=actor,
            action=action,
            at=at,
            key_name=key_name,
            key_masked=key_masked,
            target_user=target,
            origin=origin,
            detail=None if detail is None else detail[:200],
        )
    )


def _notice(
    request: AccessRequest,
    kind: NoticeKind,
    recipient: str,
    *,
    actor: str,
    at: datetime,
    origin: str | None,
    nudge: int | None = None,
    token: str | None = None,
    decision: str | None = None,
    key_name: str | None = None,
    key_masked: str | None = None,
) -> Notice:
    return Notice(
        kind=kind,
        recipient=recipient,
        team_id=request.team_id,
        enterprise_id=request.enterprise_id,
        actor=actor,
        at=at,
        project=request.project,
        value=request.reason,
        setting=request.expires,
        nudge=nudge,
        token=token,
        decision=decision,
        access_request=request.id,
        requester=request.requester,
        until=request.reveal_until if kind is NoticeKind.REQUEST_APPROVED else request.due_at,
        key_name=key_name,
        key_masked=key_masked,
        origin=origin,
    )


async def _update_approvers(
    tx: Transaction, request: AccessRequest, dm_job: Job, *, actor: str, at: datetime, origin: str | None
) -> None:
    """Queue the update of every approver's DM about ``request`` to say what became of it."""
    for approver in request.approvers:
        await tx.notify(
            _notice(request, NoticeKind.REQUEST_DECIDED, approver, actor=actor, at=at, nudge=dm_job.id, origin=origin, decision=request.state.value)
        )


async def expire_request(tx: Transaction, job: Job, *, now: datetime, origin: str | None) -> int:
    """A request's job fell due: a pending request expires (``request expiry``), or an unused reveal
    button stops working (``reveal expiry``). How many DMs it queued; 0 if it no longer applied."""
    if not await tx.finish_job(job.id, at=now):
        return 0  # another worker fired it, or a decision cancelled it: nothing of this one may commit
    request = await tx.access_request(job.request_id) if job.request_id is not None else None
    was = RequestState.PENDING if job.kind is JobKind.REQUEST_EXPIRY else RequestState.APPROVED
    if request is None or not await tx.move_request(request.id, from_states=(was,), to=RequestState.EXPIRED, at=now):
        await tx.decide_nudge(job.id, by=None, decision=Decision.SKIPPED, at=now)
        return 0
    expired = await tx.access_request(request.id)
    assert expired is not None
    if job.kind is JobKind.REQUEST_EXPIRY:
        await _audit(tx, expired, actor=KEYBOT, action=EXPIRED, at=now, origin=origin, target=request.requester)
        await _update_approvers(tx, expired, job, actor=KEYBOT, at=now, origin=origin)
        ended = _notice(expired, NoticeKind.REQUEST_ENDED, request.requester, actor=KEYBOT, at=now, origin=origin, decision=RequestState.EXPIRED.value)
        await tx.notify(ended)
        return len(request.approvers) + 1
    await _audit(tx, expired, actor=KEYBOT, action=REVEAL_EXPIRED, at=now, origin=origin, target=request.requester)
    await tx.notify(
        _notice(expired, NoticeKind.REVEAL_CLOSED, request.requester, actor=KEYBOT, at=now, nudge=job.id, origin=origin, decision=RequestState.EXPIRED.value)
    )
    return 1


async def void_requests_in(tx: Transaction, *, org_id: int, user_id: str, at: datetime, origin: str | None) -> int:
    """End ``user_id``'s pending requests (their approvers' DMs updated) and unused reveal buttons (their
    DM updated) in the org, in ``tx``: for a user who left. How many requests it ended."""
    count = 0
    for request in await tx.open_requests_of(org_id=org_id, user_id=user_id):
        was = request.state
        if not await tx.move_request(request.id, from_states=(was,), to=RequestState.VOID, at=at):
            continue
        count += 1
        void = await tx.access_request(request.id)
        assert void is not None
        await _audit(tx, void, actor=KEYBOT, action=VOIDED, at=at, origin=origin, target=user_id)
        for job in await tx.request_jobs(request.id):
            await tx.finish_job(job.id, at=at, decision=Decision.CANCELLED)
            if job.kind is JobKind.REQUEST_EXPIRY and was is RequestState.PENDING:
                await _update_approvers(tx, void, job, actor=KEYBOT, at=at, origin=origin)
            if job.kind is JobKind.REVEAL_EXPIRY and was is RequestState.APPROVED:
                closed = _notice(void, NoticeKind.REVEAL_CLOSED, user_id, actor=KEYBOT, at=at, nudge=job.id, origin=origin, decision=RequestState.VOID.value)
                await tx.notify(closed)
    return count

"""What the App Home and the create modal read (DESIGN.md §5.2): the viewer's roles, the projects they
own with key counts, their keys expiring soon, their keys unused for the org's stale period, and the
expiry choices the org's policy allows.

Access requests awaiting the viewer (DESIGN.md §5.4) belong in ``HomeData`` too, read in ``home()``
next to the stale keys, and shown by bot/slack/home.py where it marks their place.

Read-only: changes made from the Home or a modal go through the key and lifecycle services, which
re-check everything at submit time.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.domain.durations import format_duration
from bot.domain.errors import PermissionDenied
from bot.domain.jobs import stale_since
from bot.domain.lifecycle import DEFAULT_STALE_AFTER, Policy
from bot.domain.model import Actor, KeyRecord, Project, RoleGrant, Scope
from bot.domain.requests import AccessRequest
from bot.domain.roles import OrgRole, ProjectRole
from bot.ports import KeyListing, Transaction
from bot.services.base import Context, Service
from bot.services.people import shown_org
from bot.services.requests import RequestService

EXPIRING_WITHIN = timedelta(days=14)
HOME_PROJECTS = 20  # projects counted and listed on the Home; the rest are summarised
HOME_EXPIRING = 15  # expiring keys listed with buttons; the rest are summarised
HOME_STALE = 15  # stale keys listed with a button; the rest are summarised
HOME_REQUESTS = 10  # access requests awaiting the viewer listed with Approve / Deny; the rest are summarised
NEVER = "never"
# The expiry choices of the create modal, before the policy filters them.
EXPIRY_CHOICES = (timedelta(days=7), timedelta(days=30), timedelta(days=90), None)


@dataclass(frozen=True, slots=True)
class OwnedProject:
    name: str
    keys: int


@dataclass(frozen=True, slots=True)
class ExpiringKey:
    project: str
    key: KeyRecord


@dataclass(frozen=True, slots=True)
class StaleKey:
    """A key of a project the viewer owns, unused (never used) since ``since``."""

    project: str
    key: KeyRecord
    since: datetime


@dataclass(frozen=True, slots=True)
class HomeData:
    """One user's Home: ``owned`` holds the first ``HOME_PROJECTS`` of ``owned_total`` owned projects,
    ``expiring`` the first ``HOME_EXPIRING`` of ``expiring_total`` keys expiring within 14 days,
    ``stale`` the first ``HOME_STALE`` of ``stale_total`` keys unused for ``stale_after`` (the org's
    policy), longest unused first."""

    org: str
    user_id: str
    grants: list[RoleGrant]
    owned: list[OwnedProject]
    owned_total: int
    expiring: list[ExpiringKey]
    expiring_total: int
    now: datetime
    stale: list[StaleKey] = field(default_factory=list)
    stale_total: int = 0
    stale_after: timedelta = DEFAULT_STALE_AFTER
    awaiting: list[AccessRequest] = field(default_factory=list)  # requests the viewer may decide now
    awaiting_total: int = 0


@dataclass(frozen=True, slots=True)
class CreateForm:
    """What the create modal offers: the projects the user owns, and expiries (``<when>`` words) the
    policy allows, with the one chosen by default."""

    projects: list[str]
    expiries: list[str]
    default_expiry: str


def expiry_choices(policy: Policy) -> tuple[list[str], str]:
    """The ``<when>`` words the create modal offers under ``policy`` and the default one: 7d/30d/90d/never,
    without those beyond the maximum lifetime (which is then offered itself), the default lifetime
    added when it is not among them."""
    lifetimes: list[timedelta | None] = [
        c for c in EXPIRY_CHOICES if policy.max_lifetime is None or (c is not None and c <= policy.max_lifetime)
    ]
    if policy.max_lifetime is not None and policy.max_lifetime not in lifetimes:
        lifetimes.append(policy.max_lifetime)
    default = policy.default_lifetime or policy.max_lifetime
    if default is not None and default not in lifetimes:
        lifetimes.append(default)
    lifetimes.sort(key=lambda c: (c is None, c or timedelta()))
    words = [NEVER if c is None else format_duration(c) for c in lifetimes]
    return words, NEVER if default is None else format_duration(default)


async def owned_projects(tx: Transaction, scope: Scope, actor: Actor) -> list[Project]:
    """The projects ``actor`` owns: every project for an org owner, else those with a project owner role."""
    if scope.org_role is OrgRole.OWNER:
        return await tx.visible_projects(org_id=scope.org.id, user_id=actor.user_id, all_projects=True)
    grants = await tx.roles_of(org_id=scope.org.id, user_id=actor.user_id)
    owned = {g.project for g in grants if g.project is not None and g.role == ProjectRole.OWNER.value}
    found = await tx.visible_projects(org_id=scope.org.id, user_id=actor.user_id, all_projects=False)
    return [p for p in found if p.name in owned]


class HomeService(Service):
    def __init__(self, context: Context, *, listing: KeyListing, requests: RequestService | None = None) -> None:
        super().__init__(context)
        self._listing = listing
        self._requests = requests

    async def home(self, actor: Actor) -> HomeData:
        now = self._clock()
        async with self._uow.read() as tx:
            scope = await self._scope(tx, actor)
            grants = await tx.roles_of(org_id=scope.org.id, user_id=actor.user_id)
            owned = await owned_projects(tx, scope, actor)
            names = {p.id: p.name for p in owned}
            soon = await tx.expiring_keys(scope.org.id, after=now, until=now + EXPIRING_WITHIN)
            stale_after = (await tx.org_policy(scope.org.id)).stale_after
            unused = await tx.stale_keys(scope.org.id, unused_since=now - stale_after, now=now) if names else []
        stale = sorted(
            (
                StaleKey(names[k.project_id], k, stale_since(last_used_at=k.last_used_at, created_at=k.created_at))
                for k in unused
                if k.project_id in names
            ),
            key=lambda s: (s.since, s.project.lower(), s.key.name.lower()),
        )
        expiring = sorted(
            (ExpiringKey(names[k.project_id], k) for k in soon if k.project_id in names and k.disabled_at is None),
            key=lambda e: (e.key.expires_at or now, e.project.lower(), e.key.name.lower()),
        )
        awaiting = await self._requests.awaiting(actor) if self._requests is not None else []
        counted = []
        for project in owned[:HOME_PROJECTS]:
            page = await self._listing.key_listing(
                team_id=actor.team_id,
                user_id=actor.user_id,
                project_name=project.name,
                before_id=None,
                after_id=None,
                limit=1,
            )
            counted.append(OwnedProject(project.name, page.total))
        return HomeData(
            org=shown_org(scope),
            user_id=actor.user_id,
            grants=grants,
            owned=counted,
            owned_total=len(owned),
            expiring=expiring[:HOME_EXPIRING],
            expiring_total=len(expiring),
            now=now,
            stale=stale[:HOME_STALE],
            stale_total=len(stale),
            stale_after=stale_after,
            awaiting=awaiting[:HOME_REQUESTS],
            awaiting_total=len(awaiting),
        )

    async def create_form(self, actor: Actor) -> CreateForm:
        """The create modal's choices; PermissionDenied when the user owns no project."""
        async with self._uow.read() as tx:
            scope = await self._scope(tx, actor)
            owned = await owned_projects(tx, scope, actor)
            policy = await tx.org_policy(scope.org.id)
        if not owned:
            raise PermissionDenied(
                "You own no project, so you cannot create keys. `/apikeys projects` lists the projects you can see."
            )
        expiries, default = expiry_choices(policy)
        return CreateForm(projects=[p.name for p in owned], expiries=expiries, default_expiry=default)

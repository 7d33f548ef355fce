"""Rules of the services' authorization and audit paths that mutation testing (``make mutate``) showed
no test held: audit fields, demoting an owner through ``grant``, the pending deletion's project check,
page boundaries, what the ports are asked (which team is locked, how many rows are read), and the
texts that tell a user what to do."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import pytest

from bot.domain.errors import ConfirmationRefused, Conflict, InvalidInput, NotSetUp, PermissionDenied
from bot.domain.keys import KeyFormat
from bot.domain.model import Actor, AuditEvent, Project
from bot.domain.notices import SHELL_ORIGIN, NoticeKind
from bot.services import PAGE_SIZE, Context, Keybot, build_services
from bot.services.operators import BOOTSTRAP_ACTOR
from tests.fakes import CountingHasher, FakeClock, MemoryStore
from tests.fakes.transaction import MemoryTransaction

TEAM = "T0001"
OWNER = Actor(TEAM, "U0OWNER")
OWNER2 = Actor(TEAM, "U0OWNER2")
P_OWNER = Actor(TEAM, "U1POWNER")
OTHER_TEAM = "T0002"


class Recorder:
    """A transaction that writes down the arguments of some port calls, then makes them."""

    RECORDED = ("lock_team", "add_project", "ensure_org", "audit_page")

    def __init__(self, tx: MemoryTransaction, log: list[tuple[str, tuple[Any, ...], dict[str, Any]]]) -> None:
        self._tx = tx
        self._log = log

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._tx, name)
        if name not in self.RECORDED:
            return target

        async def call(*args: Any, **kwargs: Any) -> Any:
            self._log.append((name, args, kwargs))
            return await target(*args, **kwargs)

        return call


class RecordingStore(MemoryStore):
    """The in-memory store, with the listed calls of every transaction (and of the key listing) logged."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def _wrap(self, inner: AbstractAsyncContextManager[Any]) -> AbstractAsyncContextManager[Any]:
        @asynccontextmanager
        async def wrapped() -> AsyncIterator[Any]:
            async with inner as tx:
                yield Recorder(tx, self.log)

        return wrapped()

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        return self._wrap(super().transaction())

    def read(self) -> AbstractAsyncContextManager[Any]:
        return self._wrap(super().read())

    async def key_listing(self, **kwargs: Any) -> Any:
        self.log.append(("key_listing", (), kwargs))
        return await super().key_listing(**kwargs)

    def calls_of(self, name: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        return [(args, kwargs) for n, args, kwargs in self.log if n == name]


@dataclass
class World:
    keybot: Keybot
    store: RecordingStore
    clock: FakeClock

    def services(self, **context: Any) -> Keybot:
        return build_services(
            Context(uow=self.store, clock=self.clock, **context),
            listing=self.store,
            hasher=CountingHasher(),
            key_format=KeyFormat(),
        )

    def events(self, action: str) -> list[AuditEvent]:
        return [e for e in self.store.audit_events() if e.action == action]

    def org_id(self, team_id: str = TEAM) -> int:
        org = self.store.state.org_of_team(team_id)
        assert org is not None
        return org.id

    def project(self, name: str) -> Project:
        project = self.store.state.project_named(self.org_id(), name)
        assert project is not None
        return project


@pytest.fixture
async def world(hasher: CountingHasher, clock: FakeClock) -> World:
    """Two workspaces, so that an org id of 1 cannot pass for the right one by chance: `Acme` (T0001)
    is the second org, with owners OWNER and OWNER2, project `payments` owned by P_OWNER."""
    store = RecordingStore()
    keybot = build_services(Context(uow=store, clock=clock), listing=store, hasher=hasher, key_format=KeyFormat())
    await keybot.operators.bootstrap(team_id=OTHER_TEAM, owner="U9ELSEWHERE", org_name="Elsewhere")
    await keybot.operators.bootstrap(team_id=TEAM, owner=OWNER.user_id, org_name="Acme")
    await keybot.projects.create(Actor(OTHER_TEAM, "U9ELSEWHERE"), name="widgets")
    await keybot.projects.create(OWNER, name="payments")
    await keybot.people.grant(OWNER, user_id=OWNER2.user_id, role="owner")
    await keybot.people.grant(OWNER, user_id=P_OWNER.user_id, role="owner", project="payments")
    clock.advance(minutes=1)
    store.log.clear()
    return World(keybot, store, clock)


# --- audit fields ---------------------------------------------------------------------------------------


async def test_bootstrap_audits_who_was_made_owner_by_whom_when_and_in_which_org(world: World) -> None:
    await world.keybot.operators.bootstrap(team_id="T0003", owner="U3FIRST", org_name="Third")
    [event] = [e for e in world.events("role granted") if e.target_user == "U3FIRST"]
    assert event == AuditEvent(
        org_id=world.org_id("T0003"), project_id=None, actor=BOOTSTRAP_ACTOR, action="role granted",
        at=world.clock(), target_user="U3FIRST", role="owner", id=event.id,
    )
    assert BOOTSTRAP_ACTOR == "keybot bootstrap"
    [(_, ensure)] = world.store.calls_of("ensure_org")
    assert ensure == {"team_id": "T0003", "name": "Third", "at": world.clock()}


async def test_creating_a_project_audits_the_org_the_actor_and_the_time(world: World) -> None:
    world.clock.advance(minutes=5)
    await world.keybot.projects.create(OWNER2, name="search")
    project = world.project("search")
    [created] = [e for e in world.events("project created") if e.project_id == project.id]
    assert (created.org_id, created.actor, created.at) == (world.org_id(), OWNER2.user_id, world.clock())
    [key] = [e for e in world.events("key created") if e.project_id == project.id]
    assert (key.org_id, key.actor, key.key_name) == (world.org_id(), OWNER2.user_id, "default")
    [(_, add)] = world.store.calls_of("add_project")
    assert add == {"org_id": world.org_id(), "name": "search", "created_by": OWNER2.user_id, "at": world.clock()}


async def test_key_and_role_events_carry_the_actors_org(world: World) -> None:
    await world.keybot.keys.create(P_OWNER, project="payments", name="ci")
    request = await world.keybot.keys.request_delete(P_OWNER, project="payments", name="ci")
    await world.keybot.keys.confirm_delete(P_OWNER, token=request.token)
    await world.keybot.people.grant(OWNER, user_id="U5NEW", role="member")
    await world.keybot.people.revoke(OWNER, user_id="U5NEW")
    for action in ("key created", "key deleted", "role granted", "role revoked"):
        assert world.events(action)[-1].org_id == world.org_id(), action


async def test_owner_notices_about_a_key_made_in_the_shell_are_marked_as_such(world: World) -> None:
    await world.services(origin=SHELL_ORIGIN).keys.create(P_OWNER, project="payments", name="ci")
    rows = [r for r in world.store.outbox() if r.notice and r.notice.kind is NoticeKind.KEY_CREATED]
    assert {r.user_id for r in rows} == {OWNER.user_id, OWNER2.user_id}
    assert all(r.notice is not None and r.notice.origin == SHELL_ORIGIN for r in rows)


# --- roles ----------------------------------------------------------------------------------------------


async def test_one_of_two_org_owners_can_be_demoted_through_grant(world: World) -> None:
    change = await world.keybot.people.grant(OWNER, user_id=OWNER2.user_id, role="member")
    assert (change.user_id, change.role, change.project, change.previous) == (OWNER2.user_id, "member", None, "owner")
    assert world.store.state.org_roles[(world.org_id(), OWNER2.user_id)].value == "member"


async def test_the_last_org_owner_cannot_demote_themself_through_grant(world: World) -> None:
    await world.keybot.people.grant(OWNER, user_id=OWNER2.user_id, role="member")
    with pytest.raises(Conflict) as err:
        await world.keybot.people.grant(OWNER, user_id=OWNER.user_id, role="billing-admin")
    assert str(err.value) == (
        "The organization must keep at least one owner. Make someone else an owner first."
    )


async def test_a_grant_that_changes_nothing_still_says_who_and_where(world: World) -> None:
    org = await world.keybot.people.grant(OWNER, user_id=OWNER2.user_id, role="owner")
    assert (org.user_id, org.role, org.project, org.previous) == (OWNER2.user_id, "owner", None, "owner")
    project = await world.keybot.people.grant(OWNER, user_id=P_OWNER.user_id, role="owner", project="payments")
    assert (project.user_id, project.project, project.previous) == (P_OWNER.user_id, "payments", "owner")


async def test_a_revoke_says_who_lost_which_role_where(world: World) -> None:
    change = await world.keybot.people.revoke(OWNER, user_id=P_OWNER.user_id, project="payments")
    assert (change.user_id, change.role, change.project, change.previous) == (
        P_OWNER.user_id, None, "payments", "owner",
    )
    change = await world.keybot.people.revoke(OWNER, user_id=OWNER2.user_id)
    assert (change.user_id, change.project, change.previous) == (OWNER2.user_id, None, "owner")


async def test_role_changes_lock_the_actors_team_exclusively(world: World) -> None:
    await world.keybot.people.grant(OWNER, user_id="U5NEW", role="member")
    await world.keybot.people.revoke(OWNER, user_id="U5NEW")
    assert world.store.calls_of("lock_team") == [((TEAM,), {}), ((TEAM,), {})]


async def test_key_and_project_changes_lock_the_actors_team_shared(world: World) -> None:
    await world.keybot.keys.create(P_OWNER, project="payments", name="ci")
    request = await world.keybot.keys.request_delete(P_OWNER, project="payments", name="ci")
    await world.keybot.keys.confirm_delete(P_OWNER, token=request.token)
    await world.keybot.projects.create(OWNER, name="search")
    assert world.store.calls_of("lock_team") == [((TEAM,), {"shared": True})] * 3


async def test_the_organization_name_is_shown_up_to_its_64_characters(world: World) -> None:
    name = "The Very Long Name Of An Organization With Many Words In It"  # 59 characters
    await world.keybot.operators.bootstrap(team_id="T0003", owner="U3FIRST", org_name=name)
    assert (await world.keybot.people.whoami(Actor("T0003", "U3FIRST"))).org == name


async def test_org_owners_lists_the_owners_of_a_workspaces_org_only(world: World) -> None:
    await world.keybot.people.grant(OWNER, user_id="U5MEMBER", role="member")
    assert sorted(await world.keybot.operators.org_owners(TEAM)) == [OWNER.user_id, OWNER2.user_id]
    assert await world.keybot.operators.org_owners(OTHER_TEAM) == ["U9ELSEWHERE"]
    assert await world.keybot.operators.org_owners("T9NONE") == []


# --- the pending deletion's project ------------------------------------------------------------------------


async def test_a_confirm_whose_project_is_gone_changes_nothing(world: World) -> None:
    await world.keybot.keys.create(P_OWNER, project="payments", name="ci")
    request = await world.keybot.keys.request_delete(OWNER, project="payments", name="ci")
    del world.store.state.projects[world.project("payments").id]
    keys_before = dict(world.store.state.keys)
    with pytest.raises(ConfirmationRefused) as err:
        await world.keybot.keys.confirm_delete(OWNER, token=request.token)
    assert str(err.value) == "That project no longer exists. Nothing changed."
    assert world.store.state.keys.keys() == keys_before.keys()
    assert world.events("key deleted") == []


async def test_a_confirm_whose_project_now_belongs_to_another_org_changes_nothing(world: World) -> None:
    await world.keybot.keys.create(P_OWNER, project="payments", name="ci")
    request = await world.keybot.keys.request_delete(OWNER, project="payments", name="ci")
    payments = world.project("payments")
    world.store.state.projects[payments.id] = replace(payments, org_id=world.org_id(OTHER_TEAM))
    keys_before = dict(world.store.state.keys)
    with pytest.raises(ConfirmationRefused, match="That project no longer exists"):
        await world.keybot.keys.confirm_delete(OWNER, token=request.token)
    assert world.store.state.keys.keys() == keys_before.keys()


async def test_cancelling_a_deletion_of_a_key_already_deleted_says_it_was_deleted(world: World) -> None:
    await world.keybot.keys.create(P_OWNER, project="payments", name="ci")
    first = await world.keybot.keys.request_delete(OWNER, project="payments", name="ci")
    second = await world.keybot.keys.request_delete(OWNER, project="payments", name="ci")
    await world.keybot.keys.confirm_delete(OWNER, token=first.token)
    with pytest.raises(ConfirmationRefused, match="already deleted") as err:
        await world.keybot.keys.cancel_delete(OWNER, token=second.token)
    assert "`payments`" in str(err.value) and "`/apikeys audit payments`" in str(err.value)


async def test_cancelling_a_deletion_names_the_key(world: World) -> None:
    created = await world.keybot.keys.create(P_OWNER, project="payments", name="ci")
    request = await world.keybot.keys.request_delete(OWNER, project="payments", name="ci")
    cancelled = await world.keybot.keys.cancel_delete(OWNER, token=request.token)
    assert (cancelled.name, cancelled.masked) == ("ci", created.masked)


async def test_a_deletion_token_carries_144_random_bits(world: World) -> None:
    await world.keybot.keys.create(P_OWNER, project="payments", name="ci")
    tokens = {(await world.keybot.keys.request_delete(OWNER, project="payments", name="ci")).token for _ in range(20)}
    assert len(tokens) == 20
    assert {len(t) for t in tokens} == {24}  # 18 bytes, URL-safe base64


# --- pages ----------------------------------------------------------------------------------------------------


async def make_keys(world: World, count: int) -> None:
    for n in range(count - 1):  # `payments` already has its default key
        await world.keybot.keys.create(P_OWNER, project="payments", name=f"k{n:03}")


async def test_exactly_20_keys_make_one_page_with_nothing_older(world: World) -> None:
    await make_keys(world, PAGE_SIZE)
    page = await world.keybot.keys.page(P_OWNER, project="payments")
    assert len(page.keys) == PAGE_SIZE
    assert not page.has_older and not page.has_newer


async def test_21_keys_make_a_full_page_and_an_older_one(world: World) -> None:
    await make_keys(world, PAGE_SIZE + 1)
    page = await world.keybot.keys.page(P_OWNER, project="payments")
    assert len(page.keys) == PAGE_SIZE and page.has_older
    older = await world.keybot.keys.page(P_OWNER, project="payments", before_id=page.keys[-1].id)
    assert [k.name for k in older.keys] == ["default"]
    assert older.has_newer and not older.has_older


async def test_a_page_reads_one_row_more_than_it_shows_and_no_more(world: World) -> None:
    await make_keys(world, 30)
    await world.keybot.keys.page(P_OWNER, project="payments")
    [(_, listing)] = world.store.calls_of("key_listing")
    assert listing["limit"] == PAGE_SIZE + 1


async def audit_events_in_payments(world: World, count: int) -> None:
    """Bring `payments`' audit log to ``count`` events (it has 2: project and default key created)."""
    have = len([e for e in world.store.audit_events() if e.project_id == world.project("payments").id])
    for n in range(count - have):
        await world.keybot.people.grant(OWNER, user_id=f"U8R{n:03}", role="read-only", project="payments")


async def test_exactly_20_audit_events_make_one_page_with_nothing_older(world: World) -> None:
    await audit_events_in_payments(world, PAGE_SIZE)
    page = await world.keybot.audit.page(P_OWNER, project="payments")
    assert len(page.events) == PAGE_SIZE
    assert not page.has_older and not page.has_newer


async def test_21_audit_events_make_a_full_page_and_an_older_one(world: World) -> None:
    await audit_events_in_payments(world, PAGE_SIZE + 1)
    page = await world.keybot.audit.page(P_OWNER, project="payments")
    assert len(page.events) == PAGE_SIZE and page.has_older and not page.has_newer
    older = await world.keybot.audit.page(P_OWNER, project="payments", before_id=page.events[-1].id)
    assert [e.action for e in older.events] == ["project created"]
    assert older.has_newer and not older.has_older
    assert older.project == "payments"
    [*_, (_, asked)] = world.store.calls_of("audit_page")
    assert asked["limit"] == PAGE_SIZE + 1


# --- what a user is told ---------------------------------------------------------------------------------------


async def test_a_workspace_without_an_org_is_told_the_exact_bootstrap_command(world: World) -> None:
    with pytest.raises(NotSetUp) as err:
        await world.keybot.keys.page(Actor("T0NEW", "U1"), project="payments")
    assert str(err.value) == (
        "keybot is not set up for this workspace yet. An operator can run "
        "`keybot bootstrap --team-id T0NEW --owner <your user id>`."
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda k: k.keys.create(OWNER, project="-bad", name="ci"),
        lambda k: k.keys.page(OWNER, project="-bad"),
        lambda k: k.keys.request_delete(OWNER, project="-bad", name="ci"),
        lambda k: k.people.members(OWNER, project="-bad"),
        lambda k: k.people.grant(OWNER, user_id="U5", role="admin", project="-bad"),
        lambda k: k.people.revoke(OWNER, user_id="U5", project="-bad"),
        lambda k: k.audit.page(OWNER, project="-bad"),
        lambda k: k.projects.create(OWNER, name="-bad"),
    ],
)
async def test_a_bad_project_name_is_called_a_project_name(world: World, call: Any) -> None:
    with pytest.raises(InvalidInput) as err:
        await call(world.keybot)
    assert str(err.value).startswith("`-bad` is not a valid project name.")


@pytest.mark.parametrize(
    "call",
    [
        lambda k: k.keys.create(OWNER, project="payments", name="-bad"),
        lambda k: k.keys.request_delete(OWNER, project="payments", name="-bad"),
    ],
)
async def test_a_bad_key_name_is_called_a_key_name(world: World, call: Any) -> None:
    with pytest.raises(InvalidInput) as err:
        await call(world.keybot)
    assert str(err.value).startswith("`-bad` is not a valid key name.")


async def test_a_taken_key_name_is_named_with_its_project(world: World) -> None:
    await world.keybot.keys.create(P_OWNER, project="payments", name="ci")
    with pytest.raises(Conflict) as err:
        await world.keybot.keys.create(P_OWNER, project="payments", name="ci")
    assert str(err.value) == "A key named `ci` already exists in `payments`. Pick another name."


async def test_two_owners_racing_for_one_key_name_hear_the_same_message(world: World) -> None:
    results = await asyncio.gather(
        world.keybot.keys.create(P_OWNER, project="payments", name="ci"),
        world.keybot.keys.create(OWNER, project="payments", name="ci"),
        return_exceptions=True,
    )
    [refusal] = [r for r in results if isinstance(r, Exception)]
    assert isinstance(refusal, Conflict)
    assert str(refusal) == "A key named `ci` already exists in `payments`. Pick another name."


async def test_a_taken_project_name_is_named_as_it_was_first_spelled(world: World) -> None:
    with pytest.raises(Conflict) as err:
        await world.keybot.projects.create(OWNER, name="PAYMENTS")
    assert str(err.value) == "A project named `payments` already exists."


async def test_two_owners_racing_for_one_project_name_make_one_project(world: World) -> None:
    results = await asyncio.gather(
        world.keybot.projects.create(OWNER, name="search"),
        world.keybot.projects.create(OWNER2, name="Search"),
        return_exceptions=True,
    )
    [refusal] = [r for r in results if isinstance(r, Exception)]
    [made] = [p for p in world.store.state.projects.values() if p.name.lower() == "search"]
    assert isinstance(refusal, Conflict)
    assert str(refusal) == f"A project named `{made.name}` already exists."  # as the winner spelled it


class HiddenProjects(RecordingStore):
    """A database where the scope read does not yet see a project another transaction just made (as
    on PostgreSQL before it commits), so only the insert's unique index refuses the name."""

    def __init__(self) -> None:
        super().__init__()
        self.hide = False

    def _wrap(self, inner: AbstractAsyncContextManager[Any]) -> AbstractAsyncContextManager[Any]:
        wrapped = super()._wrap(inner)
        store = self

        @asynccontextmanager
        async def hiding() -> AsyncIterator[Any]:
            async with wrapped as tx:
                yield _Hiding(tx, store)

        return hiding()


class _Hiding:
    def __init__(self, tx: Any, store: HiddenProjects) -> None:
        self._tx, self._store = tx, store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    async def scope(self, **kwargs: Any) -> Any:
        scope = await self._tx.scope(**kwargs)
        return replace(scope, project=None, project_role=None) if self._store.hide and scope else scope


async def test_a_project_name_refused_only_by_the_unique_index_is_named_as_typed(clock: FakeClock) -> None:
    store = HiddenProjects()
    keybot = build_services(
        Context(uow=store, clock=clock), listing=store, hasher=CountingHasher(), key_format=KeyFormat()
    )
    await keybot.operators.bootstrap(team_id=TEAM, owner=OWNER.user_id, org_name="Acme")
    await keybot.projects.create(OWNER, name="search")
    store.hide = True
    with pytest.raises(Conflict) as err:
        await keybot.projects.create(OWNER, name="Search")
    assert str(err.value) == "A project named `Search` already exists."


async def test_someone_with_no_role_is_told_only_members_see_the_members(world: World) -> None:
    with pytest.raises(PermissionDenied) as err:
        await world.keybot.people.members(Actor(TEAM, "U7NOBODY"))
    assert str(err.value).startswith("Only members of this organization may see its members.")


# --- refusals of a delete click, and whether they end the prompt ---------------------------------------------


async def refusal_of(world: World, token: str, actor: Actor = OWNER) -> ConfirmationRefused | PermissionDenied:
    with pytest.raises((ConfirmationRefused, PermissionDenied)) as err:
        await world.keybot.keys.confirm_delete(actor, token=token)
    return err.value


async def test_an_unknown_confirmation_says_to_run_the_delete_again_and_leaves_the_prompt(world: World) -> None:
    err = await refusal_of(world, "no-such-token")
    assert str(err) == "This confirmation is not valid. Run `/apikeys delete <project> <key>` again."
    assert not err.final


async def test_someone_elses_confirmation_names_its_owner_and_leaves_the_prompt(world: World) -> None:
    await world.keybot.keys.create(P_OWNER, project="payments", name="ci")
    request = await world.keybot.keys.request_delete(P_OWNER, project="payments", name="ci")
    err = await refusal_of(world, request.token, OWNER)
    assert str(err) == f"Only @{P_OWNER.user_id}, who asked for this deletion, can confirm or cancel it. Nothing changed."
    assert not err.final


async def test_a_used_confirmation_ends_the_prompt(world: World) -> None:
    await world.keybot.keys.create(P_OWNER, project="payments", name="ci")
    request = await world.keybot.keys.request_delete(OWNER, project="payments", name="ci")
    await world.keybot.keys.cancel_delete(OWNER, token=request.token)
    err = await refusal_of(world, request.token)
    assert (str(err), err.final) == ("This confirmation was already used. Nothing changed.", True)


async def test_an_expired_confirmation_gives_the_exact_command_again_and_ends_the_prompt(world: World) -> None:
    await world.keybot.keys.create(P_OWNER, project="payments", name="ci")
    request = await world.keybot.keys.request_delete(OWNER, project="payments", name="ci")
    world.clock.advance(minutes=10)
    err = await refusal_of(world, request.token)
    assert str(err) == (
        "This confirmation expired (they last 10 minutes). Nothing changed; run `/apikeys delete payments ci` again."
    )
    assert err.final


@pytest.mark.parametrize("gone", ["key", "project"])
async def test_an_expired_confirmation_whose_key_or_project_is_gone_gives_the_usage(world: World, gone: str) -> None:
    await world.keybot.keys.create(P_OWNER, project="payments", name="ci")
    request = await world.keybot.keys.request_delete(OWNER, project="payments", name="ci")
    if gone == "key":
        other = await world.keybot.keys.request_delete(OWNER, project="payments", name="ci")
        await world.keybot.keys.confirm_delete(OWNER, token=other.token)
    else:
        del world.store.state.projects[world.project("payments").id]
    world.clock.advance(minutes=10)
    err = await refusal_of(world, request.token)
    assert str(err).endswith("Nothing changed; run `/apikeys delete <project> <key-name>` again.")


async def test_a_confirmation_for_a_key_deleted_meanwhile_ends_the_prompt(world: World) -> None:
    await world.keybot.keys.create(P_OWNER, project="payments", name="ci")
    first = await world.keybot.keys.request_delete(OWNER, project="payments", name="ci")
    second = await world.keybot.keys.request_delete(OWNER, project="payments", name="ci")
    await world.keybot.keys.confirm_delete(OWNER, token=first.token)
    err = await refusal_of(world, second.token)
    assert (str(err), err.final) == ("That key was already deleted. Nothing changed.", True)


async def test_a_confirmation_by_someone_no_longer_an_owner_ends_the_prompt(world: World) -> None:
    await world.keybot.keys.create(P_OWNER, project="payments", name="ci")
    request = await world.keybot.keys.request_delete(P_OWNER, project="payments", name="ci")
    await world.keybot.people.revoke(OWNER, user_id=P_OWNER.user_id, project="payments")
    err = await refusal_of(world, request.token, P_OWNER)
    assert isinstance(err, PermissionDenied) and err.final
    assert str(err) == (
        "You are no longer an organization owner or an owner of this project, so the key was not deleted."
    )


class StalePending(RecordingStore):
    """A database where a confirmation read its pending deletion just before another click used it (as
    two clicks can on PostgreSQL): the read says unused, the claim finds it used."""

    def __init__(self) -> None:
        super().__init__()
        self.stale: dict[str, Any] = {}

    def _wrap(self, inner: AbstractAsyncContextManager[Any]) -> AbstractAsyncContextManager[Any]:
        wrapped, store = super()._wrap(inner), self

        @asynccontextmanager
        async def stale() -> AsyncIterator[Any]:
            async with wrapped as tx:
                yield _Stale(tx, store)

        return stale()


class _Stale:
    def __init__(self, tx: Any, store: StalePending) -> None:
        self._tx, self._store = tx, store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    async def pending(self, token: str) -> Any:
        return self._store.stale.get(token) or await self._tx.pending(token)


async def test_a_click_that_loses_the_race_for_its_confirmation_ends_the_prompt(clock: FakeClock) -> None:
    store = StalePending()
    keybot = build_services(
        Context(uow=store, clock=clock), listing=store, hasher=CountingHasher(), key_format=KeyFormat()
    )
    await keybot.operators.bootstrap(team_id=TEAM, owner=OWNER.user_id, org_name="Acme")
    await keybot.projects.create(OWNER, name="payments")
    request = await keybot.keys.request_delete(OWNER, project="payments", name="default")
    store.stale[request.token] = store.state.pending[request.token]  # read before the other click
    await keybot.keys.cancel_delete(OWNER, token=request.token)  # the other click
    with pytest.raises(ConfirmationRefused) as err:
        await keybot.keys.confirm_delete(OWNER, token=request.token)
    assert (str(err.value), err.value.final) == ("This confirmation was already used. Nothing changed.", True)
    assert len(store.state.keys) == 1


async def test_the_audit_log_pages_back_to_newer_events(world: World) -> None:
    await audit_events_in_payments(world, 45)
    newest = await world.keybot.audit.page(P_OWNER, project="payments")
    middle = await world.keybot.audit.page(P_OWNER, project="payments", before_id=newest.events[-1].id)
    oldest = await world.keybot.audit.page(P_OWNER, project="payments", before_id=middle.events[-1].id)
    assert [len(p.events) for p in (newest, middle, oldest)] == [20, 20, 5]

    back = await world.keybot.audit.page(P_OWNER, project="payments", after_id=oldest.events[0].id)
    assert back == replace(middle, has_newer=True, has_older=True)
    assert back.project == "payments"
    top = await world.keybot.audit.page(P_OWNER, project="payments", after_id=middle.events[0].id)
    assert top.events == newest.events  # exactly 20 newer: the newest page, and nothing newer
    assert (top.has_newer, top.has_older, top.project) == (False, True, "payments")


async def test_paging_newer_from_the_newest_event_shows_the_newest_page(world: World) -> None:
    await audit_events_in_payments(world, 25)
    newest = await world.keybot.audit.page(P_OWNER, project="payments")
    again = await world.keybot.audit.page(P_OWNER, project="payments", after_id=newest.events[0].id)
    assert again == newest
    assert (again.has_newer, again.has_older) == (False, True)

"""The use cases of bot/services/ on the in-memory store, with a controllable clock."""

import asyncio
import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest

from bot.domain.errors import (
    ConfirmationRefused,
    Conflict,
    InvalidInput,
    KeybotError,
    NotFound,
    NotSetUp,
    PermissionDenied,
    User,
)
from bot.domain.keys import KeyFormat
from bot.domain.model import Actor, RoleGrant
from bot.domain.notices import Notice, NoticeKind
from bot.services import PAGE_SIZE, Keybot
from bot.services.results import CreatedKey
from bot.services.verification import Verifier
from tests.fakes import CountingHasher, FakeClock, MemoryStore, OutboxRow, State

TEAM = "T0001"
OWNER = Actor(TEAM, "U0OWNER")  # bootstrapped org owner
OWNER2 = Actor(TEAM, "U0OWNER2")  # second org owner
P_OWNER = Actor(TEAM, "U1POWNER")  # owner of `payments`
ADMIN = Actor(TEAM, "U2ADMIN")  # admin of `payments`
RW = Actor(TEAM, "U3RW")  # read-write in `payments`
RO = Actor(TEAM, "U4RO")  # read-only in `payments`
BILLING = Actor(TEAM, "U5BILLING")  # org billing-admin
MEMBER = Actor(TEAM, "U6MEMBER")  # org member
NOBODY = Actor(TEAM, "U7NOBODY")  # no role at all
STRANGER = Actor("T0002", "U9STRANGER")  # owner of another workspace's org

PAYMENTS_OWNERS = {OWNER.user_id, OWNER2.user_id, P_OWNER.user_id}


@dataclass
class World:
    keybot: Keybot
    store: MemoryStore
    clock: FakeClock
    hasher: CountingHasher
    payments_default: CreatedKey
    billing_default: CreatedKey

    def snapshot(self) -> State:
        return copy.deepcopy(self.store.state)

    def new_outbox(self, since: int) -> list[OutboxRow]:
        return self.store.outbox()[since:]


@pytest.fixture
async def world(keybot: Keybot, store: MemoryStore, clock: FakeClock, hasher: CountingHasher) -> World:
    """Org `Acme` (T0001) with projects `payments` and `billing`, every kind of role, and a second org."""
    await keybot.operators.bootstrap(team_id=TEAM, owner=OWNER.user_id, org_name="Acme")
    await keybot.operators.bootstrap(team_id=STRANGER.team_id, owner=STRANGER.user_id, org_name="Elsewhere")
    payments = await keybot.projects.create(OWNER, name="payments")
    billing = await keybot.projects.create(OWNER, name="billing")
    await keybot.people.grant(OWNER, user_id=OWNER2.user_id, role="owner")
    await keybot.people.grant(OWNER, user_id=BILLING.user_id, role="billing-admin")
    await keybot.people.grant(OWNER, user_id=MEMBER.user_id, role="member")
    for actor, role in ((P_OWNER, "owner"), (ADMIN, "admin"), (RW, "read-write"), (RO, "read-only")):
        await keybot.people.grant(OWNER, user_id=actor.user_id, role=role, project="payments")
    await keybot.projects.create(STRANGER, name="widgets")
    clock.advance(minutes=1)
    return World(keybot, store, clock, hasher, payments, billing)


def secret_of(plaintext: str) -> str:
    """The 22-character secret inside `kb_<key id>_<secret><checksum>`."""
    return plaintext.split("_", 2)[2][:22]


def assert_no_secret(row: OutboxRow, key: CreatedKey) -> None:
    """No field of a queued notice carries the key's plaintext or its secret."""
    for value in (row.text, repr(row.notice), row.notice.to_json() if row.notice else ""):
        assert key.plaintext not in value
        assert secret_of(key.plaintext) not in value


# -- bootstrap and projects ---------------------------------------------------------------------------


async def test_bootstrap_creates_the_org_and_its_owner_once(keybot: Keybot, store: MemoryStore) -> None:
    assert await keybot.operators.bootstrap(team_id=TEAM, owner=OWNER.user_id, org_name="Acme") is True
    state = copy.deepcopy(store.state)
    assert await keybot.operators.bootstrap(team_id=TEAM, owner=OWNER.user_id, org_name="Renamed") is False
    assert store.state == state
    assert len(store.state.orgs) == 1
    assert (await keybot.people.whoami(OWNER)).grants == [
        RoleGrant(user_id=OWNER.user_id, role="owner", project=None)
    ]
    assert (await keybot.people.whoami(OWNER)).org == "Acme"


async def test_bootstrap_with_another_owner_adds_an_owner_to_the_same_org(
    keybot: Keybot, store: MemoryStore
) -> None:
    await keybot.operators.bootstrap(team_id=TEAM, owner=OWNER.user_id, org_name="Acme")
    assert await keybot.operators.bootstrap(team_id=TEAM, owner=OWNER2.user_id, org_name="Acme") is True
    assert len(store.state.orgs) == 1
    assert (await keybot.people.whoami(OWNER2)).grants == [RoleGrant(OWNER2.user_id, "owner", None)]


async def test_a_workspace_without_an_org_is_told_how_to_bootstrap(keybot: Keybot) -> None:
    with pytest.raises(NotSetUp) as err:
        await keybot.people.whoami(NOBODY)
    assert "keybot bootstrap" in str(err.value)
    with pytest.raises(NotSetUp):
        await keybot.projects.create(NOBODY, name="payments")


async def test_create_project_makes_a_default_key_and_returns_its_plaintext_once(
    keybot: Keybot, store: MemoryStore, hasher: CountingHasher
) -> None:
    await keybot.operators.bootstrap(team_id=TEAM, owner=OWNER.user_id, org_name="Acme")
    created = await keybot.projects.create(OWNER, name="payments")
    assert (created.project, created.name) == ("payments", "default")
    parsed = KeyFormat().parse(created.plaintext)
    assert created.masked == KeyFormat().mask(created.plaintext)
    [row] = store.state.keys.values()
    assert (row.name, row.key_id, row.masked, row.created_by) == (
        "default",
        parsed.key_id,
        created.masked,
        "U0OWNER",
    )
    assert row.secret_hash != created.plaintext
    assert hasher.verify_sync(row.secret_hash, created.plaintext)
    page = await keybot.keys.page(OWNER, project="payments")
    assert [(k.name, k.masked) for k in page.keys] == [("default", created.masked)]
    assert all(created.plaintext not in repr(k) for k in page.keys)


async def test_only_org_owners_may_create_projects(world: World) -> None:
    for actor in (P_OWNER, ADMIN, RO, BILLING, MEMBER, NOBODY):
        state = world.snapshot()
        with pytest.raises(PermissionDenied) as err:
            await world.keybot.projects.create(actor, name="newproject")
        assert "organization owner" in str(err.value)
        assert world.store.state == state


async def test_a_refused_project_creation_pays_no_argon2(world: World) -> None:
    before = world.hasher.hashes
    with pytest.raises(PermissionDenied):
        await world.keybot.projects.create(NOBODY, name="newproject")
    assert world.hasher.hashes == before


async def test_project_names_are_unique_case_insensitively(world: World) -> None:
    state = world.snapshot()
    with pytest.raises(Conflict):
        await world.keybot.projects.create(OWNER, name="PayMents")
    assert world.store.state == state


async def test_project_names_are_found_case_insensitively(world: World) -> None:
    page = await world.keybot.keys.page(OWNER, project="PAYMENTS")
    assert page.project == "payments"


@pytest.mark.parametrize(
    "name", ["", "-abc", ".abc", "_abc", "a b", "a/b", "ä", "a" * 65, "<@U123>", "a`b", "a\nb"]
)
async def test_an_invalid_project_name_is_refused(world: World, name: str) -> None:
    state = world.snapshot()
    with pytest.raises(InvalidInput) as err:
        await world.keybot.projects.create(OWNER, name=name)
    assert "1–64 ASCII letters" in str(err.value)
    assert world.store.state == state


@pytest.mark.parametrize("name", ["a", "A" * 64, "9lives", "my-proj_1.2"])
async def test_a_valid_project_name_is_accepted(world: World, name: str) -> None:
    created = await world.keybot.projects.create(OWNER, name=name)
    assert created.project == name


# -- keys: who may -------------------------------------------------------------------------------------

Operation = Callable[[Keybot, Actor], Awaitable[object]]
KEY_OPERATIONS: dict[str, Operation] = {
    "create_key": lambda kb, actor: kb.keys.create(actor, project="payments", name="new-key"),
    "list_keys": lambda kb, actor: kb.keys.page(actor, project="payments"),
    "request_delete": lambda kb, actor: kb.keys.request_delete(actor, project="payments", name="default"),
    "audit": lambda kb, actor: kb.audit.page(actor, project="payments"),
}
REFUSED: dict[str, tuple[Actor, type[KeybotError]]] = {
    "admin": (ADMIN, PermissionDenied),
    "read-write": (RW, PermissionDenied),
    "read-only": (RO, PermissionDenied),
    "billing-admin": (BILLING, NotFound),
    "org-member": (MEMBER, NotFound),
    "no-role": (NOBODY, NotFound),
    "other-workspace-owner": (STRANGER, NotFound),
}


@pytest.mark.parametrize("who", list(REFUSED))
@pytest.mark.parametrize("operation", list(KEY_OPERATIONS))
async def test_only_owners_may_touch_keys(world: World, operation: str, who: str) -> None:
    actor, error = REFUSED[who]
    state, hashes = world.snapshot(), world.hasher.hashes
    with pytest.raises(error) as err:
        await KEY_OPERATIONS[operation](world.keybot, actor)
    assert world.store.state == state
    assert world.hasher.hashes == hashes
    if error is PermissionDenied:
        assert "Only owners of `payments` can " in str(err.value)
        helpers = {part.id for part in err.value.parts if isinstance(part, User)}
        assert helpers == {OWNER.user_id, OWNER2.user_id, P_OWNER.user_id}


async def test_read_only_member_cannot_list_keys(world: World) -> None:
    with pytest.raises(PermissionDenied) as err:
        await world.keybot.keys.page(RO, project="payments")
    assert str(err.value) == (
        f"Only owners of `payments` can list keys: @{OWNER.user_id} and @{OWNER2.user_id} (organization owners) "
        f"or @{P_OWNER.user_id} (project owner). Ask one of them to make you an owner of `payments`, or to do it "
        "for you."
    )


async def test_a_refused_org_action_names_the_organization_owners(world: World) -> None:
    with pytest.raises(PermissionDenied) as err:
        await world.keybot.projects.create(P_OWNER, name="ledger")
    assert str(err.value) == (
        f"Only organization owners can create projects: @{OWNER.user_id} and @{OWNER2.user_id}. Ask one of them."
    )


@pytest.mark.parametrize("who", list(REFUSED))
async def test_others_cannot_confirm_or_cancel_an_owners_pending_deletion(world: World, who: str) -> None:
    actor, _ = REFUSED[who]
    request = await world.keybot.keys.request_delete(OWNER, project="payments", name="default")
    state = world.snapshot()
    with pytest.raises(ConfirmationRefused):
        await world.keybot.keys.confirm_delete(actor, token=request.token)
    with pytest.raises(ConfirmationRefused):
        await world.keybot.keys.cancel_delete(actor, token=request.token)
    assert world.store.state == state


@pytest.mark.parametrize("operation", list(KEY_OPERATIONS))
async def test_a_non_member_gets_the_same_answer_whether_the_project_exists_or_not(
    world: World, operation: str
) -> None:
    errors = []
    for project in ("payments", "ghost"):
        ops: dict[str, Operation] = {
            "create_key": lambda kb, a, p=project: kb.keys.create(a, project=p, name="new-key"),
            "list_keys": lambda kb, a, p=project: kb.keys.page(a, project=p),
            "request_delete": lambda kb, a, p=project: kb.keys.request_delete(a, project=p, name="default"),
            "audit": lambda kb, a, p=project: kb.audit.page(a, project=p),
        }
        with pytest.raises(KeybotError) as err:
            await ops[operation](world.keybot, NOBODY)
        errors.append((type(err.value), str(err.value).replace(project, "<name>")))
    assert errors[0] == errors[1]
    assert errors[0][0] is NotFound


async def test_an_org_owner_asking_about_a_missing_project_gets_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        await world.keybot.keys.page(OWNER, project="ghost")


# -- keys: what owners do ---------------------------------------------------------------------------------

OWNERS = {"org-owner": OWNER, "project-owner": P_OWNER}


@pytest.mark.parametrize("who", list(OWNERS))
async def test_an_owner_creates_lists_and_deletes_keys(world: World, who: str) -> None:
    actor = OWNERS[who]
    created = await world.keybot.keys.create(actor, project="payments", name="ci")
    assert (created.project, created.name) == ("payments", "ci")
    KeyFormat().parse(created.plaintext)
    page = await world.keybot.keys.page(actor, project="payments")
    assert [k.name for k in page.keys] == ["ci", "default"]
    assert page.keys[0].masked == created.masked
    assert page.keys[0].created_by == actor.user_id
    assert page.keys[0].created_at == world.clock()

    request = await world.keybot.keys.request_delete(actor, project="payments", name="ci")
    assert (request.project, request.name, request.masked) == ("payments", "ci", created.masked)
    assert request.expires_at == world.clock() + timedelta(minutes=10)
    deleted = await world.keybot.keys.confirm_delete(actor, token=request.token)
    assert (deleted.project, deleted.name, deleted.masked) == ("payments", "ci", created.masked)
    assert [k.name for k in (await world.keybot.keys.page(actor, project="payments")).keys] == ["default"]


@pytest.mark.parametrize("who", list(OWNERS))
async def test_an_owner_can_cancel_a_deletion(world: World, who: str) -> None:
    actor = OWNERS[who]
    request = await world.keybot.keys.request_delete(actor, project="payments", name="default")
    cancelled = await world.keybot.keys.cancel_delete(actor, token=request.token)
    assert (cancelled.project, cancelled.name) == ("payments", "default")
    assert [k.name for k in (await world.keybot.keys.page(actor, project="payments")).keys] == ["default"]


async def test_key_names_are_unique_in_a_project_case_insensitively(world: World) -> None:
    state, hashes = world.snapshot(), world.hasher.hashes
    with pytest.raises(Conflict) as err:
        await world.keybot.keys.create(OWNER, project="payments", name="DEFAULT")
    assert "already exists" in str(err.value)
    assert world.store.state == state
    assert world.hasher.hashes == hashes


async def test_the_same_key_name_may_live_in_two_projects(world: World, key_format: KeyFormat) -> None:
    in_billing = await world.keybot.keys.create(OWNER, project="billing", name="ci")
    in_payments = await world.keybot.keys.create(OWNER, project="payments", name="ci")
    assert (in_billing.project, in_billing.name) == ("billing", "ci")
    assert (in_payments.project, in_payments.name) == ("payments", "ci")
    assert in_billing.plaintext != in_payments.plaintext and in_billing.masked != in_payments.masked

    billing = await world.keybot.keys.page(OWNER, project="billing")
    payments = await world.keybot.keys.page(OWNER, project="payments")
    [billing_ci] = [k for k in billing.keys if k.name == "ci"]
    [payments_ci] = [k for k in payments.keys if k.name == "ci"]
    assert billing_ci.id != payments_ci.id and billing_ci.project_id != payments_ci.project_id
    assert (billing_ci.masked, payments_ci.masked) == (in_billing.masked, in_payments.masked)

    verifier = Verifier(world.store, hasher=world.hasher, key_format=key_format, clock=world.clock)
    verdicts = [await verifier.verify(k.plaintext) for k in (in_billing, in_payments)]
    await verifier.aclose()
    assert [(v.valid, v.project, v.name) for v in verdicts] == [
        (True, "billing", "ci"),
        (True, "payments", "ci"),
    ]
    assert verdicts[0].key_id != verdicts[1].key_id


async def test_two_concurrent_creations_of_one_name_make_one_key(world: World) -> None:
    results = await asyncio.gather(
        world.keybot.keys.create(OWNER, project="payments", name="ci"),
        world.keybot.keys.create(P_OWNER, project="payments", name="CI"),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "CreatedKey"]
    names = [k.name.lower() for k in world.store.state.keys.values()]
    assert names.count("ci") == 1
    assert (
        sum(e.action == "key created" and e.key_name in ("ci", "CI") for e in world.store.audit_events()) == 1
    )


@pytest.mark.parametrize("name", ["", "-x", "a b", "x" * 65, "k/ey", "ключ"])
async def test_an_invalid_key_name_is_refused_before_any_work(world: World, name: str) -> None:
    calls = sum(world.store.calls.values())
    with pytest.raises(InvalidInput):
        await world.keybot.keys.create(OWNER, project="payments", name=name)
    with pytest.raises(InvalidInput):
        await world.keybot.keys.request_delete(OWNER, project="payments", name=name)
    assert sum(world.store.calls.values()) == calls


async def test_deleting_a_missing_key_says_so(world: World) -> None:
    with pytest.raises(NotFound) as err:
        await world.keybot.keys.request_delete(OWNER, project="payments", name="nope")
    assert "/apikeys list payments" in str(err.value)


async def test_the_plaintext_is_never_stored_anywhere(world: World) -> None:
    created = [world.payments_default, world.billing_default]
    created.append(await world.keybot.keys.create(P_OWNER, project="payments", name="ci"))
    created.append(await world.keybot.keys.create(OWNER, project="payments", name="prod"))
    request = await world.keybot.keys.request_delete(OWNER, project="payments", name="ci")
    await world.keybot.keys.confirm_delete(OWNER, token=request.token)
    await world.keybot.people.grant(P_OWNER, user_id=NOBODY.user_id, role="read-only", project="payments")
    audit = await world.keybot.audit.page(OWNER, project="payments")
    keys = await world.keybot.keys.page(OWNER, project="payments")

    everything = [str(v) for v in world.store.values()] + [repr(world.store.state), repr(audit), repr(keys)]
    notices = [row.notice for row in world.store.outbox()]
    everything += [n.to_json() for n in notices if n is not None]
    assert notices and all(notices) and world.store.audit_events()
    for key in created:
        for value in everything:
            assert key.plaintext not in value
            assert secret_of(key.plaintext) not in value


# -- pagination -----------------------------------------------------------------------------------------


async def test_45_keys_page_newest_first_and_back(world: World) -> None:
    await world.keybot.projects.create(OWNER, name="bulk")
    for i in range(1, 45):
        await world.keybot.keys.create(OWNER, project="bulk", name=f"key-{i:02}")
    names = ["default"] + [f"key-{i:02}" for i in range(1, 45)]
    newest_first = names[::-1]

    first = await world.keybot.keys.page(OWNER, project="bulk")
    assert [k.name for k in first.keys] == newest_first[:20]
    assert (first.has_newer, first.has_older) == (False, True)

    second = await world.keybot.keys.page(OWNER, project="bulk", before_id=first.keys[-1].id)
    assert [k.name for k in second.keys] == newest_first[20:40]
    assert (second.has_newer, second.has_older) == (True, True)

    third = await world.keybot.keys.page(OWNER, project="bulk", before_id=second.keys[-1].id)
    assert [k.name for k in third.keys] == newest_first[40:]
    assert (third.has_newer, third.has_older) == (True, False)

    back = await world.keybot.keys.page(OWNER, project="bulk", after_id=third.keys[0].id)
    assert [k.id for k in back.keys] == [k.id for k in second.keys]
    assert (back.has_newer, back.has_older) == (True, True)

    top = await world.keybot.keys.page(OWNER, project="bulk", after_id=back.keys[0].id)
    assert [k.id for k in top.keys] == [k.id for k in first.keys]
    assert (top.has_newer, top.has_older) == (False, True)


async def test_a_page_never_holds_more_than_20_keys(world: World) -> None:
    assert PAGE_SIZE == 20
    for i in range(21):
        await world.keybot.keys.create(OWNER, project="payments", name=f"k{i}")
    page = await world.keybot.keys.page(OWNER, project="payments")
    assert len(page.keys) == 20
    assert page.has_older


async def test_a_page_of_another_project_shows_none_of_this_projects_keys(world: World) -> None:
    await world.keybot.keys.create(OWNER, project="payments", name="ci")
    page = await world.keybot.keys.page(OWNER, project="billing")
    assert [k.name for k in page.keys] == ["default"]
    assert (page.has_newer, page.has_older) == (False, False)


# -- the delete flow --------------------------------------------------------------------------------------


async def key_names(world: World, project: str = "payments") -> list[str]:
    return [k.name for k in (await world.keybot.keys.page(OWNER, project=project)).keys]


async def test_another_owners_click_changes_nothing_and_leaves_the_deletion_usable(world: World) -> None:
    request = await world.keybot.keys.request_delete(P_OWNER, project="payments", name="default")
    with pytest.raises(ConfirmationRefused) as err:
        await world.keybot.keys.confirm_delete(OWNER, token=request.token)
    assert User(P_OWNER.user_id) in err.value.parts
    assert f"Only @{P_OWNER.user_id}, who asked" in str(err.value)
    assert world.store.state.pending[request.token].used_at is None
    assert await key_names(world) == ["default"]
    deleted = await world.keybot.keys.confirm_delete(P_OWNER, token=request.token)
    assert deleted.name == "default"
    assert await key_names(world) == []


async def test_the_same_user_id_in_another_workspace_cannot_confirm(world: World) -> None:
    request = await world.keybot.keys.request_delete(OWNER, project="payments", name="default")
    with pytest.raises(ConfirmationRefused):
        await world.keybot.keys.confirm_delete(Actor("T0002", OWNER.user_id), token=request.token)
    assert await key_names(world) == ["default"]


async def test_an_unknown_token_is_refused(world: World) -> None:
    with pytest.raises(ConfirmationRefused):
        await world.keybot.keys.confirm_delete(OWNER, token="not-a-token")
    with pytest.raises(ConfirmationRefused):
        await world.keybot.keys.cancel_delete(OWNER, token="not-a-token")


async def test_a_second_confirm_changes_nothing(world: World) -> None:
    request = await world.keybot.keys.request_delete(OWNER, project="payments", name="default")
    await world.keybot.keys.confirm_delete(OWNER, token=request.token)
    state = world.snapshot()
    with pytest.raises(ConfirmationRefused) as err:
        await world.keybot.keys.confirm_delete(OWNER, token=request.token)
    assert "already used" in str(err.value)
    assert world.store.state == state
    assert sum(e.action == "key deleted" for e in world.store.audit_events()) == 1


async def test_two_concurrent_confirms_delete_once(world: World) -> None:
    request = await world.keybot.keys.request_delete(OWNER, project="payments", name="default")
    results = await asyncio.gather(
        world.keybot.keys.confirm_delete(OWNER, token=request.token),
        world.keybot.keys.confirm_delete(OWNER, token=request.token),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["ConfirmationRefused", "DeletedKey"]
    assert sum(e.action == "key deleted" for e in world.store.audit_events()) == 1


async def test_a_confirm_after_ten_minutes_is_refused(world: World) -> None:
    request = await world.keybot.keys.request_delete(OWNER, project="payments", name="default")
    world.clock.advance(minutes=10)
    with pytest.raises(ConfirmationRefused) as err:
        await world.keybot.keys.confirm_delete(OWNER, token=request.token)
    assert "expired" in str(err.value)
    assert await key_names(world) == ["default"]


async def test_a_confirm_just_before_ten_minutes_deletes(world: World) -> None:
    request = await world.keybot.keys.request_delete(OWNER, project="payments", name="default")
    world.clock.advance(minutes=9, seconds=59)
    await world.keybot.keys.confirm_delete(OWNER, token=request.token)
    assert await key_names(world) == []


async def test_cancel_uses_the_pending_deletion_up(world: World) -> None:
    request = await world.keybot.keys.request_delete(OWNER, project="payments", name="default")
    await world.keybot.keys.cancel_delete(OWNER, token=request.token)
    with pytest.raises(ConfirmationRefused):
        await world.keybot.keys.confirm_delete(OWNER, token=request.token)
    with pytest.raises(ConfirmationRefused):
        await world.keybot.keys.cancel_delete(OWNER, token=request.token)
    assert await key_names(world) == ["default"]
    assert not any(e.action == "key deleted" for e in world.store.audit_events())


async def test_a_confirm_for_a_key_deleted_meanwhile_changes_nothing(world: World) -> None:
    first = await world.keybot.keys.request_delete(OWNER, project="payments", name="default")
    second = await world.keybot.keys.request_delete(P_OWNER, project="payments", name="default")
    await world.keybot.keys.confirm_delete(OWNER, token=first.token)
    state = world.snapshot()
    with pytest.raises(ConfirmationRefused) as err:
        await world.keybot.keys.confirm_delete(P_OWNER, token=second.token)
    assert "already deleted" in str(err.value)
    assert world.store.state == state


async def test_an_owner_demoted_before_confirming_cannot_delete(world: World) -> None:
    request = await world.keybot.keys.request_delete(P_OWNER, project="payments", name="default")
    await world.keybot.people.grant(OWNER, user_id=P_OWNER.user_id, role="read-only", project="payments")
    state = world.snapshot()
    with pytest.raises(PermissionDenied) as err:
        await world.keybot.keys.confirm_delete(P_OWNER, token=request.token)
    assert "no longer" in str(err.value)
    assert world.store.state == state
    assert await key_names(world) == ["default"]


async def test_an_org_owner_revoked_before_confirming_cannot_delete(world: World) -> None:
    request = await world.keybot.keys.request_delete(OWNER2, project="payments", name="default")
    await world.keybot.people.revoke(OWNER, user_id=OWNER2.user_id)
    with pytest.raises(PermissionDenied):
        await world.keybot.keys.confirm_delete(OWNER2, token=request.token)
    assert await key_names(world) == ["default"]


# -- notifications ----------------------------------------------------------------------------------------


async def test_every_owner_gets_one_notice_when_a_key_is_created(world: World) -> None:
    since = len(world.store.outbox())
    created = await world.keybot.keys.create(P_OWNER, project="payments", name="ci")
    rows = world.new_outbox(since)
    assert sorted(r.user_id for r in rows) == sorted(set(PAYMENTS_OWNERS) - {P_OWNER.user_id})
    for row in rows:
        assert row.notice == Notice(
            kind=NoticeKind.KEY_CREATED,
            recipient=row.user_id,
            team_id=TEAM,
            actor=P_OWNER.user_id,
            at=world.clock(),
            project="payments",
            key_name="ci",
            key_masked=created.masked,
        )
        assert_no_secret(row, created)
        assert row.sent_at is None and row.next_attempt_at == world.clock()


async def test_every_owner_gets_one_notice_when_a_key_is_deleted(world: World) -> None:
    request = await world.keybot.keys.request_delete(OWNER, project="payments", name="default")
    since = len(world.store.outbox())
    await world.keybot.keys.confirm_delete(OWNER, token=request.token)
    rows = world.new_outbox(since)
    assert sorted(r.user_id for r in rows) == sorted(set(PAYMENTS_OWNERS) - {OWNER.user_id})
    for row in rows:
        assert row.notice is not None
        assert (row.notice.kind, row.notice.recipient, row.notice.actor) == (
            NoticeKind.KEY_DELETED,
            row.user_id,
            OWNER.user_id,
        )
        assert (row.notice.project, row.notice.key_name, row.notice.key_masked) == (
            "payments",
            "default",
            world.payments_default.masked,
        )
        assert_no_secret(row, world.payments_default)


async def test_notices_carry_the_actors_enterprise(world: World) -> None:
    grid_owner = Actor(TEAM, OWNER.user_id, enterprise_id="E0GRID")
    since = len(world.store.outbox())
    await world.keybot.keys.create(grid_owner, project="payments", name="ci")
    await world.keybot.people.grant(grid_owner, user_id=NOBODY.user_id, role="member")
    notices = [row.notice for row in world.new_outbox(since)]
    assert len(notices) == len(PAYMENTS_OWNERS) - 1 + 1  # not the actor; plus the grantee
    assert all(n is not None and n.enterprise_id == "E0GRID" for n in notices)


async def test_requesting_or_cancelling_a_deletion_sends_no_dm(world: World) -> None:
    since = len(world.store.outbox())
    request = await world.keybot.keys.request_delete(OWNER, project="payments", name="default")
    await world.keybot.keys.cancel_delete(OWNER, token=request.token)
    assert world.new_outbox(since) == []


async def test_org_owners_are_told_about_a_new_project_and_its_default_key(world: World) -> None:
    since = len(world.store.outbox())
    created = await world.keybot.projects.create(OWNER, name="ledger")
    rows = world.new_outbox(since)
    assert sorted(r.user_id for r in rows) == [OWNER2.user_id]
    for row in rows:
        assert row.notice is not None
        assert (row.notice.kind, row.notice.project, row.notice.key_name, row.notice.key_masked) == (
            NoticeKind.KEY_CREATED,
            "ledger",
            "default",
            created.masked,
        )
        assert_no_secret(row, created)


async def test_a_refused_operation_queues_no_dm(world: World) -> None:
    since = len(world.store.outbox())
    with pytest.raises(PermissionDenied):
        await world.keybot.keys.create(RO, project="payments", name="ci")
    with pytest.raises(Conflict):
        await world.keybot.keys.create(OWNER, project="payments", name="default")
    assert world.new_outbox(since) == []


async def test_a_user_granted_a_project_role_gets_a_notice(world: World) -> None:
    since = len(world.store.outbox())
    change = await world.keybot.people.grant(
        P_OWNER, user_id=NOBODY.user_id, role="Read-Only", project="PAYMENTS"
    )
    assert (change.user_id, change.role, change.project) == (NOBODY.user_id, "read-only", "payments")
    [row] = world.new_outbox(since)
    assert row.user_id == NOBODY.user_id
    assert row.notice == Notice(
        kind=NoticeKind.ROLE_GRANTED,
        recipient=NOBODY.user_id,
        team_id=TEAM,
        actor=P_OWNER.user_id,
        at=world.clock(),
        project="payments",
        org="Acme",
        role="read-only",
    )


async def test_a_user_granted_an_org_role_gets_a_notice(world: World) -> None:
    since = len(world.store.outbox())
    change = await world.keybot.people.grant(OWNER, user_id=NOBODY.user_id, role="member")
    assert (change.role, change.project) == ("member", None)
    [row] = world.new_outbox(since)
    assert row.user_id == NOBODY.user_id
    assert row.notice is not None
    assert (row.notice.kind, row.notice.actor, row.notice.project, row.notice.org, row.notice.role) == (
        NoticeKind.ROLE_GRANTED,
        OWNER.user_id,
        None,
        "Acme",
        "member",
    )


async def test_a_user_whose_role_is_revoked_gets_a_notice(world: World) -> None:
    since = len(world.store.outbox())
    await world.keybot.people.revoke(OWNER, user_id=RO.user_id, project="payments")
    await world.keybot.people.revoke(OWNER, user_id=MEMBER.user_id)
    rows = world.new_outbox(since)
    assert [r.user_id for r in rows] == [RO.user_id, MEMBER.user_id]
    summary = [(r.notice.kind, r.notice.recipient, r.notice.project, r.notice.role) for r in rows if r.notice]
    assert summary == [
        (NoticeKind.ROLE_REVOKED, RO.user_id, "payments", None),
        (NoticeKind.ROLE_REVOKED, MEMBER.user_id, None, None),
    ]


# -- roles ------------------------------------------------------------------------------------------------


async def test_the_last_org_owner_cannot_be_revoked(keybot: Keybot, store: MemoryStore) -> None:
    await keybot.operators.bootstrap(team_id=TEAM, owner=OWNER.user_id, org_name="Acme")
    state = copy.deepcopy(store.state)
    with pytest.raises(Conflict) as err:
        await keybot.people.revoke(OWNER, user_id=OWNER.user_id)
    assert "at least one owner" in str(err.value)
    assert store.state == state


@pytest.mark.parametrize("role", ["member", "billing-admin"])
async def test_the_last_org_owner_cannot_be_demoted(keybot: Keybot, store: MemoryStore, role: str) -> None:
    await keybot.operators.bootstrap(team_id=TEAM, owner=OWNER.user_id, org_name="Acme")
    with pytest.raises(Conflict):
        await keybot.people.grant(OWNER, user_id=OWNER.user_id, role=role)
    assert (await keybot.people.whoami(OWNER)).grants == [RoleGrant(OWNER.user_id, "owner", None)]


async def test_an_owner_may_leave_while_another_owner_remains(world: World) -> None:
    await world.keybot.people.revoke(OWNER2, user_id=OWNER.user_id)
    assert (await world.keybot.people.whoami(OWNER)).grants == []
    with pytest.raises(Conflict):
        await world.keybot.people.revoke(OWNER2, user_id=OWNER2.user_id)


async def test_two_owners_revoking_each_other_at_once_leave_one_owner(world: World) -> None:
    results = await asyncio.gather(
        world.keybot.people.revoke(OWNER, user_id=OWNER2.user_id),
        world.keybot.people.revoke(OWNER2, user_id=OWNER.user_id),
        return_exceptions=True,
    )
    assert sum(isinstance(r, BaseException) for r in results) == 1
    owners = [u for (_, u), r in world.store.state.org_roles.items() if r == "owner" and u.startswith("U0")]
    assert len(owners) == 1


async def test_granting_an_owner_the_owner_role_again_is_harmless(keybot: Keybot) -> None:
    await keybot.operators.bootstrap(team_id=TEAM, owner=OWNER.user_id, org_name="Acme")
    await keybot.people.grant(OWNER, user_id=OWNER.user_id, role="owner")
    assert (await keybot.people.whoami(OWNER)).grants == [RoleGrant(OWNER.user_id, "owner", None)]


async def test_a_project_owner_cannot_grant_or_revoke_org_roles(world: World) -> None:
    state = world.snapshot()
    with pytest.raises(PermissionDenied):
        await world.keybot.people.grant(P_OWNER, user_id=NOBODY.user_id, role="member")
    with pytest.raises(PermissionDenied):
        await world.keybot.people.grant(P_OWNER, user_id=P_OWNER.user_id, role="owner")
    with pytest.raises(PermissionDenied):
        await world.keybot.people.revoke(P_OWNER, user_id=MEMBER.user_id)
    assert world.store.state == state


async def test_a_project_owner_manages_roles_in_its_own_project(world: World) -> None:
    await world.keybot.people.grant(P_OWNER, user_id=NOBODY.user_id, role="admin", project="payments")
    assert (
        RoleGrant(NOBODY.user_id, "admin", "payments")
        in (await world.keybot.people.members(OWNER, project="payments")).grants
    )
    await world.keybot.people.revoke(P_OWNER, user_id=NOBODY.user_id, project="payments")
    assert (await world.keybot.people.whoami(NOBODY)).grants == []


async def test_a_project_owner_cannot_touch_another_project(world: World) -> None:
    state = world.snapshot()
    with pytest.raises(NotFound):
        await world.keybot.people.grant(P_OWNER, user_id=NOBODY.user_id, role="owner", project="billing")
    with pytest.raises(NotFound):
        await world.keybot.keys.create(P_OWNER, project="billing", name="ci")
    with pytest.raises(NotFound):
        await world.keybot.keys.page(P_OWNER, project="billing")
    assert world.store.state == state


async def test_a_project_owner_with_a_viewer_role_elsewhere_still_cannot_manage_it(world: World) -> None:
    await world.keybot.people.grant(OWNER, user_id=P_OWNER.user_id, role="read-only", project="billing")
    with pytest.raises(PermissionDenied):
        await world.keybot.people.grant(P_OWNER, user_id=P_OWNER.user_id, role="owner", project="billing")
    with pytest.raises(PermissionDenied):
        await world.keybot.keys.page(P_OWNER, project="billing")


async def test_a_viewer_cannot_grant_project_roles(world: World) -> None:
    for actor in (ADMIN, RW, RO):
        with pytest.raises(PermissionDenied):
            await world.keybot.people.grant(actor, user_id=actor.user_id, role="owner", project="payments")


@pytest.mark.parametrize(("role", "project"), [("admin", None), ("superuser", None), ("member", "payments")])
async def test_an_unknown_role_is_refused(world: World, role: str, project: str | None) -> None:
    state = world.snapshot()
    with pytest.raises(InvalidInput):
        await world.keybot.people.grant(OWNER, user_id=NOBODY.user_id, role=role, project=project)
    assert world.store.state == state


async def test_revoking_a_role_nobody_holds_says_so(world: World) -> None:
    with pytest.raises(NotFound) as org_err:
        await world.keybot.people.revoke(OWNER, user_id=NOBODY.user_id)
    with pytest.raises(NotFound) as project_err:
        await world.keybot.people.revoke(OWNER, user_id=NOBODY.user_id, project="payments")
    assert org_err.value.parts == (User(NOBODY.user_id), " has no organization role.")
    assert str(project_err.value) == f"@{NOBODY.user_id} has no role in `payments`."


async def test_a_new_project_role_replaces_the_old_one(world: World) -> None:
    await world.keybot.people.grant(OWNER, user_id=RO.user_id, role="owner", project="payments")
    assert (await world.keybot.people.whoami(RO)).grants == [RoleGrant(RO.user_id, "owner", "payments")]
    await world.keybot.keys.create(RO, project="payments", name="ci")


# -- who sees what ----------------------------------------------------------------------------------------


async def test_whoami_lists_the_actors_roles(world: World) -> None:
    await world.keybot.people.grant(OWNER, user_id=P_OWNER.user_id, role="member")
    await world.keybot.people.grant(OWNER, user_id=P_OWNER.user_id, role="read-only", project="billing")
    me = await world.keybot.people.whoami(P_OWNER)
    assert (me.org, me.user_id) == ("Acme", P_OWNER.user_id)
    assert me.grants == [
        RoleGrant(P_OWNER.user_id, "member", None),
        RoleGrant(P_OWNER.user_id, "read-only", "billing"),
        RoleGrant(P_OWNER.user_id, "owner", "payments"),
    ]


async def test_whoami_of_a_user_without_roles_is_empty(world: World) -> None:
    assert (await world.keybot.people.whoami(NOBODY)).grants == []


async def test_whoami_in_another_workspace_shows_that_org(world: World) -> None:
    me = await world.keybot.people.whoami(STRANGER)
    assert me.org == "Elsewhere"
    assert me.grants == [RoleGrant(STRANGER.user_id, "owner", None)]


@pytest.mark.parametrize(
    ("actor", "expected"),
    [
        (OWNER, ["billing", "payments"]),
        (OWNER2, ["billing", "payments"]),
        (P_OWNER, ["payments"]),
        (RO, ["payments"]),
        (BILLING, []),
        (MEMBER, []),
        (NOBODY, []),
        (STRANGER, ["widgets"]),
    ],
)
async def test_projects_lists_only_what_the_actor_can_see(
    world: World, actor: Actor, expected: list[str]
) -> None:
    assert sorted(p.name for p in (await world.keybot.projects.visible(actor)).projects) == expected


@pytest.mark.parametrize("actor", [BILLING, MEMBER, NOBODY])
async def test_seeing_no_project_comes_with_the_org_role_and_the_owners_who_can_help(
    world: World, actor: Actor
) -> None:
    visible = await world.keybot.projects.visible(actor)
    assert visible.projects == []
    assert visible.org_role == {BILLING: "billing-admin", MEMBER: "member", NOBODY: None}[actor]
    assert sorted(visible.org_owners) == sorted([OWNER.user_id, OWNER2.user_id])


async def test_a_project_name_taken_in_another_workspace_is_a_separate_project(world: World) -> None:
    theirs = await world.keybot.projects.create(STRANGER, name="payments")
    await world.keybot.keys.create(STRANGER, project="payments", name="ci")
    assert [k.name for k in (await world.keybot.keys.page(STRANGER, project="payments")).keys] == [
        "ci",
        "default",
    ]
    assert [k.masked for k in (await world.keybot.keys.page(OWNER, project="payments")).keys] == [
        world.payments_default.masked
    ]
    assert theirs.masked != world.payments_default.masked
    told = {r.user_id for r in world.store.outbox() if r.notice and r.notice.key_masked == theirs.masked}
    assert told == set()  # the stranger made it and is the only owner there: nobody else to tell
    assert all(r.notice is None or r.notice.team_id == TEAM or r.user_id == STRANGER.user_id for r in world.store.outbox())


@pytest.mark.parametrize("actor", [OWNER, P_OWNER, ADMIN, RW, RO])
async def test_anyone_with_a_role_in_a_project_sees_its_members(world: World, actor: Actor) -> None:
    members = await world.keybot.people.members(actor, project="payments")
    assert members.scope == "payments"
    assert set(members.grants) == {
        RoleGrant(OWNER.user_id, "owner", None),  # organization owners control the project's keys too
        RoleGrant(OWNER2.user_id, "owner", None),
        RoleGrant(P_OWNER.user_id, "owner", "payments"),
        RoleGrant(ADMIN.user_id, "admin", "payments"),
        RoleGrant(RW.user_id, "read-write", "payments"),
        RoleGrant(RO.user_id, "read-only", "payments"),
    }
    assert members.project == "payments"


@pytest.mark.parametrize("actor", [BILLING, MEMBER, NOBODY, STRANGER])
async def test_users_without_a_project_role_cannot_see_its_members(world: World, actor: Actor) -> None:
    with pytest.raises(NotFound):
        await world.keybot.people.members(actor, project="payments")


@pytest.mark.parametrize("actor", [OWNER, BILLING, MEMBER, P_OWNER, RO])
async def test_org_members_and_project_members_see_the_org_members(world: World, actor: Actor) -> None:
    members = await world.keybot.people.members(actor)
    assert members.scope == "Acme"
    assert RoleGrant(OWNER.user_id, "owner", None) in members.grants
    assert RoleGrant(BILLING.user_id, "billing-admin", None) in members.grants
    assert all(g.project is None or g.project in ("payments", "billing") for g in members.grants)


async def test_a_user_without_any_role_cannot_see_the_org_members(world: World) -> None:
    with pytest.raises(PermissionDenied):
        await world.keybot.people.members(NOBODY)


# -- audit --------------------------------------------------------------------------------------------------


async def test_every_change_writes_an_audit_event(world: World) -> None:
    since = len(world.store.audit_events())
    created = await world.keybot.keys.create(P_OWNER, project="payments", name="ci")
    request = await world.keybot.keys.request_delete(OWNER, project="payments", name="ci")
    await world.keybot.keys.confirm_delete(OWNER, token=request.token)
    await world.keybot.people.grant(P_OWNER, user_id=NOBODY.user_id, role="admin", project="payments")
    await world.keybot.people.revoke(P_OWNER, user_id=NOBODY.user_id, project="payments")
    await world.keybot.people.grant(OWNER, user_id=NOBODY.user_id, role="member")
    await world.keybot.people.revoke(OWNER, user_id=NOBODY.user_id)
    events = world.store.audit_events()[since:]
    summary = [(e.action, e.actor, e.key_name, e.key_masked, e.target_user, e.role) for e in events]
    assert summary == [
        ("key created", P_OWNER.user_id, "ci", created.masked, None, None),
        ("key deleted", OWNER.user_id, "ci", created.masked, None, None),
        ("role granted", P_OWNER.user_id, None, None, NOBODY.user_id, "admin"),
        ("role revoked", P_OWNER.user_id, None, None, NOBODY.user_id, "admin"),
        ("role granted", OWNER.user_id, None, None, NOBODY.user_id, "member"),
        ("role revoked", OWNER.user_id, None, None, NOBODY.user_id, "member"),
    ]
    payments_id = next(p.id for p in world.store.state.projects.values() if p.name == "payments")
    assert [e.project_id for e in events] == [payments_id] * 4 + [None, None]
    assert all(e.at == world.clock() for e in events)


async def test_creating_a_project_audits_the_project_and_its_default_key(world: World) -> None:
    page = await world.keybot.audit.page(OWNER, project="billing")
    assert [(e.action, e.key_name) for e in page.events] == [
        ("key created", "default"),
        ("project created", None),
    ]
    assert page.events[0].key_masked == world.billing_default.masked
    assert not page.has_older


async def test_a_project_owner_reads_its_projects_audit_newest_first(world: World) -> None:
    await world.keybot.keys.create(P_OWNER, project="payments", name="ci")
    page = await world.keybot.audit.page(P_OWNER, project="payments")
    assert page.project == "payments"
    assert page.events[0].action == "key created" and page.events[0].key_name == "ci"
    ids = [e.id for e in page.events]
    assert ids == sorted(ids, reverse=True)


async def test_the_audit_log_is_paginated(world: World) -> None:
    await world.keybot.projects.create(OWNER, name="bulk")
    for i in range(25):
        await world.keybot.keys.create(OWNER, project="bulk", name=f"k{i}")
    first = await world.keybot.audit.page(OWNER, project="bulk")
    assert len(first.events) == 20 and first.has_older
    assert first.events[0].key_name == "k24"
    assert first.events[0].id is not None and first.events[-1].id is not None
    second = await world.keybot.audit.page(OWNER, project="bulk", before_id=first.events[-1].id)
    assert len(second.events) == 7 and not second.has_older
    assert second.events[-1].action == "project created"
    assert {e.id for e in first.events}.isdisjoint(e.id for e in second.events)


async def test_the_actor_gets_no_dm_about_their_own_change(world: World) -> None:
    since = len(world.store.outbox())
    await world.keybot.keys.create(OWNER, project="payments", name="ci")
    await world.keybot.people.grant(OWNER, user_id=OWNER.user_id, role="owner", project="payments")
    await world.keybot.people.revoke(OWNER, user_id=OWNER.user_id, project="payments")
    assert OWNER.user_id not in {r.user_id for r in world.new_outbox(since)}
    assert {r.user_id for r in world.new_outbox(since)} == set(PAYMENTS_OWNERS) - {OWNER.user_id}


async def test_a_role_change_remembers_the_role_it_replaced_and_a_revoke_the_role_removed(world: World) -> None:
    since = len(world.store.outbox())
    changed = await world.keybot.people.grant(OWNER, user_id=RO.user_id, role="admin", project="payments")
    removed = await world.keybot.people.revoke(OWNER, user_id=RO.user_id, project="payments")
    assert (changed.role, changed.previous) == ("admin", "read-only")
    assert (removed.role, removed.previous) == (None, "admin")
    notices = [r.notice for r in world.new_outbox(since)]
    assert [(n.kind, n.role, n.previous_role) for n in notices if n] == [
        (NoticeKind.ROLE_GRANTED, "admin", "read-only"),
        (NoticeKind.ROLE_REVOKED, None, "admin"),
    ]


async def test_granting_the_role_someone_already_holds_changes_nothing_and_tells_nobody(world: World) -> None:
    audit, outbox = len(world.store.audit_events()), len(world.store.outbox())
    change = await world.keybot.people.grant(OWNER, user_id=RO.user_id, role="read-only", project="payments")
    assert (change.role, change.previous) == ("read-only", "read-only")
    assert len(world.store.audit_events()) == audit and len(world.store.outbox()) == outbox


async def _make_keys(world: World, count: int) -> None:
    for n in range(count):
        await world.keybot.keys.create(OWNER, project="payments", name=f"k{n:02d}")


async def test_a_page_knows_its_place_among_all_keys(world: World) -> None:
    await _make_keys(world, 44)  # 45 with `default`
    first = await world.keybot.keys.page(OWNER, project="payments")
    assert (first.first, first.total, len(first.keys), first.has_newer, first.has_older) == (1, 45, 20, False, True)
    second = await world.keybot.keys.page(OWNER, project="payments", before_id=first.keys[-1].id)
    assert (second.first, second.has_newer, second.has_older) == (21, True, True)
    last = await world.keybot.keys.page(OWNER, project="payments", before_id=second.keys[-1].id)
    assert (last.first, len(last.keys), last.has_older) == (41, 5, False)


async def test_a_page_reached_through_newer_knows_its_place_as_when_reached_through_older(world: World) -> None:
    await _make_keys(world, 49)  # 50 with `default`: pages 1–20, 21–40, 41–50
    first = await world.keybot.keys.page(OWNER, project="payments")
    second = await world.keybot.keys.page(OWNER, project="payments", before_id=first.keys[-1].id)
    third = await world.keybot.keys.page(OWNER, project="payments", before_id=second.keys[-1].id)
    back = await world.keybot.keys.page(OWNER, project="payments", after_id=third.keys[0].id)
    assert [k.id for k in back.keys] == [k.id for k in second.keys]
    assert (back.first, back.total) == (second.first, second.total) == (21, 50)
    top = await world.keybot.keys.page(OWNER, project="payments", after_id=back.keys[0].id)
    assert (top.first, [k.id for k in top.keys]) == (1, [k.id for k in first.keys])


async def test_paging_newer_with_fewer_than_a_page_left_shows_the_newest_page(world: World) -> None:
    await _make_keys(world, 24)
    first = await world.keybot.keys.page(OWNER, project="payments")
    second = await world.keybot.keys.page(OWNER, project="payments", before_id=first.keys[-1].id)
    back = await world.keybot.keys.page(OWNER, project="payments", after_id=second.keys[0].id)
    assert [k.id for k in back.keys] == [k.id for k in first.keys] and back.first == 1


async def test_a_page_whose_keys_were_all_deleted_falls_back_to_the_newest(world: World) -> None:
    page = await world.keybot.keys.page(OWNER, project="payments", before_id=1)
    assert page.first == 1 and [k.name for k in page.keys] == ["default"]


async def test_the_audit_log_pages_newer_as_well_as_older(world: World) -> None:
    await _make_keys(world, 25)
    newest = await world.keybot.audit.page(OWNER, project="payments")
    assert (newest.has_newer, newest.has_older) == (False, True)
    older = await world.keybot.audit.page(OWNER, project="payments", before_id=newest.events[-1].id)
    assert older.has_newer is True
    back = await world.keybot.audit.page(OWNER, project="payments", after_id=older.events[0].id)
    assert [e.id for e in back.events] == [e.id for e in newest.events]

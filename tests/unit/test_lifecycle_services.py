"""The key lifecycle's use cases (bot/services/lifecycle.py, and create with an expiry and a note) on the
in-memory store: what each changes, audits and DMs, what each refuses — and that a refusal changes
nothing — and who may do what, per the permission table of tests/unit/test_permissions.py."""

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest

from bot.domain.errors import Conflict, InvalidInput, KeybotError, NotFound, PermissionDenied
from bot.domain.lifecycle import LeakAction, Policy, PolicyField
from bot.domain.model import Actor, AuditEvent
from bot.domain.notices import NoticeKind
from bot.domain.roles import Action, OrgRole, ProjectRole
from bot.services import Keybot
from tests.fakes import CountingHasher, FakeClock, MemoryStore, State
from tests.fakes.state import KeyRow
from tests.unit.test_permissions import TABLE

TEAM = "T0001"
OWNER = Actor(TEAM, "U0OWNER")  # bootstrapped org owner
OWNER2 = Actor(TEAM, "U0OWNER2")  # second org owner
P_OWNER = Actor(TEAM, "U1POWNER")  # owner of `payments`
ADMIN = Actor(TEAM, "U2ADMIN")
RW = Actor(TEAM, "U3RW")
RO = Actor(TEAM, "U4RO")
BILLING = Actor(TEAM, "U5BILLING")
MEMBER = Actor(TEAM, "U6MEMBER")
NOBODY = Actor(TEAM, "U7NOBODY")

ROLES: dict[Actor, tuple[OrgRole | None, ProjectRole | None]] = {
    OWNER: (OrgRole.OWNER, None),
    P_OWNER: (None, ProjectRole.OWNER),
    ADMIN: (None, ProjectRole.ADMIN),
    RW: (None, ProjectRole.READ_WRITE),
    RO: (None, ProjectRole.READ_ONLY),
    BILLING: (OrgRole.BILLING_ADMIN, None),
    MEMBER: (OrgRole.MEMBER, None),
    NOBODY: (None, None),
}


@dataclass
class World:
    keybot: Keybot
    store: MemoryStore
    clock: FakeClock
    hasher: CountingHasher

    def snapshot(self) -> State:
        return copy.deepcopy(self.store.state)

    def key(self, name: str = "ci") -> KeyRow:
        [row] = [r for r in self.store.state.keys.values() if r.name == name]
        return row

    def audit(self, action: str) -> list[AuditEvent]:
        return [e for e in self.store.audit_events() if e.action == action]

    def dms(self, kind: NoticeKind) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.store.outbox():
            if row.notice is not None and row.notice.kind is kind:
                counts[row.user_id] = counts.get(row.user_id, 0) + 1
        return counts


@pytest.fixture
async def world(keybot: Keybot, store: MemoryStore, clock: FakeClock, hasher: CountingHasher) -> World:
    """Org `Acme` with project `payments` (key `ci`), a second org owner and every other kind of role."""
    await keybot.operators.bootstrap(team_id=TEAM, owner=OWNER.user_id, org_name="Acme")
    await keybot.projects.create(OWNER, name="payments")
    await keybot.people.grant(OWNER, user_id=OWNER2.user_id, role="owner")
    await keybot.people.grant(OWNER, user_id=BILLING.user_id, role="billing-admin")
    await keybot.people.grant(OWNER, user_id=MEMBER.user_id, role="member")
    for actor, role in ((P_OWNER, "owner"), (ADMIN, "admin"), (RW, "read-write"), (RO, "read-only")):
        await keybot.people.grant(OWNER, user_id=actor.user_id, role=role, project="payments")
    await keybot.keys.create(OWNER, project="payments", name="ci")
    clock.advance(minutes=1)
    return World(keybot, store, clock, hasher)


async def refused(world: World, call: Awaitable[object], error: type[KeybotError] = InvalidInput) -> str:
    """Run a request that must be refused with ``error``, and prove it changed nothing."""
    before = world.snapshot()
    hashes = world.hasher.hashes
    with pytest.raises(error) as err:
        await call
    assert world.store.state == before
    assert world.hasher.hashes == hashes  # refused before any argon2
    return str(err.value)


# -- create with an expiry and a note ------------------------------------------------------------------


async def test_a_key_created_with_an_expiry_and_a_note_keeps_both(world: World) -> None:
    created = await world.keybot.keys.create(
        P_OWNER, project="payments", name="deploy", expires="30d", note="  rotates   with the <@U1> deploy "
    )
    row = world.key("deploy")
    assert created.expires_at == row.expires_at == world.clock() + timedelta(days=30)
    assert row.note == "rotates with the <@U1> deploy"
    [event] = [e for e in world.audit("key created") if e.key_name == "deploy"]
    assert event.detail == created.expires_at.isoformat()  # type: ignore[union-attr]


async def test_a_key_created_without_an_expiry_gets_the_policys_default_lifetime(world: World) -> None:
    await world.keybot.lifecycle.set_policy(OWNER, setting="default-lifetime", value="2w")
    assert (await world.keybot.keys.create(OWNER, project="payments", name="a")).expires_at == world.clock() + timedelta(weeks=2)
    assert (await world.keybot.keys.create(OWNER, project="payments", name="b", expires="never")).expires_at is None


async def test_a_new_projects_default_key_gets_the_policys_maximum_when_there_is_no_default(world: World) -> None:
    await world.keybot.lifecycle.set_policy(OWNER, setting="max-lifetime", value="90d")
    created = await world.keybot.projects.create(OWNER, name="billing")
    assert created.expires_at == world.clock() + timedelta(days=90)


async def test_a_create_beyond_the_maximum_lifetime_is_refused_naming_it(world: World) -> None:
    await world.keybot.lifecycle.set_policy(OWNER, setting="max-lifetime", value="90d")
    for expires in ("91d", "never", None):
        text = await refused(world, world.keybot.keys.create(OWNER, project="payments", name="long", expires=expires))
        assert "at most 90d" in text and "`expires 90d`" in text
    await world.keybot.keys.create(OWNER, project="payments", name="ok", expires="90d")


@pytest.mark.parametrize(("expires", "says"), [("2020-01-01", "in the past"), ("soon", "not a time"), ("0", "not a time")])
async def test_a_create_with_a_bad_expiry_is_refused_with_an_example(world: World, expires: str, says: str) -> None:
    text = await refused(world, world.keybot.keys.create(OWNER, project="payments", name="x", expires=expires))
    assert says in text and "`30d`" in text and "`never`" in text


async def test_a_note_over_two_hundred_characters_is_refused(world: World) -> None:
    text = await refused(world, world.keybot.keys.create(OWNER, project="payments", name="x", note="n" * 201))
    assert "at most 200 characters" in text


# -- show ------------------------------------------------------------------------------------------------


async def test_show_gives_the_keys_details_masked(world: World) -> None:
    details = await world.keybot.lifecycle.show(P_OWNER, project="PAYMENTS", name="CI")
    assert (details.project, details.key.name, details.now) == ("payments", "ci", world.clock())
    assert details.key.masked == world.key().masked
    assert details.key.created_by == OWNER.user_id


async def test_show_of_a_missing_key_says_how_to_list_the_keys(world: World) -> None:
    text = await refused(world, world.keybot.lifecycle.show(OWNER, project="payments", name="nope"), NotFound)
    assert "/apikeys list payments" in text


# -- disable and enable ---------------------------------------------------------------------------------


async def test_disable_and_enable_are_audited_and_dmed_to_the_other_owners(world: World) -> None:
    change = await world.keybot.lifecycle.disable(P_OWNER, project="payments", name="ci")
    assert change.changed and change.kind is NoticeKind.KEY_DISABLED
    assert world.key().disabled_at == world.clock()
    assert (world.key().changed_at, world.key().changed_by) == (world.clock(), P_OWNER.user_id)
    world.clock.advance(minutes=1)
    await world.keybot.lifecycle.enable(OWNER, project="payments", name="ci")
    assert world.key().disabled_at is None

    [disabled], [enabled] = world.audit("key disabled"), world.audit("key enabled")
    assert (disabled.actor, disabled.key_name, disabled.key_masked) == (P_OWNER.user_id, "ci", world.key().masked)
    assert enabled.actor == OWNER.user_id
    assert world.dms(NoticeKind.KEY_DISABLED) == {OWNER.user_id: 1, OWNER2.user_id: 1}
    assert world.dms(NoticeKind.KEY_ENABLED) == {OWNER2.user_id: 1, P_OWNER.user_id: 1}


async def test_disabling_a_disabled_key_changes_and_tells_nothing(world: World) -> None:
    await world.keybot.lifecycle.disable(OWNER, project="payments", name="ci")
    before = world.snapshot()
    change = await world.keybot.lifecycle.disable(OWNER2, project="payments", name="ci")
    assert not change.changed
    assert world.store.state == before
    await world.keybot.lifecycle.enable(OWNER, project="payments", name="ci")
    before = world.snapshot()
    assert not (await world.keybot.lifecycle.enable(OWNER2, project="payments", name="ci")).changed
    assert world.store.state == before


async def test_enabling_an_expired_key_is_refused_saying_to_change_its_expiry_first(world: World) -> None:
    await world.keybot.lifecycle.set_expiry(OWNER, project="payments", name="ci", when="1h")
    await world.keybot.lifecycle.disable(OWNER, project="payments", name="ci")
    world.clock.advance(hours=2)
    text = await refused(world, world.keybot.lifecycle.enable(OWNER, project="payments", name="ci"))
    assert "expired" in text and "`/apikeys expiry payments ci 30d`" in text
    await world.keybot.lifecycle.set_expiry(OWNER, project="payments", name="ci", when="30d")
    assert (await world.keybot.lifecycle.enable(OWNER, project="payments", name="ci")).changed


# -- expiry ---------------------------------------------------------------------------------------------


async def test_expiry_sets_and_removes_an_expiry_within_the_policy(world: World) -> None:
    change = await world.keybot.lifecycle.set_expiry(OWNER, project="payments", name="ci", when="2025-06-30")
    assert change.expires_at == world.key().expires_at
    assert change.expires_at is not None and change.expires_at.isoformat() == "2025-06-30T23:59:59+00:00"
    await world.keybot.lifecycle.set_expiry(OWNER, project="payments", name="ci", when="never")
    assert world.key().expires_at is None
    assert [e.detail for e in world.audit("expiry changed")] == ["2025-06-30T23:59:59+00:00", "never"]
    assert world.dms(NoticeKind.EXPIRY_CHANGED) == {OWNER2.user_id: 2, P_OWNER.user_id: 2}
    [first, *_] = [r.notice for r in world.store.outbox() if r.notice and r.notice.kind is NoticeKind.EXPIRY_CHANGED]
    assert first is not None and first.until == change.expires_at

    await world.keybot.lifecycle.set_policy(OWNER, setting="max-lifetime", value="30d")
    text = await refused(world, world.keybot.lifecycle.set_expiry(OWNER, project="payments", name="ci", when="never"))
    assert "at most 30d" in text


@pytest.mark.parametrize(("when", "says"), [("2020-02-02", "in the past"), ("yesterday", "not a time"), ("2025-02-30", "not a real date")])
async def test_a_bad_expiry_is_refused_with_what_is_accepted(world: World, when: str, says: str) -> None:
    text = await refused(world, world.keybot.lifecycle.set_expiry(OWNER, project="payments", name="ci", when=when))
    assert says in text and "`2027-03-01`" in text


# -- roll -----------------------------------------------------------------------------------------------


async def test_roll_gives_a_new_secret_and_keeps_the_old_one_for_a_day_by_default(world: World) -> None:
    old_key_id, old_masked = world.key().key_id, world.key().masked
    rolled = await world.keybot.lifecycle.roll(P_OWNER, project="payments", name="ci")
    assert rolled.retiring_at == world.clock() + timedelta(hours=24)
    assert rolled.old_masked == old_masked and rolled.masked == world.key().masked != old_masked
    assert rolled.plaintext.startswith(f"kb_{world.key().key_id}_")
    assert rolled.plaintext not in repr(rolled)
    assert world.store.state.retired[old_key_id].retiring_at == rolled.retiring_at
    assert all(rolled.plaintext not in str(v) and rolled.plaintext[-28:] not in str(v) for v in world.store.values())
    [event] = world.audit("key rolled")
    assert (event.key_masked, event.detail) == (rolled.masked, rolled.retiring_at.isoformat())
    assert world.dms(NoticeKind.KEY_ROLLED) == {OWNER.user_id: 1, OWNER2.user_id: 1}
    assert world.hasher.hashes == 3  # `payments`' default key, `ci`, and the roll


@pytest.mark.parametrize(("grace", "period"), [("0", timedelta(0)), ("7d", timedelta(days=7)), ("36h", timedelta(hours=36))])
async def test_roll_takes_a_grace_from_zero_to_a_week(world: World, grace: str, period: timedelta) -> None:
    rolled = await world.keybot.lifecycle.roll(OWNER, project="payments", name="ci", grace=grace)
    assert rolled.retiring_at == world.clock() + period


@pytest.mark.parametrize(("grace", "says"), [("8d", "at most 7 days"), ("2x", "not a duration"), ("-1h", "`0`")])
async def test_a_bad_grace_is_refused_with_an_example(world: World, grace: str, says: str) -> None:
    text = await refused(world, world.keybot.lifecycle.roll(OWNER, project="payments", name="ci", grace=grace))
    assert says in text and ("`7d`" in text or "`30d`" in text)


async def test_rolling_during_a_grace_period_is_refused_with_the_time_it_ends(world: World) -> None:
    rolled = await world.keybot.lifecycle.roll(OWNER, project="payments", name="ci", grace="2h")
    text = await refused(world, world.keybot.lifecycle.roll(OWNER2, project="payments", name="ci"), Conflict)
    assert f"until {rolled.retiring_at:%Y-%m-%d %H:%M} UTC" in text
    world.clock.now = rolled.retiring_at
    await world.keybot.lifecycle.roll(OWNER2, project="payments", name="ci")


async def test_during_a_grace_a_roll_with_no_grace_ends_every_old_secret_at_once(world: World) -> None:
    first_id = world.key().key_id
    await world.keybot.lifecycle.roll(OWNER, project="payments", name="ci", grace="7d")
    text = await refused(world, world.keybot.lifecycle.roll(OWNER2, project="payments", name="ci", grace="1h"), Conflict)
    assert "`/apikeys roll payments ci grace 0`" in text
    second_id = world.key().key_id
    world.clock.advance(hours=1)
    rolled = await world.keybot.lifecycle.roll(OWNER2, project="payments", name="ci", grace="0")
    assert rolled.retiring_at == world.clock()
    retired = world.store.state.retired
    assert retired[first_id].retiring_at == retired[second_id].retiring_at == world.clock()  # not in 6 days
    assert world.key().retiring_at == world.clock()
    await world.keybot.lifecycle.roll(OWNER, project="payments", name="ci")  # no grace runs any more


async def test_a_disabled_or_expired_key_cannot_be_rolled(world: World) -> None:
    await world.keybot.lifecycle.disable(OWNER, project="payments", name="ci")
    text = await refused(world, world.keybot.lifecycle.roll(OWNER, project="payments", name="ci"))
    assert "disabled" in text and "`/apikeys enable payments ci`" in text
    await world.keybot.lifecycle.enable(OWNER, project="payments", name="ci")
    await world.keybot.lifecycle.set_expiry(OWNER, project="payments", name="ci", when="1h")
    world.clock.advance(hours=1, seconds=1)
    text = await refused(world, world.keybot.lifecycle.roll(OWNER, project="payments", name="ci"))
    assert "expired" in text and "`/apikeys expiry payments ci 30d`" in text


# -- policy ---------------------------------------------------------------------------------------------


async def test_owners_see_the_policy_and_only_org_owners_may_change_it(world: World) -> None:
    assert (await world.keybot.lifecycle.policy(OWNER)).may_change
    view = await world.keybot.lifecycle.policy(P_OWNER)
    assert view.policy == Policy() and view.org == "Acme" and not view.may_change
    for actor in (ADMIN, RW, RO, BILLING, MEMBER, NOBODY):
        text = await refused(world, world.keybot.lifecycle.policy(actor), PermissionDenied)
        assert "organization owners and project owners" in text
    await refused(world, world.keybot.lifecycle.set_policy(P_OWNER, setting="stale-after", value="30d"), PermissionDenied)


async def test_a_policy_change_is_audited_for_the_org_and_dmed_to_the_other_org_owners(world: World) -> None:
    view = await world.keybot.lifecycle.set_policy(OWNER, setting="leak-action", value="alert")
    assert view.changed is PolicyField.LEAK_ACTION and view.policy.leak_action is LeakAction.ALERT
    [event] = world.audit("policy changed")
    assert (event.project_id, event.detail, event.actor) == (None, "leak-action alert", OWNER.user_id)
    assert world.dms(NoticeKind.POLICY_CHANGED) == {OWNER2.user_id: 1}
    [notice] = [r.notice for r in world.store.outbox() if r.notice and r.notice.kind is NoticeKind.POLICY_CHANGED]
    assert notice is not None and (notice.org, notice.setting, notice.value) == ("Acme", "leak-action", "alert")

    before = world.snapshot()
    again = await world.keybot.lifecycle.set_policy(OWNER2, setting="leak-action", value="ALERT")
    assert again.already and again.changed is PolicyField.LEAK_ACTION and world.store.state == before


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("lifetime", "30d", "`max-lifetime`"),
        ("max-lifetime", "30", "`/apikeys policy max-lifetime 90d`"),
        ("stale-after", "none", "`/apikeys policy stale-after 90d`"),
        ("leak-action", "panic", "`/apikeys policy leak-action alert`"),
    ],
)
async def test_a_wrong_policy_setting_or_value_is_refused_with_an_example(
    world: World, setting: str, value: str, says: str
) -> None:
    text = await refused(world, world.keybot.lifecycle.set_policy(OWNER, setting=setting, value=value))
    assert says in text


async def test_a_default_lifetime_longer_than_the_maximum_is_refused(world: World) -> None:
    await world.keybot.lifecycle.set_policy(OWNER, setting="max-lifetime", value="30d")
    text = await refused(world, world.keybot.lifecycle.set_policy(OWNER, setting="default-lifetime", value="31d"))
    assert "cannot be longer" in text


# -- who may: the permission table, for every lifecycle command -------------------------------------------

COMMANDS: dict[str, tuple[Action, Callable[[Keybot, Actor], Awaitable[object]]]] = {
    "show": (Action.LIST_KEYS, lambda k, a: k.lifecycle.show(a, project="payments", name="ci")),
    "disable": (Action.MANAGE_KEYS, lambda k, a: k.lifecycle.disable(a, project="payments", name="ci")),
    "enable": (Action.MANAGE_KEYS, lambda k, a: k.lifecycle.enable(a, project="payments", name="ci")),
    "expiry": (Action.MANAGE_KEYS, lambda k, a: k.lifecycle.set_expiry(a, project="payments", name="ci", when="30d")),
    "roll": (Action.MANAGE_KEYS, lambda k, a: k.lifecycle.roll(a, project="payments", name="ci")),
    "create with expiry": (
        Action.CREATE_KEY,
        lambda k, a: k.keys.create(a, project="payments", name="new", expires="30d", note="n"),
    ),
    "policy": (Action.SEE_POLICY, lambda k, a: k.lifecycle.policy(a)),
    "policy set": (Action.SET_POLICY, lambda k, a: k.lifecycle.set_policy(a, setting="stale-after", value="30d")),
}
CASES = [(command, actor) for command in COMMANDS for actor in ROLES]


@pytest.mark.parametrize(
    ("command", "actor"), CASES, ids=[f"{c}-{a.user_id}" for c, a in CASES]
)
async def test_each_lifecycle_command_is_allowed_exactly_as_the_permission_table_says(
    world: World, command: str, actor: Actor
) -> None:
    action, run = COMMANDS[command]
    org_role, project_role = ROLES[actor]
    if TABLE[(org_role, project_role, action)]:
        await run(world.keybot, actor)
        return
    sees_project = TABLE[(org_role, project_role, Action.SEE_PROJECT)]
    about_the_org = action in (Action.SEE_POLICY, Action.SET_POLICY)
    error = PermissionDenied if sees_project or about_the_org else NotFound  # a hidden project looks absent
    await refused(world, run(world.keybot, actor), error)


# -- the org lock comes before any role is read -------------------------------------------------------------

ROLE_READS = ("scope", "org_role", "project_role", "roles_of", "project_owners", "count_org_owners")
CHANGES: dict[str, tuple[str, Callable[[Keybot], Awaitable[object]]]] = {
    "disable": ("lock_team shared", lambda k: k.lifecycle.disable(P_OWNER, project="payments", name="ci")),
    "enable": ("lock_team shared", lambda k: k.lifecycle.enable(P_OWNER, project="payments", name="ci")),
    "expiry": ("lock_team shared", lambda k: k.lifecycle.set_expiry(P_OWNER, project="payments", name="ci", when="9d")),
    "roll": ("lock_team shared", lambda k: k.lifecycle.roll(P_OWNER, project="payments", name="ci")),
    "policy": ("lock_team", lambda k: k.lifecycle.set_policy(OWNER, setting="stale-after", value="9d")),
}


@pytest.mark.parametrize("change", list(CHANGES))
async def test_every_lifecycle_change_locks_its_org_before_it_reads_anyones_role(
    world: World, change: str
) -> None:
    lock, run = CHANGES[change]
    world.store.call_order.clear()
    await run(world.keybot)
    last_write = len(world.store.call_order) - 1 - world.store.call_order[::-1].index("transaction")
    in_transaction = world.store.call_order[last_write + 1 :]
    assert in_transaction[0] == lock, in_transaction
    assert any(c in ROLE_READS for c in in_transaction), in_transaction

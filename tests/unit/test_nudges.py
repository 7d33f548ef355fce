"""Scheduled reminders (bot/services/jobs.py, bot/services/reminders.py) and their buttons
(bot/services/nudges.py) on the in-memory store with the fake clock: when each is scheduled, that it
fires once and re-checks at fire time, what each button changes, audits and DMs, and that every refused
click changes nothing and says why."""

import asyncio
import copy
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pytest

from bot.domain.errors import ConfirmationRefused, InvalidInput, KeybotError, PermissionDenied
from bot.domain.jobs import Decision, Job, JobKind, NudgeRef
from bot.domain.model import Actor
from bot.domain.notices import Notice, NoticeKind
from bot.services import Keybot
from bot.services.jobs import JobRunner, JobService
from tests.fakes import FakeClock, MemoryStore, State
from tests.fakes.jobs import JobRow
from tests.fakes.state import KeyRow

TEAM = "T0001"
OWNER = Actor(TEAM, "U0OWNER")
OWNER2 = Actor(TEAM, "U0OWNER2")
P_OWNER = Actor(TEAM, "U1POWNER")
READER = Actor(TEAM, "U4RO")
DAY = timedelta(days=1)


@dataclass
class World:
    keybot: Keybot
    store: MemoryStore
    clock: FakeClock
    runner: JobRunner

    async def run_due(self) -> int:
        """Run due jobs until none is left; how many were claimed."""
        total = 0
        while claimed := await self.runner.run_once():
            total += claimed
        return total

    def key(self, name: str = "ci") -> KeyRow:
        [row] = [r for r in self.store.state.keys.values() if r.name == name]
        return row

    def jobs(self, kind: JobKind, *, name: str = "ci") -> list[JobRow]:
        return [j for j in self.store.jobs(kind) if j.key_row_id == self.key(name).id]

    def pending(self, kind: JobKind, *, name: str = "ci") -> list[datetime]:
        return [j.due_at for j in self.jobs(kind, name=name) if j.done_at is None]

    def notices(self, kind: NoticeKind) -> list[Notice]:
        return [r.notice for r in self.store.outbox() if r.notice is not None and r.notice.kind is kind]

    def recipients(self, kind: NoticeKind) -> list[str]:
        return sorted(n.recipient for n in self.notices(kind))

    def ref(self, kind: NoticeKind = NoticeKind.EXPIRY_NUDGE) -> NudgeRef:
        """The button value of the latest reminder of ``kind`` (every copy carries the same)."""
        notice = self.notices(kind)[-1]
        assert notice.nudge is not None and notice.token is not None
        return NudgeRef(notice.nudge, notice.token)

    def snapshot(self) -> State:
        return copy.deepcopy(self.store.state)


OWNERS = sorted([OWNER.user_id, OWNER2.user_id, P_OWNER.user_id])


@pytest.fixture
async def world(keybot: Keybot, store: MemoryStore, clock: FakeClock) -> World:
    """Org `Acme`: two org owners, an owner and a reader of `payments`; the job runner on the fake clock."""
    await keybot.operators.bootstrap(team_id=TEAM, owner=OWNER.user_id, org_name="Acme")
    await keybot.projects.create(OWNER, name="payments")
    await keybot.people.grant(OWNER, user_id=OWNER2.user_id, role="owner")
    await keybot.people.grant(OWNER, user_id=P_OWNER.user_id, role="owner", project="payments")
    await keybot.people.grant(OWNER, user_id=READER.user_id, role="read-only", project="payments")
    return World(keybot, store, clock, JobRunner(store, keybot.jobs, clock=clock, lease_seconds=60))


async def expiring_key(world: World, when: str = "30d", name: str = "ci") -> datetime:
    created = await world.keybot.keys.create(OWNER, project="payments", name=name, expires=when)
    assert created.expires_at is not None
    return created.expires_at


async def reminded(world: World, expires_at: datetime, *, before: timedelta = 7 * DAY) -> None:
    """Move the clock to the reminder ``before`` the expiry and run the due jobs."""
    world.clock.now = expires_at - before + timedelta(seconds=1)
    await world.run_due()


# -- scheduling --------------------------------------------------------------------------------


async def test_a_key_made_to_expire_is_reminded_of_seven_days_and_one_day_before(world: World) -> None:
    expires_at = await expiring_key(world, "30d")
    assert world.pending(JobKind.EXPIRY_NUDGE) == [expires_at - 7 * DAY, expires_at - DAY]


@pytest.mark.parametrize(("when", "leads"), [("3d", [DAY]), ("1d", []), ("12h", []), ("never", [])])
async def test_only_reminders_still_to_come_are_scheduled(world: World, when: str, leads: list[timedelta]) -> None:
    await world.keybot.keys.create(OWNER, project="payments", name="ci", expires=when)
    expires_at = world.key().expires_at
    assert world.pending(JobKind.EXPIRY_NUDGE) == [expires_at - lead for lead in leads if expires_at]


async def test_a_key_given_the_default_lifetime_is_reminded_too(world: World) -> None:
    await world.keybot.lifecycle.set_policy(OWNER, setting="default-lifetime", value="60d")
    await world.keybot.keys.create(OWNER, project="payments", name="ci")
    assert world.pending(JobKind.EXPIRY_NUDGE) == [world.clock() + 53 * DAY, world.clock() + 59 * DAY]


async def test_a_new_expiry_cancels_the_old_reminders_and_schedules_its_own(world: World) -> None:
    await expiring_key(world, "30d")
    await world.keybot.lifecycle.set_expiry(OWNER, project="payments", name="ci", when="10d")
    now = world.clock()
    assert world.pending(JobKind.EXPIRY_NUDGE) == [now + 3 * DAY, now + 9 * DAY]
    assert {j.decision for j in world.jobs(JobKind.EXPIRY_NUDGE) if j.done_at} == {Decision.CANCELLED}
    await world.keybot.lifecycle.set_expiry(OWNER, project="payments", name="ci", when="never")
    assert world.pending(JobKind.EXPIRY_NUDGE) == []


async def test_an_expiry_set_back_to_an_earlier_value_is_reminded_of_again(world: World) -> None:
    await world.keybot.keys.create(OWNER, project="payments", name="ci", expires="2030-06-30")
    before = world.pending(JobKind.EXPIRY_NUDGE)
    await world.keybot.lifecycle.set_expiry(OWNER, project="payments", name="ci", when="2030-07-31")
    await world.keybot.lifecycle.set_expiry(OWNER, project="payments", name="ci", when="2030-06-30")
    assert world.pending(JobKind.EXPIRY_NUDGE) == before and len(before) == 2


async def test_a_roll_with_a_grace_period_schedules_the_dm_at_its_end(world: World) -> None:
    await world.keybot.keys.create(OWNER, project="payments", name="ci")
    await world.keybot.lifecycle.roll(OWNER, project="payments", name="ci", grace="2d")
    assert world.pending(JobKind.GRACE_END) == [world.clock() + 2 * DAY]
    await world.keybot.keys.create(OWNER, project="payments", name="cd")
    await world.keybot.lifecycle.roll(OWNER, project="payments", name="cd", grace="0")
    assert world.pending(JobKind.GRACE_END, name="cd") == []  # the roll's own DM said it stopped at once


# -- firing ------------------------------------------------------------------------------------


async def test_a_reminder_goes_to_every_owner_once_with_its_buttons(world: World) -> None:
    expires_at = await expiring_key(world)
    world.clock.now = expires_at - 7 * DAY
    assert await world.run_due() >= 1
    assert world.recipients(NoticeKind.EXPIRY_NUDGE) == OWNERS  # the creator too: a reminder is no reply
    [notice, *_] = world.notices(NoticeKind.EXPIRY_NUDGE)
    assert (notice.key_name, notice.project, notice.until, notice.key_masked) == (
        "ci", "payments", expires_at, world.key().masked
    )
    assert {n.token for n in world.notices(NoticeKind.EXPIRY_NUDGE)} == {notice.token} != {None}
    world.clock.advance(hours=1)
    await world.run_due()
    assert len(world.notices(NoticeKind.EXPIRY_NUDGE)) == 3  # not again
    [job] = [j for j in world.jobs(JobKind.EXPIRY_NUDGE) if j.done_at]
    assert job.data.recipients == tuple(OWNERS) and job.decision is None


async def test_a_reminder_claimed_by_two_workers_sends_its_dms_once(world: World) -> None:
    expires_at = await expiring_key(world)
    world.clock.now = expires_at - 7 * DAY
    [first] = await world.store.claim_jobs(limit=5, now=world.clock(), lease_seconds=1)
    world.clock.advance(seconds=2)  # the first worker is slow: its lease ran out
    [second] = await world.store.claim_jobs(limit=5, now=world.clock(), lease_seconds=60)
    assert first.id == second.id
    sent = await asyncio.gather(world.keybot.jobs.fire(first), world.keybot.jobs.fire(second))
    assert sorted(sent) == [0, 3]
    assert world.recipients(NoticeKind.EXPIRY_NUDGE) == OWNERS


async def test_a_reminder_whose_key_changed_since_it_was_scheduled_sends_nothing(world: World) -> None:
    expires_at = await expiring_key(world)
    world.key().expires_at = expires_at + DAY  # as if the change had not cancelled it: the fire re-checks
    await reminded(world, expires_at)
    assert world.notices(NoticeKind.EXPIRY_NUDGE) == []
    assert {j.decision for j in world.jobs(JobKind.EXPIRY_NUDGE) if j.done_at} == {Decision.SKIPPED}


async def test_a_disabled_key_is_not_reminded_of(world: World) -> None:
    expires_at = await expiring_key(world)
    await world.keybot.lifecycle.disable(OWNER, project="payments", name="ci")
    await reminded(world, expires_at)
    assert world.notices(NoticeKind.EXPIRY_NUDGE) == []


async def test_a_deleted_keys_reminders_go_with_it(world: World) -> None:
    expires_at = await expiring_key(world)
    request = await world.keybot.keys.request_delete(OWNER, project="payments", name="ci")
    await world.keybot.keys.confirm_delete(OWNER, token=request.token)
    assert world.store.jobs(JobKind.EXPIRY_NUDGE) == []
    await reminded(world, expires_at)
    assert world.notices(NoticeKind.EXPIRY_NUDGE) == []


async def test_after_an_outage_only_the_nearest_reminder_is_sent(world: World) -> None:
    expires_at = await expiring_key(world)
    world.clock.now = expires_at - DAY + timedelta(hours=1)  # both fell due while keybot was down
    await world.run_due()
    assert [n.until for n in world.notices(NoticeKind.EXPIRY_NUDGE)] == [expires_at] * 3
    assert sorted(j.decision or "sent" for j in world.jobs(JobKind.EXPIRY_NUDGE)) == ["sent", Decision.SKIPPED]
    world.clock.now = expires_at + timedelta(hours=1)
    assert world.pending(JobKind.EXPIRY_NUDGE) == []


async def test_a_reminder_due_after_its_key_expired_is_not_sent(world: World) -> None:
    expires_at = await expiring_key(world)
    world.clock.now = expires_at + timedelta(seconds=1)
    await world.run_due()
    assert world.notices(NoticeKind.EXPIRY_NUDGE) == []


async def test_the_end_of_a_grace_period_is_dmed_to_every_owner(world: World) -> None:
    await world.keybot.keys.create(OWNER, project="payments", name="ci")
    old = world.key().masked
    rolled = await world.keybot.lifecycle.roll(P_OWNER, project="payments", name="ci", grace="12h")
    await world.keybot.lifecycle.set_expiry(OWNER2, project="payments", name="ci", when="60d")  # a later change
    world.clock.now = rolled.retiring_at
    await world.run_due()
    assert world.recipients(NoticeKind.GRACE_ENDED) == OWNERS
    notice = world.notices(NoticeKind.GRACE_ENDED)[0]
    assert (notice.key_masked, notice.actor, notice.until, notice.token) == (old, P_OWNER.user_id, rolled.retiring_at, None)


class FailsOnce(JobService):
    """The real jobs service, whose first reminder fails (a bug, a dependency down)."""

    def __init__(self, real: JobService) -> None:
        self.real, self.failed = real, 0

    async def ensure_sweeps(self) -> int:
        return await self.real.ensure_sweeps()

    async def fire(self, job: Job) -> int:
        if job.kind is JobKind.EXPIRY_NUDGE and not self.failed:
            self.failed += 1
            raise RuntimeError("boom")
        return await self.real.fire(job)


async def test_a_job_that_fails_is_retried_after_a_backoff(world: World) -> None:
    expires_at = await expiring_key(world)
    flaky = FailsOnce(world.keybot.jobs)
    runner = JobRunner(world.store, flaky, clock=world.clock, base_backoff=10)
    world.clock.now = expires_at - 7 * DAY
    await runner.run_once()
    assert flaky.failed == 1 and world.notices(NoticeKind.EXPIRY_NUDGE) == []
    assert await runner.run_once() == 0  # not again at once
    world.clock.advance(seconds=11)
    assert await runner.run_once() == 1
    assert world.recipients(NoticeKind.EXPIRY_NUDGE) == OWNERS


# -- stale keys --------------------------------------------------------------------------------


async def test_a_key_unused_for_the_stale_period_gets_one_reminder_per_period(world: World) -> None:
    await world.keybot.keys.create(OWNER, project="payments", name="ci")
    made = world.clock()
    await world.run_due()  # the org's first sweep: nothing stale
    world.clock.now = made + 90 * DAY + timedelta(hours=1)
    await world.run_due()
    stale = [n for n in world.notices(NoticeKind.STALE_NUDGE) if n.key_name == "ci"]
    assert sorted(n.recipient for n in stale) == OWNERS and {n.since for n in stale} == {made}
    for _ in range(5):  # daily sweeps within the same period: no more
        world.clock.advance(days=1)
        await world.run_due()
    assert len([n for n in world.notices(NoticeKind.STALE_NUDGE) if n.key_name == "ci"]) == 3
    world.clock.now = made + 180 * DAY + timedelta(hours=1)
    await world.run_due()
    assert len([n for n in world.notices(NoticeKind.STALE_NUDGE) if n.key_name == "ci"]) == 6


async def test_a_key_used_since_its_stale_reminder_was_scheduled_is_not_reminded(world: World) -> None:
    await world.keybot.keys.create(OWNER, project="payments", name="ci")
    made = world.clock()
    world.clock.now = made + 90 * DAY + timedelta(hours=1)
    await world.runner.run_once()  # the sweep schedules the reminder…
    world.key().last_used_at = world.clock()  # …and the key is used before it fires
    await world.run_due()
    assert [n for n in world.notices(NoticeKind.STALE_NUDGE) if n.key_name == "ci"] == []


async def test_the_stale_period_is_the_organizations_policy(world: World) -> None:
    await world.keybot.lifecycle.set_policy(OWNER, setting="stale-after", value="30d")
    await world.keybot.keys.create(OWNER, project="payments", name="ci")
    world.key().last_used_at = world.clock()
    world.clock.advance(days=29)
    await world.run_due()
    assert [n.key_name for n in world.notices(NoticeKind.STALE_NUDGE)] == []
    world.clock.advance(days=2)
    await world.run_due()
    assert {n.key_name for n in world.notices(NoticeKind.STALE_NUDGE)} == {"ci", "default"}


async def test_every_organization_gets_one_sweep(world: World) -> None:
    assert await world.keybot.jobs.ensure_sweeps() == 1
    assert await world.keybot.jobs.ensure_sweeps() == 0
    await world.keybot.operators.bootstrap(team_id="T0002", owner="U9", org_name="Other")
    assert await world.keybot.jobs.ensure_sweeps() == 1
    assert len([j for j in world.store.jobs(JobKind.STALE_SWEEP) if j.done_at is None]) == 2


# -- the buttons ---------------------------------------------------------------------------------


async def test_extend_pushes_the_expiry_by_thirty_days_audits_and_updates_every_copy(world: World) -> None:
    expires_at = await expiring_key(world)
    await reminded(world, expires_at)
    change = await world.keybot.nudges.extend(P_OWNER, world.ref())
    assert change.expires_at == world.key().expires_at == expires_at + 30 * DAY
    [event] = [e for e in world.store.audit_events() if e.action == "expiry changed"]
    assert (event.actor, event.detail) == (P_OWNER.user_id, (expires_at + 30 * DAY).isoformat())
    assert world.recipients(NoticeKind.EXPIRY_CHANGED) == [OWNER.user_id, OWNER2.user_id]  # like the command
    updates = world.notices(NoticeKind.NUDGE_DECIDED)
    assert sorted(n.recipient for n in updates) == OWNERS
    assert {(n.actor, n.decision, n.until) for n in updates} == {(P_OWNER.user_id, "extended", expires_at + 30 * DAY)}
    new_end = expires_at + 30 * DAY
    assert world.pending(JobKind.EXPIRY_NUDGE) == [new_end - 7 * DAY, new_end - DAY]


async def test_roll_gives_a_new_secret_once_and_a_fresh_lifetime(world: World) -> None:
    expires_at = await expiring_key(world)
    before = world.key()
    old_key_id, old_masked = before.key_id, before.masked
    await reminded(world, expires_at, before=DAY)
    rolled = await world.keybot.nudges.roll(OWNER2, world.ref())
    key = world.key()
    assert key.key_id != old_key_id and rolled.masked == key.masked and rolled.old_masked == old_masked
    assert key.expires_at == rolled.expires_at == world.clock() + 30 * DAY  # no default lifetime: 30 days
    assert rolled.plaintext not in repr(rolled) and all(rolled.plaintext not in str(v) for v in world.store.values())
    assert {e.action for e in world.store.audit_events() if e.actor == OWNER2.user_id} == {"key rolled", "expiry changed"}
    assert world.pending(JobKind.GRACE_END) == [world.clock() + DAY]
    assert {(n.decision, n.key_masked) for n in world.notices(NoticeKind.NUDGE_DECIDED)} == {("rolled", key.masked)}


async def test_roll_takes_the_policys_default_lifetime(world: World) -> None:
    await world.keybot.lifecycle.set_policy(OWNER, setting="default-lifetime", value="90d")
    expires_at = await expiring_key(world, "10d")
    await reminded(world, expires_at)
    rolled = await world.keybot.nudges.roll(OWNER, world.ref())
    assert rolled.expires_at == world.clock() + 90 * DAY


async def test_let_it_expire_changes_nothing_but_cancels_the_last_reminder(world: World) -> None:
    expires_at = await expiring_key(world)
    await reminded(world, expires_at)
    key_before = copy.deepcopy(world.key())
    outcome = await world.keybot.nudges.let_expire(OWNER, world.ref())
    assert (outcome.decision, outcome.expires_at) == (Decision.LET_EXPIRE, expires_at)
    assert world.key() == key_before
    assert world.pending(JobKind.EXPIRY_NUDGE) == []
    [event] = [e for e in world.store.audit_events() if e.action == "expiry accepted"]
    assert (event.actor, event.key_name, event.detail) == (OWNER.user_id, "ci", expires_at.isoformat())
    assert sorted(n.recipient for n in world.notices(NoticeKind.NUDGE_DECIDED)) == OWNERS
    world.clock.now = expires_at - DAY + timedelta(seconds=1)
    await world.run_due()
    assert len(world.notices(NoticeKind.EXPIRY_NUDGE)) == 3  # the 1-day reminder stays cancelled


async def stale_reminder(world: World) -> None:
    await world.keybot.keys.create(OWNER, project="payments", name="ci")
    world.clock.advance(days=91)
    await world.run_due()


async def test_keep_records_the_decision_and_updates_every_copy(world: World) -> None:
    await stale_reminder(world)
    ref = next(NudgeRef(n.nudge, n.token) for n in world.notices(NoticeKind.STALE_NUDGE) if n.key_name == "ci" and n.nudge and n.token)
    outcome = await world.keybot.nudges.keep(P_OWNER, ref)
    assert outcome.decision is Decision.KEPT and world.key().disabled_at is None
    [event] = [e for e in world.store.audit_events() if e.action == "stale key kept"]
    assert event.actor == P_OWNER.user_id
    updates = [n for n in world.notices(NoticeKind.NUDGE_DECIDED) if n.nudge == ref.job_id]
    assert sorted(n.recipient for n in updates) == OWNERS and {n.decision for n in updates} == {"kept"}


async def test_delete_asks_for_the_usual_confirmation_and_the_deletion_closes_the_reminders(world: World) -> None:
    await stale_reminder(world)
    ref = next(NudgeRef(n.nudge, n.token) for n in world.notices(NoticeKind.STALE_NUDGE) if n.key_name == "ci" and n.nudge and n.token)
    request = await world.keybot.nudges.delete(OWNER, ref)
    assert (request.project, request.name) == ("payments", "ci") and world.key()  # not deleted yet
    assert world.notices(NoticeKind.NUDGE_DECIDED) == []
    await world.keybot.keys.confirm_delete(OWNER, token=request.token)
    assert [r for r in world.store.state.keys.values() if r.name == "ci"] == []
    updates = [n for n in world.notices(NoticeKind.NUDGE_DECIDED) if n.nudge == ref.job_id]
    assert sorted(n.recipient for n in updates) == OWNERS and {n.decision for n in updates} == {"deleted"}


# -- refused clicks ------------------------------------------------------------------------------


async def assert_refused(world: World, work: object, *, says: str, error: type[KeybotError] = ConfirmationRefused) -> None:
    before = world.snapshot()
    with pytest.raises(error) as caught:
        await work  # type: ignore[misc]
    assert says in str(caught.value), str(caught.value)
    assert world.store.state == before  # nothing changed


async def test_a_second_click_changes_nothing_and_says_who_decided(world: World) -> None:
    expires_at = await expiring_key(world)
    await reminded(world, expires_at)
    ref = world.ref()
    await world.keybot.nudges.extend(OWNER, ref)
    await assert_refused(world, world.keybot.nudges.extend(OWNER, ref), says=f"already answered: @{OWNER.user_id} extended")
    await assert_refused(world, world.keybot.nudges.let_expire(OWNER2, ref), says="already answered")


async def test_two_owners_clicking_at_once_make_one_decision(world: World) -> None:
    expires_at = await expiring_key(world)
    await reminded(world, expires_at)
    ref = world.ref()
    results = await asyncio.gather(
        world.keybot.nudges.extend(OWNER, ref), world.keybot.nudges.let_expire(OWNER2, ref), return_exceptions=True
    )
    assert sorted(type(r).__name__ for r in results) in (["ConfirmationRefused", "KeyChange"], ["ConfirmationRefused", "NudgeOutcome"])
    assert len({n.decision for n in world.notices(NoticeKind.NUDGE_DECIDED)}) == 1


async def test_someone_the_reminder_was_not_sent_to_is_refused(world: World) -> None:
    expires_at = await expiring_key(world)
    await reminded(world, expires_at)
    await assert_refused(world, world.keybot.nudges.extend(READER, world.ref()), says="sent to other people")
    await world.keybot.people.grant(OWNER, user_id="U8NEW", role="owner")  # an owner made after it was sent
    await assert_refused(world, world.keybot.nudges.extend(Actor(TEAM, "U8NEW"), world.ref()), says="not to you")


async def test_an_owner_who_lost_the_role_since_is_refused(world: World) -> None:
    expires_at = await expiring_key(world)
    await reminded(world, expires_at)
    await world.keybot.people.revoke(OWNER, user_id=P_OWNER.user_id, project="payments")
    await assert_refused(world, world.keybot.nudges.extend(P_OWNER, world.ref()), says="no longer an owner", error=PermissionDenied)


async def test_a_reminder_about_an_expiry_that_changed_since_is_refused(world: World) -> None:
    expires_at = await expiring_key(world)
    await reminded(world, expires_at)
    ref = world.ref()
    await world.keybot.lifecycle.set_expiry(OWNER, project="payments", name="ci", when="60d")
    await assert_refused(world, world.keybot.nudges.roll(OWNER, ref), says="out of date")


async def test_a_reminder_whose_key_was_deleted_is_refused(world: World) -> None:
    expires_at = await expiring_key(world)
    await reminded(world, expires_at)
    ref = world.ref()
    request = await world.keybot.keys.request_delete(OWNER, project="payments", name="ci")
    await world.keybot.keys.confirm_delete(OWNER, token=request.token)
    await assert_refused(world, world.keybot.nudges.extend(OWNER, ref), says="out of date")


@pytest.mark.parametrize(
    "forge",
    [
        lambda ref: replace(ref, token="A" * 16),
        lambda ref: replace(ref, job_id=ref.job_id + 1000),
    ],
    ids=["wrong token", "unknown nudge"],
)
async def test_a_forged_button_is_refused(world: World, forge: object) -> None:
    expires_at = await expiring_key(world)
    await reminded(world, expires_at)
    await assert_refused(world, world.keybot.nudges.extend(OWNER, forge(world.ref())), says="not one keybot sent")  # type: ignore[operator]


async def test_a_button_of_another_kind_of_reminder_is_refused(world: World) -> None:
    expires_at = await expiring_key(world)
    await reminded(world, expires_at)
    await assert_refused(world, world.keybot.nudges.keep(OWNER, world.ref()), says="not one keybot sent")
    await assert_refused(world, world.keybot.nudges.delete(OWNER, world.ref()), says="not one keybot sent")


async def test_a_button_from_another_workspace_is_refused(world: World) -> None:
    expires_at = await expiring_key(world)
    await reminded(world, expires_at)
    await assert_refused(world, world.keybot.nudges.extend(Actor("T0002", OWNER.user_id), world.ref()), says="not one keybot sent")


async def test_extend_beyond_the_policys_maximum_is_refused_and_says_what_to_do(world: World) -> None:
    await world.keybot.lifecycle.set_policy(OWNER, setting="max-lifetime", value="30d")
    expires_at = await expiring_key(world, "30d")
    await reminded(world, expires_at)
    await assert_refused(
        world, world.keybot.nudges.extend(OWNER, world.ref()), says="`/apikeys expiry payments ci <when>`", error=InvalidInput
    )


async def test_roll_of_a_key_whose_last_roll_is_still_in_its_grace_is_refused(world: World) -> None:
    expires_at = await expiring_key(world, "8d")
    await world.keybot.lifecycle.roll(OWNER, project="payments", name="ci", grace="7d")
    await reminded(world, expires_at)  # a day later: the old secret still works for six days
    await assert_refused(world, world.keybot.nudges.roll(OWNER, world.ref()), says="rolled recently", error=KeybotError)


async def test_the_started_runner_fires_what_falls_due_when_woken_and_stops_when_told(world: World) -> None:
    expires_at = await expiring_key(world)
    runner = JobRunner(world.store, world.keybot.jobs, clock=world.clock, poll_interval=3600)
    runner.start()
    try:
        world.clock.now = expires_at - 7 * DAY
        runner.wake()
        for _ in range(500):
            if world.notices(NoticeKind.EXPIRY_NUDGE):
                break
            await asyncio.sleep(0.01)
        assert world.recipients(NoticeKind.EXPIRY_NUDGE) == OWNERS
    finally:
        await runner.stop(within=5)
    assert runner._task is not None and runner._task.done()


@pytest.mark.parametrize("decide", ["extend", "let_expire", "roll"])
async def test_every_decision_locks_the_org_before_it_reads_anyones_role(world: World, decide: str) -> None:
    """As every authorised change does (tests/unit/test_authority_lock.py): a revoke committed first is seen."""
    expires_at = await expiring_key(world)
    await reminded(world, expires_at)
    world.store.call_order.clear()
    await getattr(world.keybot.nudges, decide)(OWNER, world.ref())
    order = world.store.call_order
    last_write = len(order) - 1 - order[::-1].index("transaction")
    in_transaction = order[last_write + 1 :]
    assert in_transaction[0] == "lock_team shared", in_transaction
    assert "scope" in in_transaction and "decide_nudge" in in_transaction


async def test_the_home_extend_adds_thirty_days_to_the_expiry_as_the_reminder_does(world: World) -> None:
    expires_at = await expiring_key(world, "10d")
    change = await world.keybot.lifecycle.extend(OWNER, project="payments", name="ci")
    assert change.expires_at == world.key().expires_at == expires_at + 30 * DAY  # not now + 30 days
    world.clock.now = world.key().expires_at + DAY  # once the expiry has passed, 30 days from now
    change = await world.keybot.lifecycle.extend(OWNER, project="payments", name="ci")
    assert change.expires_at == world.clock() + 30 * DAY
    await world.keybot.lifecycle.set_policy(OWNER, setting="max-lifetime", value="40d")
    with pytest.raises(InvalidInput, match="`/apikeys expiry payments ci <when>`"):
        await world.keybot.lifecycle.extend(OWNER, project="payments", name="ci")
    with pytest.raises(PermissionDenied):
        await world.keybot.lifecycle.extend(READER, project="payments", name="ci")

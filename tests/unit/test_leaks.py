"""Leaked keys reported by GitHub (bot/services/leaks.py) on the in-memory store: labels, the org's
leak-action, audit and DMs to every owner of the project, replays, and that nothing but the masked key
is kept."""

import copy
import hashlib
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from bot.domain.keys import CHECKSUM_LEN, KeyFormat, checksum
from bot.domain.leaks import LEAK_ACTOR, MAX_URL, Label, Leak, LeakOutcome, shown_url
from bot.domain.model import Actor
from bot.domain.notices import NoticeKind
from bot.services import Context, Keybot
from bot.services.leaks import LeakService
from tests.fakes import CountingHasher, FakeClock, MemoryStore
from tests.fakes.state import KeyRow

TEAM = "T0001"
OWNER = Actor(TEAM, "U0OWNER")
OWNER2 = Actor(TEAM, "U0OWNER2")
P_OWNER = Actor(TEAM, "U1POWNER")
ADMIN = Actor(TEAM, "U2ADMIN")
URL = "https://github.com/acme/app/blob/abc123/config.py#L3"


@dataclass
class World:
    keybot: Keybot
    store: MemoryStore
    clock: FakeClock
    leaks: LeakService
    secret: str = field(repr=False)  # test output must not show it either
    changed: list[int] = field(default_factory=list)
    notified: list[int] = field(default_factory=list)

    async def report(self, *tokens: str, url: str = URL) -> list[Label]:
        feedback = await self.leaks.report([Leak(token=t, type="keybot_api_key", url=url) for t in tokens])
        assert [f.token_hash for f in feedback] == [hashlib.sha256(t.encode()).hexdigest() for t in tokens]
        assert {f.token_type for f in feedback} <= {"keybot_api_key"}
        return [f.label for f in feedback]

    def leak_dms(self) -> dict[str, list[str | None]]:
        sent: dict[str, list[str | None]] = {}
        for row in self.store.outbox():
            if row.notice is not None and row.notice.kind is NoticeKind.KEY_LEAKED:
                sent.setdefault(row.user_id, []).append(row.notice.value)
        return sent

    def ci(self) -> KeyRow:
        [row] = [r for r in self.store.state.keys.values() if r.name == "ci"]
        return row

    def disabled(self) -> bool:
        return self.ci().disabled_at is not None


@pytest.fixture
async def world(keybot: Keybot, store: MemoryStore, clock: FakeClock, hasher: CountingHasher) -> World:
    """Org `Acme`: two org owners, an owner and an admin of `payments`, whose key `ci` is the leaked one."""
    await keybot.operators.bootstrap(team_id=TEAM, owner=OWNER.user_id, org_name="Acme")
    await keybot.projects.create(OWNER, name="payments")
    await keybot.people.grant(OWNER, user_id=OWNER2.user_id, role="owner")
    await keybot.people.grant(OWNER, user_id=P_OWNER.user_id, role="owner", project="payments")
    await keybot.people.grant(OWNER, user_id=ADMIN.user_id, role="admin", project="payments")
    created = await keybot.keys.create(OWNER, project="payments", name="ci")
    changed: list[int] = []
    notified: list[int] = []
    context = Context(
        uow=store, clock=clock, on_key_changed=changed.append, on_notify=lambda: notified.append(1)
    )
    leaks = LeakService(context, reads=store, hasher=hasher, key_format=KeyFormat())
    return World(keybot, store, clock, leaks, created.plaintext, changed, notified)


async def test_a_live_leaked_key_is_disabled_audited_and_dmed_to_every_owner_of_its_project(world: World) -> None:
    assert await world.report(world.secret) == [Label.TRUE_POSITIVE]
    assert world.disabled()
    row = world.ci()
    assert world.changed == [row.id]  # this instance's verifier is told at once
    assert world.leak_dms() == {u.user_id: ["disabled"] for u in (OWNER, OWNER2, P_OWNER)}
    [event] = [e for e in world.store.audit_events() if e.actor == LEAK_ACTOR]
    assert (event.action, event.key_name, event.key_masked) == ("key disabled", "ci", row.masked)
    assert event.detail == f"leaked, found by GitHub at {URL}"
    [notice] = [r.notice for r in world.store.outbox(user_id=OWNER.user_id) if r.notice is not None
                and r.notice.kind is NoticeKind.KEY_LEAKED]
    assert (notice.project, notice.key_name, notice.key_masked, notice.url) == ("payments", "ci", row.masked, URL)


async def test_with_leak_action_alert_the_key_keeps_working_and_the_owners_are_told(world: World) -> None:
    await world.keybot.lifecycle.set_policy(OWNER, setting="leak-action", value="alert")
    assert await world.report(world.secret) == [Label.TRUE_POSITIVE]
    assert not world.disabled()
    assert world.changed == []
    assert world.leak_dms() == {u.user_id: ["alerted"] for u in (OWNER, OWNER2, P_OWNER)}
    [event] = [e for e in world.store.audit_events() if e.actor == LEAK_ACTOR]
    assert (event.action, event.detail) == ("key leaked", f"leaked, found by GitHub at {URL} (alerted)")


async def test_a_replayed_report_changes_nothing_and_dms_nobody_again(world: World) -> None:
    await world.keybot.lifecycle.set_policy(OWNER, setting="leak-action", value="alert")
    await world.report(world.secret)
    before = copy.deepcopy(world.store.state)
    assert await world.report(world.secret) == [Label.TRUE_POSITIVE]
    assert world.store.state.outbox == before.outbox and world.store.state.audit == before.audit


async def test_the_same_key_found_at_another_place_is_reported_again(world: World) -> None:
    await world.report(world.secret)
    await world.report(world.secret, url="https://gist.github.com/someone/1")
    assert world.leak_dms()[OWNER.user_id] == ["disabled", "already disabled"]


async def test_a_key_already_disabled_stays_so_and_its_owners_are_told_not_to_enable_it(world: World) -> None:
    await world.keybot.lifecycle.disable(OWNER, project="payments", name="ci")
    assert await world.report(world.secret) == [Label.TRUE_POSITIVE]
    assert world.disabled()
    assert world.leak_dms()[P_OWNER.user_id] == [LeakOutcome.ALREADY_DISABLED.value]


async def test_near_misses_and_strangers_are_false_positives_and_change_nothing(
    world: World, hasher: CountingHasher
) -> None:
    before = copy.deepcopy(world.store.state)
    bad_checksum = world.secret[:-1] + ("A" if world.secret[-1] != "A" else "B")
    stranger = KeyFormat().generate().plaintext  # well formed, but a key id nobody has
    body = world.secret[:-CHECKSUM_LEN]
    body = body[:-1] + ("x" if body[-1] != "x" else "y")
    guessed = body + checksum(body)  # a real key id, a wrong secret, a valid checksum
    verifications = hasher.verifications
    labels = await world.report(bad_checksum, "ghp_notours", stranger, guessed)
    assert labels == [Label.FALSE_POSITIVE] * 4
    assert hasher.verifications == verifications + 1  # only the guess with a real key id costs argon2
    assert world.store.state.keys == before.keys and world.store.state.outbox == before.outbox
    assert world.store.state.audit == before.audit


async def test_a_rolled_keys_old_secret_in_its_grace_disables_the_key(world: World) -> None:
    await world.keybot.lifecycle.roll(OWNER, project="payments", name="ci", grace="1d")
    assert await world.report(world.secret) == [Label.TRUE_POSITIVE]
    assert world.disabled()


async def test_a_rolled_keys_old_secret_past_its_grace_is_true_but_changes_nothing(world: World) -> None:
    await world.keybot.lifecycle.roll(OWNER, project="payments", name="ci", grace="1h")
    world.clock.advance(timedelta(hours=2))
    before = copy.deepcopy(world.store.state)
    assert await world.report(world.secret) == [Label.TRUE_POSITIVE]
    assert world.store.state.keys == before.keys and world.store.state.outbox == before.outbox


async def test_a_token_twice_in_one_report_is_handled_once_and_answered_twice(world: World) -> None:
    assert await world.report(world.secret, world.secret) == [Label.TRUE_POSITIVE] * 2
    assert world.leak_dms()[OWNER.user_id] == ["disabled"]


async def test_the_leaked_plaintext_is_kept_nowhere(world: World) -> None:
    await world.report(world.secret)
    kept = repr(world.store.state) + "".join(r.notice.to_json() for r in world.store.outbox() if r.notice)
    assert world.secret not in kept and world.secret[-28:] not in kept
    assert world.secret not in repr(Leak(token=world.secret, type="t", url=URL))


def test_a_reported_location_is_kept_on_one_line_cut_and_without_characters_a_database_refuses() -> None:
    assert shown_url("https://github.com/o/r/blob/main/.env") == "https://github.com/o/r/blob/main/.env"
    assert shown_url("https://x/\x00a\ud800b\n c") == "https://x/?a?b c"
    assert shown_url("https://x/日本/👍") == "https://x/日本/👍"
    long = shown_url("https://x/" + "a" * 2 * MAX_URL)
    assert len(long) == MAX_URL and long.endswith("…")

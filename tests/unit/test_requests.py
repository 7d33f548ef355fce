"""Access requests (bot/services/requests.py) on the in-memory store with the fake clock: the rules the
front ends do not show — who is asked, the lists a user sees, what a decision leaves behind (the
approvers' updates, the requester's Reveal key DM), that a revealed key never enters a notice, and
``void_requests_of`` / ``awaiting``, which the offboarding and the App Home call."""

import copy
from datetime import UTC, datetime, time, timedelta

import pytest

from bot.domain.errors import ConfirmationRefused, InvalidInput, KeybotError, PermissionDenied
from bot.domain.model import Actor
from bot.domain.notices import Notice, NoticeKind
from bot.domain.requests import RequestRef, RequestState
from bot.services import Keybot
from bot.services.jobs import JobRunner
from tests.fakes import FakeClock, MemoryStore
from tests.fakes.state import scalars

TEAM = "T0001"
OWNER = Actor(TEAM, "U0OWNER")
P_OWNER = Actor(TEAM, "U1POWNER")
WRITER = Actor(TEAM, "U2WRITER")
READER = Actor(TEAM, "U4RO")


@pytest.fixture
async def keybot_world(keybot: Keybot, store: MemoryStore, clock: FakeClock) -> tuple[Keybot, MemoryStore, FakeClock]:
    await keybot.operators.bootstrap(team_id=TEAM, owner=OWNER.user_id, org_name="Acme")
    await keybot.projects.create(OWNER, name="payments")
    await keybot.people.grant(OWNER, user_id=P_OWNER.user_id, role="owner", project="payments")
    await keybot.people.grant(OWNER, user_id=WRITER.user_id, role="read-write", project="payments")
    await keybot.people.grant(OWNER, user_id=READER.user_id, role="read-only", project="payments")
    return keybot, store, clock


def notices(store: MemoryStore, kind: NoticeKind) -> list[Notice]:
    return [r.notice for r in store.outbox() if r.notice is not None and r.notice.kind is kind]


async def test_the_owners_are_asked_and_the_approval_leaves_one_reveal_dm_and_every_copy_updated(
    keybot_world: tuple[Keybot, MemoryStore, FakeClock],
) -> None:
    keybot, store, _ = keybot_world
    sent = await keybot.requests.request(WRITER, project="payments", reason="the importer")
    assert sorted(sent.request.approvers) == sorted([OWNER.user_id, P_OWNER.user_id])
    assert sorted(n.recipient for n in notices(store, NoticeKind.ACCESS_REQUESTED)) == sorted(sent.request.approvers)
    assert [r.id for r in await keybot.requests.awaiting(P_OWNER)] == [sent.request.id]
    assert await keybot.requests.awaiting(WRITER) == [] and await keybot.requests.awaiting(READER) == []

    ref = RequestRef(sent.request.id, sent.request.token)
    decided = await keybot.requests.approve(P_OWNER, ref)
    assert decided.state is RequestState.APPROVED and decided.request.decided_by == P_OWNER.user_id
    updates = notices(store, NoticeKind.REQUEST_DECIDED)
    assert sorted(n.recipient for n in updates) == sorted(sent.request.approvers)
    assert {n.decision for n in updates} == {"approved"}
    [reveal] = notices(store, NoticeKind.REQUEST_APPROVED)
    assert reveal.recipient == WRITER.user_id and reveal.token == sent.request.token
    assert await keybot.requests.awaiting(OWNER) == []

    created = await keybot.requests.reveal(WRITER, ref)
    assert created.name == "request-1" and created.plaintext.startswith("kb_")
    assert created.plaintext not in {str(v) for v in scalars(store.state)}  # only its hash is kept
    with pytest.raises(ConfirmationRefused, match="already revealed"):
        await keybot.requests.reveal(WRITER, ref)
    listed = await keybot.requests.requests(WRITER)
    assert [r.state for r in listed.own] == [RequestState.REVEALED] and listed.awaiting == []


async def test_void_requests_of_ends_a_pending_request_and_an_unused_reveal_button(
    keybot_world: tuple[Keybot, MemoryStore, FakeClock],
) -> None:
    keybot, store, _ = keybot_world
    await keybot.people.grant(OWNER, user_id=WRITER.user_id, role="admin", project="payments")
    first = (await keybot.requests.request(WRITER, project="payments")).request
    await keybot.requests.approve(OWNER, RequestRef(first.id, first.token))
    second = (await keybot.requests.request(WRITER, project="payments")).request
    org_id = first.org_id

    assert await keybot.requests.void_requests_of(org_id, user_id=WRITER.user_id) == 2
    assert await keybot.requests.void_requests_of(org_id, user_id=WRITER.user_id) == 0
    assert [r.state for r in (await keybot.requests.requests(WRITER)).own] == [RequestState.VOID] * 2
    assert [n.decision for n in notices(store, NoticeKind.REVEAL_CLOSED)] == ["void"]
    assert {n.decision for n in notices(store, NoticeKind.REQUEST_DECIDED)} == {"approved", "void"}
    for request in (first, second):
        with pytest.raises(KeybotError):
            await keybot.requests.reveal(WRITER, RequestRef(request.id, request.token))
    with pytest.raises(ConfirmationRefused, match="withdrawn"):
        await keybot.requests.approve(OWNER, RequestRef(second.id, second.token))


async def test_a_refused_step_changes_nothing(keybot_world: tuple[Keybot, MemoryStore, FakeClock]) -> None:
    keybot, store, _ = keybot_world
    request = (await keybot.requests.request(WRITER, project="payments")).request
    before = copy.deepcopy(store.state)
    for actor, step in [
        (WRITER, keybot.requests.approve),  # their own
        (READER, keybot.requests.deny),  # never asked
        (WRITER, keybot.requests.reveal),  # not approved yet
    ]:
        with pytest.raises((ConfirmationRefused, PermissionDenied)):
            await step(actor, RequestRef(request.id, request.token))
    with pytest.raises(ConfirmationRefused, match="out of date"):
        await keybot.requests.approve(OWNER, RequestRef(request.id, "x" * 16))
    assert store.state == before


async def test_the_expiry_job_expires_a_pending_request_once(
    keybot_world: tuple[Keybot, MemoryStore, FakeClock],
) -> None:
    keybot, store, clock = keybot_world
    request = (await keybot.requests.request(WRITER, project="payments")).request
    runner = JobRunner(store, keybot.jobs, clock=clock, lease_seconds=60)
    clock.now = clock() + timedelta(hours=71)
    while await runner.run_once():
        pass
    assert [r.state for r in (await keybot.requests.requests(WRITER)).own] == [RequestState.PENDING]
    clock.now = clock() + timedelta(hours=1, seconds=1)
    while await runner.run_once():
        pass
    assert [r.state for r in (await keybot.requests.requests(WRITER)).own] == [RequestState.EXPIRED]
    [ended] = notices(store, NoticeKind.REQUEST_ENDED)
    assert (ended.recipient, ended.decision) == (WRITER.user_id, "expired")
    with pytest.raises(ConfirmationRefused, match="expired"):
        await keybot.requests.deny(OWNER, RequestRef(request.id, request.token))


async def test_a_request_past_its_72_hours_cannot_be_decided_even_before_its_expiry_job_runs(
    keybot_world: tuple[Keybot, MemoryStore, FakeClock],
) -> None:
    keybot, store, clock = keybot_world
    request = (await keybot.requests.request(WRITER, project="payments")).request
    clock.now = clock() + timedelta(hours=72) - timedelta(seconds=1)
    assert [r.id for r in await keybot.requests.awaiting(OWNER)] == [request.id]
    clock.now = clock() + timedelta(seconds=1)  # no job runner here: the request is still PENDING in the store
    assert await keybot.requests.awaiting(OWNER) == []
    assert (await keybot.requests.requests(OWNER)).awaiting == []
    before = copy.deepcopy(store.state)
    for step in (keybot.requests.approve, keybot.requests.deny):
        with pytest.raises(ConfirmationRefused, match="expired"):
            await step(OWNER, RequestRef(request.id, request.token))
    assert store.state == before


async def test_a_requested_date_that_passed_before_the_reveal_refuses_it_and_creates_no_key(
    keybot_world: tuple[Keybot, MemoryStore, FakeClock],
) -> None:
    keybot, store, clock = keybot_world
    today = clock().date().isoformat()
    request = (await keybot.requests.request(WRITER, project="payments", expires=today)).request
    await keybot.requests.approve(P_OWNER, RequestRef(request.id, request.token))
    clock.now = datetime.combine(clock().date() + timedelta(days=1), time(1), UTC)  # past midnight, reveal still open
    before = copy.deepcopy(store.state)
    with pytest.raises(InvalidInput, match=f"asked to expire `{today}`, which has passed"):
        await keybot.requests.reveal(WRITER, RequestRef(request.id, request.token))
    assert store.state == before  # no key, the request still approved


async def test_a_requested_lifetime_is_kept_at_the_reveal_and_capped_by_a_policy_tightened_since(
    keybot_world: tuple[Keybot, MemoryStore, FakeClock],
) -> None:
    keybot, _, clock = keybot_world
    request = (await keybot.requests.request(WRITER, project="payments", expires="60d")).request
    await keybot.requests.approve(P_OWNER, RequestRef(request.id, request.token))
    created = await keybot.requests.reveal(WRITER, RequestRef(request.id, request.token))
    assert created.expires_at == clock() + timedelta(days=60)
    other = (await keybot.requests.request(WRITER, project="payments", expires="60d")).request
    await keybot.requests.approve(P_OWNER, RequestRef(other.id, other.token))
    await keybot.lifecycle.set_policy(OWNER, setting="max-lifetime", value="30d")
    capped = await keybot.requests.reveal(WRITER, RequestRef(other.id, other.token))
    assert capped.expires_at == clock() + timedelta(days=30)


async def test_a_reason_with_a_nul_is_refused_and_sends_nothing(
    keybot_world: tuple[Keybot, MemoryStore, FakeClock],
) -> None:
    keybot, store, _ = keybot_world
    before = copy.deepcopy(store.state)
    with pytest.raises(InvalidInput, match="control characters"):
        await keybot.requests.request(WRITER, project="payments", reason="nightly\x00export")
    assert store.state == before


async def test_a_reason_or_note_holding_a_key_is_refused_and_stores_nothing(
    keybot_world: tuple[Keybot, MemoryStore, FakeClock],
) -> None:
    keybot, store, _ = keybot_world
    key = (await keybot.keys.create(OWNER, project="payments", name="ci")).plaintext
    before = copy.deepcopy(store.state)
    with pytest.raises(InvalidInput, match="A reason cannot hold an API key"):
        await keybot.requests.request(WRITER, project="payments", reason=f"like {key} but mine")
    with pytest.raises(InvalidInput, match="A note cannot hold an API key"):
        await keybot.keys.create(OWNER, project="payments", name="web", note=f"same as {key}")
    assert store.state == before


async def test_a_key_or_project_named_with_a_keys_plaintext_is_refused_and_stores_nothing(
    keybot_world: tuple[Keybot, MemoryStore, FakeClock],
) -> None:
    keybot, store, _ = keybot_world
    key = (await keybot.keys.create(OWNER, project="payments", name="ci")).plaintext
    before = copy.deepcopy(store.state)
    with pytest.raises(InvalidInput, match="A key name cannot hold an API key") as err:
        await keybot.keys.create(OWNER, project="payments", name=key)
    assert key not in str(err.value)
    with pytest.raises(InvalidInput, match="A project name cannot hold an API key"):
        await keybot.projects.create(OWNER, name=key)
    assert store.state == before

"""The outbox worker (bot/slack/outbox.py) over the in-memory store, with a hand-written Slack client."""

import asyncio
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.domain.keys import KeyFormat
from bot.domain.model import Actor
from bot.domain.notices import Notice, NoticeKind
from bot.services import Context, build_services
from bot.slack.notices import dm_text
from bot.slack.outbox import OutboxWorker
from tests.fakes import CountingHasher, FakeClock, MemoryStore, OutboxRow

API = "https://slack.test/api/chat.postMessage"


def slack_response(
    status: int, data: dict[str, Any], headers: dict[str, str] | None = None
) -> AsyncSlackResponse:
    return AsyncSlackResponse(
        client=None,
        http_verb="POST",
        api_url=API,
        req_args={},
        data=data,
        headers=headers or {},
        status_code=status,
    )


def rate_limited(retry_after: str = "2", header: str = "retry-after") -> SlackApiError:
    return SlackApiError(
        "ratelimited", slack_response(429, {"ok": False, "error": "ratelimited"}, {header: retry_after})
    )


def server_error(status: int = 500) -> SlackApiError:
    return SlackApiError("server error", slack_response(status, {"ok": False, "error": "internal_error"}))


def not_ok(error: str = "channel_not_found") -> SlackApiError:
    return SlackApiError(error, slack_response(200, {"ok": False, "error": error}))


class FakeSlackClient:
    """Answers ``chat_postMessage`` from a script of outcomes (an exception to raise, or "ok"), then ok."""

    def __init__(self, *script: BaseException | str) -> None:
        self.script = list(script)
        self.calls: list[dict[str, Any]] = []
        self.delivered: list[tuple[str, str]] = []
        self.before_answer: Callable[[dict[str, Any]], None] | None = None
        self.gate: asyncio.Event | None = None
        self.failing = False

    async def chat_postMessage(self, **kwargs: Any) -> AsyncSlackResponse:
        self.calls.append(kwargs)
        if self.gate is not None:
            await self.gate.wait()
        if self.before_answer is not None:
            self.before_answer(kwargs)
        outcome = self.script.pop(0) if self.script else "ok"
        if self.failing:
            outcome = server_error(503)
        if isinstance(outcome, BaseException):
            raise outcome
        self.delivered.append((kwargs["channel"], kwargs["text"]))
        return slack_response(200, {"ok": True, "channel": "D1", "ts": "1.0"})


AT = FakeClock().now  # when the queued events happened: the fake clock's start, so they are due at once


def notice_for(user: str) -> Notice:
    return Notice(
        NoticeKind.ROLE_GRANTED, recipient=user, team_id="T1", actor="U0", at=AT, org="Acme", role="member"
    )


def hello(user: str) -> str:
    """The DM the worker sends for ``notice_for(user)``."""
    return dm_text(notice_for(user))


async def queue(store: MemoryStore, *users: str) -> None:
    async with store.transaction() as tx:
        for user in users:
            await tx.notify(notice_for(user))


def worker(store: MemoryStore, client: FakeSlackClient, clock: FakeClock, **kwargs: Any) -> OutboxWorker:
    return OutboxWorker(store, client, clock=clock, **kwargs)  # type: ignore[arg-type]


def only_row(store: MemoryStore) -> OutboxRow:
    [row] = store.outbox()
    return row


async def eventually(condition: Callable[[], bool]) -> None:
    for _ in range(600):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not met within 3 seconds")


async def test_a_row_is_marked_sent_only_after_slack_answers_ok(store: MemoryStore, clock: FakeClock) -> None:
    await queue(store, "U1")
    client = FakeSlackClient()
    seen_unsent: list[bool] = []
    client.before_answer = lambda _: seen_unsent.append(only_row(store).sent_at is None)
    assert await worker(store, client, clock).drain_once() == 1
    assert seen_unsent == [True]
    assert client.calls == [{"channel": "U1", "text": hello("U1"), "unfurl_links": False}]
    assert only_row(store).sent_at == clock()
    assert await store.pending_notifications() == 0


@pytest.mark.parametrize(
    "failure",
    [
        rate_limited(),
        server_error(500),
        server_error(503),
        not_ok(),
        TimeoutError(),
        ConnectionResetError(),
        ValueError(),
    ],
    ids=["429", "500", "503", "ok-false", "timeout", "reset", "unexpected"],
)
async def test_a_failed_send_keeps_the_row_for_later(
    store: MemoryStore, clock: FakeClock, failure: BaseException
) -> None:
    await queue(store, "U1")
    assert await worker(store, FakeSlackClient(failure), clock).drain_once() == 0
    row = only_row(store)
    assert row.sent_at is None and row.claimed_until is None
    assert row.next_attempt_at > clock()
    assert row.last_error
    assert await store.pending_notifications() == 1


async def test_a_429_is_retried_after_retry_after(store: MemoryStore, clock: FakeClock) -> None:
    await queue(store, "U1")
    client = FakeSlackClient(rate_limited("2"))
    outbox = worker(store, client, clock)
    await outbox.drain_once()
    assert only_row(store).next_attempt_at == clock() + timedelta(seconds=2)
    assert only_row(store).last_error == "429 ratelimited"
    clock.advance(seconds=1.9)
    assert await outbox.drain_once() == 0
    assert len(client.calls) == 1
    clock.advance(seconds=0.1)
    assert await outbox.drain_once() == 1
    assert client.delivered == [("U1", hello("U1"))]


async def test_a_capitalised_retry_after_header_is_honoured_too(store: MemoryStore, clock: FakeClock) -> None:
    await queue(store, "U1")
    await worker(store, FakeSlackClient(rate_limited("7", header="Retry-After")), clock).drain_once()
    assert only_row(store).next_attempt_at == clock() + timedelta(seconds=7)


async def test_a_429_retry_after_wins_over_the_backoff(store: MemoryStore, clock: FakeClock) -> None:
    await queue(store, "U1")
    await worker(store, FakeSlackClient(rate_limited("30")), clock, base_backoff=1.0).drain_once()
    assert only_row(store).next_attempt_at == clock() + timedelta(seconds=30)


async def test_5xx_backs_off_exponentially(store: MemoryStore, clock: FakeClock) -> None:
    await queue(store, "U1")
    client = FakeSlackClient(*(server_error() for _ in range(5)))
    outbox = worker(store, client, clock, base_backoff=1.0)
    delays = []
    for _ in range(5):
        assert await outbox.drain_once() == 0
        due = only_row(store).next_attempt_at
        delays.append((due - clock()).total_seconds())
        clock.now = due - timedelta(milliseconds=1)
        assert await outbox.drain_once() == 0  # not before it is due
        clock.now = due
    assert delays == [1, 2, 4, 8, 16]
    assert await outbox.drain_once() == 1
    assert len(client.calls) == 6
    assert only_row(store).attempts == 6


async def test_the_backoff_is_capped_at_15_minutes(store: MemoryStore, clock: FakeClock) -> None:
    await queue(store, "U1")
    outbox = worker(store, FakeSlackClient(*(server_error() for _ in range(8))), clock, base_backoff=60.0)
    delays = []
    for _ in range(8):
        await outbox.drain_once()
        due = only_row(store).next_attempt_at
        delays.append((due - clock()).total_seconds())
        clock.now = due
    assert delays == [60, 120, 240, 480, 900, 900, 900, 900]


async def test_an_ok_false_answer_is_retried_with_its_error_recorded(
    store: MemoryStore, clock: FakeClock
) -> None:
    await queue(store, "U1")
    outbox = worker(store, FakeSlackClient(not_ok("channel_not_found")), clock, base_backoff=5.0)
    await outbox.drain_once()
    row = only_row(store)
    assert row.last_error == "200 channel_not_found"
    assert row.next_attempt_at == clock() + timedelta(seconds=5)


async def test_a_timeout_is_retried_with_backoff(store: MemoryStore, clock: FakeClock) -> None:
    await queue(store, "U1")
    client = FakeSlackClient(TimeoutError())
    outbox = worker(store, client, clock, base_backoff=3.0)
    await outbox.drain_once()
    assert only_row(store).last_error == "TimeoutError"
    assert only_row(store).next_attempt_at == clock() + timedelta(seconds=3)
    clock.advance(seconds=3)
    assert await outbox.drain_once() == 1
    assert client.delivered == [("U1", hello("U1"))]


async def test_nothing_is_lost_after_a_sequence_of_failures(store: MemoryStore, clock: FakeClock) -> None:
    users = [f"U{i:02}" for i in range(12)]
    await queue(store, *users)
    rng = random.Random(1234)
    kinds: list[Callable[[], BaseException | str]] = [
        lambda: rate_limited("3"),
        server_error,
        lambda: server_error(502),
        not_ok,
        TimeoutError,
        lambda: "ok",
    ]
    client = FakeSlackClient(*(rng.choice(kinds)() for _ in range(60)))
    outbox = worker(store, client, clock, batch=5, base_backoff=1.0)
    for _ in range(200):
        await outbox.drain_once()
        unsent = store.outbox(sent=False)
        if not unsent:
            break
        clock.now = max(clock.now, min(r.next_attempt_at for r in unsent))
    assert await store.pending_notifications() == 0
    assert sorted(client.delivered) == sorted((u, hello(u)) for u in users)
    assert len(client.calls) > len(users)  # failures happened
    assert all(r.sent_at is not None for r in store.outbox())


async def test_a_batch_holds_at_most_batch_rows(store: MemoryStore, clock: FakeClock) -> None:
    await queue(store, *(f"U{i}" for i in range(25)))
    outbox = worker(store, FakeSlackClient(), clock, batch=20)
    assert await outbox.drain_once() == 20
    assert await outbox.drain_once() == 5
    assert await outbox.drain_once() == 0


async def test_two_workers_never_send_the_same_row(store: MemoryStore, clock: FakeClock) -> None:
    await queue(store, "U1", "U2")
    client = FakeSlackClient()
    client.gate = asyncio.Event()
    first = asyncio.create_task(worker(store, client, clock).drain_once())
    await eventually(lambda: len(client.calls) == 2)
    assert await worker(store, client, clock).drain_once() == 0  # both rows are leased to the first
    client.gate.set()
    assert await first == 2
    assert sorted(client.delivered) == [("U1", hello("U1")), ("U2", hello("U2"))]
    assert len(client.calls) == 2


async def test_a_row_claimed_by_a_crashed_worker_goes_out_after_its_lease(
    store: MemoryStore, clock: FakeClock
) -> None:
    await queue(store, "U1")
    assert len(await store.claim_notifications(limit=10, now=clock(), lease_seconds=60)) == 1  # then "crash"
    client = FakeSlackClient()
    outbox = worker(store, client, clock)
    clock.advance(seconds=59)
    assert await outbox.drain_once() == 0
    clock.advance(seconds=1)
    assert await outbox.drain_once() == 1
    assert client.delivered == [("U1", hello("U1"))]
    assert only_row(store).attempts == 2


async def test_the_running_worker_delivers_when_woken_and_stops_cleanly(
    store: MemoryStore, clock: FakeClock
) -> None:
    client = FakeSlackClient()
    outbox = worker(store, client, clock, poll_interval=30.0)
    outbox.start()
    await asyncio.sleep(0.01)
    await queue(store, "U1")
    outbox.wake()
    await eventually(lambda: len(client.delivered) == 1)
    await outbox.stop(drain_seconds=1.0)
    assert only_row(store).sent_at is not None


async def test_the_running_worker_survives_a_database_outage(store: MemoryStore, clock: FakeClock) -> None:
    await queue(store, "U1")
    store.down = True
    client = FakeSlackClient()
    outbox = worker(store, client, clock, poll_interval=0.01)
    outbox.start()
    await eventually(lambda: store.calls["claim_notifications"] >= 3)
    assert client.calls == []
    store.down = False
    await eventually(lambda: len(client.delivered) == 1)
    await outbox.stop(drain_seconds=1.0)


async def test_a_slack_outage_never_fails_a_key_operation_nor_loses_its_dms(
    store: MemoryStore, clock: FakeClock
) -> None:
    client = FakeSlackClient()
    client.failing = True
    outbox = worker(store, client, clock, base_backoff=1.0)
    keybot = build_services(
        Context(uow=store, clock=clock, on_notify=outbox.wake),
        listing=store,
        hasher=CountingHasher(),
        key_format=KeyFormat(),
    )
    await keybot.operators.bootstrap(team_id="T1", owner="U1", org_name="Acme")
    await keybot.people.grant(Actor("T1", "U1"), user_id="U2", role="owner")
    created = await keybot.projects.create(Actor("T1", "U1"), name="payments")
    for _ in range(5):
        await outbox.drain_once()
        clock.advance(minutes=1)
    assert len(store.state.keys) == 1
    assert await store.pending_notifications() == 3  # U2's grant, then the key DM to U1 and U2
    client.failing = False
    clock.advance(minutes=15)
    await outbox.drain_once()
    assert await store.pending_notifications() == 0
    assert sorted(user for user, text in client.delivered if created.masked in text) == ["U1", "U2"]


class RawHttpResponse:
    """What slack-sdk attaches to SlackApiError when Slack's body is not valid JSON: aiohttp's response,
    with ``.status`` and ``.headers`` but no ``.status_code`` and no ``.get()``."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.headers = headers or {}


async def test_an_unparseable_slack_answer_is_rescheduled_with_backoff(
    store: MemoryStore, clock: FakeClock
) -> None:
    await queue(store, "U1")
    failure = SlackApiError("Received a response in a non-JSON format: <html>", RawHttpResponse(502))
    assert await worker(store, FakeSlackClient(failure), clock, base_backoff=4.0).drain_once() == 0
    row = only_row(store)
    assert row.claimed_until is None
    assert row.next_attempt_at == clock() + timedelta(seconds=4)
    assert row.last_error is not None and "502" in row.last_error


async def test_a_retry_after_that_is_not_a_number_falls_back_to_backoff(
    store: MemoryStore, clock: FakeClock
) -> None:
    await queue(store, "U1")
    failure = rate_limited("Wed, 21 Oct 2015 07:28:00 GMT")
    assert await worker(store, FakeSlackClient(failure), clock, base_backoff=4.0).drain_once() == 0
    row = only_row(store)
    assert row.claimed_until is None
    assert row.next_attempt_at == clock() + timedelta(seconds=4)


async def test_a_row_queued_as_text_is_sent_as_it_is(store: MemoryStore, clock: FakeClock) -> None:
    """Rows written before notices existed carry their DM as text and no notice."""
    store.state.outbox[99] = OutboxRow(
        id=99, user_id="U1", notice=None, next_attempt_at=clock(), text="hi there"
    )
    await queue(store, "U2")
    client = FakeSlackClient()
    assert await worker(store, client, clock).drain_once() == 2
    assert sorted(client.delivered) == [("U1", "hi there"), ("U2", hello("U2"))]

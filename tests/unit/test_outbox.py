"""The outbox worker (bot/slack/outbox.py) over the in-memory store, with a hand-written Slack client."""

import asyncio
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.domain.keys import KeyFormat
from bot.domain.model import Actor, PendingDeletion
from bot.domain.notices import Notice, NoticeKind
from bot.services import Context, Keybot, build_services
from bot.services.upkeep import DeadLetterService, Purged, Purger, RetentionPolicy, Revived, outbox_report
from bot.slack.notices import dm_text
from bot.slack.outbox import APP_ERRORS, DEAD_LETTER_ERRORS, OutboxWorker, Verdict, classify
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


def not_ok(error: str = "internal_error") -> SlackApiError:
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
        not_ok("an_error_slack_adds_one_day"),
        TimeoutError(),
        ConnectionResetError(),
        ValueError(),
    ],
    ids=["429", "500", "503", "ok-false", "ok-false-unknown", "timeout", "reset", "unexpected"],
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


async def test_a_transient_ok_false_answer_is_retried_with_its_error_recorded(
    store: MemoryStore, clock: FakeClock
) -> None:
    await queue(store, "U1")
    outbox = worker(store, FakeSlackClient(not_ok("fatal_error")), clock, base_backoff=5.0)
    await outbox.drain_once()
    row = only_row(store)
    assert row.last_error == "200 fatal_error"
    assert row.next_attempt_at == clock() + timedelta(seconds=5)
    assert row.dead_at is None


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
    assert await store.pending_notifications() == 2  # U2's grant, then the key DM to U2 (U1 made it)
    client.failing = False
    clock.advance(minutes=15)
    await outbox.drain_once()
    assert await store.pending_notifications() == 0
    assert sorted(user for user, text in client.delivered if created.masked in text) == ["U2"]


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


# -- dead letters: Slack refused this DM for good ------------------------------------------------


@pytest.mark.parametrize("error", sorted(DEAD_LETTER_ERRORS))
async def test_a_dm_slack_refuses_for_good_is_dead_after_the_first_answer_and_never_claimed_again(
    store: MemoryStore, clock: FakeClock, error: str
) -> None:
    await queue(store, "UGHOST")
    client = FakeSlackClient(not_ok(error))
    outbox = worker(store, client, clock, base_backoff=1.0)
    assert await outbox.drain_once() == 0
    row = only_row(store)
    assert (row.dead_at, row.claimed_until, row.last_error) == (clock(), None, f"200 {error}")
    assert (await store.pending_notifications(), await store.dead_notifications()) == (0, 1)
    clock.advance(days=30)
    assert await outbox.drain_once() == 0
    assert len(client.calls) == 1
    assert only_row(store).attempts == 1


@pytest.mark.parametrize("error", ["user_not_found", "channel_not_found", "not_in_channel", "is_archived"])
async def test_the_recipient_errors_named_in_the_finding_are_dead_letters(error: str) -> None:
    assert classify(200, error) is Verdict.DEAD


@pytest.mark.parametrize("error", ["invalid_auth", "account_inactive", "token_revoked", "not_authed"])
async def test_errors_about_keybots_token_are_not_blamed_on_the_dm(error: str) -> None:
    assert error in APP_ERRORS and error not in DEAD_LETTER_ERRORS
    assert classify(200, error) is Verdict.APP


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_a_rate_limit_or_server_error_is_transient_whatever_its_body_says(status: int) -> None:
    assert classify(status, "channel_not_found") is Verdict.RETRY


async def test_burying_a_dm_logs_one_warning_naming_the_row_and_never_the_dm_text(
    store: MemoryStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    await queue(store, "UGHOST")
    caplog.set_level("DEBUG")
    await worker(store, FakeSlackClient(not_ok("user_not_found")), clock).drain_once()
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    line = warnings[0].getMessage()
    row = only_row(store)
    assert f"DM {row.id} to UGHOST is dead" in line and "user_not_found" in line
    assert f"keybot outbox retry {row.id}" in line
    assert hello("UGHOST") not in caplog.text
    assert "Acme" not in caplog.text  # nothing of the DM's content either


async def test_a_dead_dm_does_not_hold_up_the_others_in_its_batch(store: MemoryStore, clock: FakeClock) -> None:
    await queue(store, "U1", "UGHOST", "U2")
    client = FakeSlackClient()
    client.before_answer = lambda call: (
        client.script.append(not_ok("user_not_found")) if call["channel"] == "UGHOST" else None
    )
    assert await worker(store, client, clock).drain_once() == 2
    assert sorted(user for user, _ in client.delivered) == ["U1", "U2"]
    assert [r.user_id for r in store.outbox() if r.dead_at is not None] == ["UGHOST"]


@pytest.mark.parametrize("error", ["invalid_auth", "account_inactive", "token_revoked"])
async def test_while_slack_refuses_the_token_dms_stay_queued_and_go_out_once_it_is_fixed(
    store: MemoryStore, clock: FakeClock, error: str
) -> None:
    await queue(store, "U1")
    client = FakeSlackClient(not_ok(error), not_ok(error))
    outbox = worker(store, client, clock, base_backoff=2.0)
    for delay in (2, 4):
        assert await outbox.drain_once() == 0
        row = only_row(store)
        assert row.dead_at is None and row.last_error == f"200 {error}"
        assert row.next_attempt_at == clock() + timedelta(seconds=delay)
        clock.now = row.next_attempt_at
    assert await outbox.drain_once() == 1
    assert client.delivered == [("U1", hello("U1"))]


async def test_a_refused_token_is_logged_once_per_outage_as_an_error_and_its_end_once(
    store: MemoryStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    await queue(store, "U1", "U2", "U3")
    caplog.set_level("INFO", logger="keybot.outbox")
    client = FakeSlackClient(*(not_ok("invalid_auth") for _ in range(6)))
    outbox = worker(store, client, clock, base_backoff=1.0)
    await outbox.drain_once()
    clock.advance(minutes=1)
    await outbox.drain_once()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "invalid_auth" in errors[0] and "SLACK_BOT_TOKEN" in errors[0]
    clock.advance(minutes=1)
    assert await outbox.drain_once() == 3
    recovered = [r.getMessage() for r in caplog.records if "accepts keybot's bot token again" in r.getMessage()]
    assert len(recovered) == 1
    assert all(r.dead_at is None and r.sent_at is not None for r in store.outbox())
    assert "xoxb" not in caplog.text


async def test_a_revived_dead_dm_is_sent_on_the_next_drain_with_a_fresh_count_of_attempts(
    store: MemoryStore, clock: FakeClock
) -> None:
    await queue(store, "U1")
    client = FakeSlackClient(not_ok("user_not_found"))
    outbox = worker(store, client, clock)
    await outbox.drain_once()
    clock.advance(hours=2)
    revived = await DeadLetterService(store, clock=clock).retry([only_row(store).id])
    assert revived == Revived(ids=[only_row(store).id], not_dead=[])
    assert only_row(store).next_attempt_at == clock()
    assert await outbox.drain_once() == 1
    assert client.delivered == [("U1", hello("U1"))]
    assert only_row(store).attempts == 1


async def test_retry_revives_only_dead_dms_and_names_the_ids_it_could_not(
    store: MemoryStore, clock: FakeClock
) -> None:
    await queue(store, "UDEAD1", "UDEAD2", "UPENDING", "USENT")
    dead1, dead2, pending, sent = (r.id for r in store.outbox())
    await store.bury(dead1, at=clock(), error="200 user_not_found")
    await store.bury(dead2, at=clock(), error="200 channel_not_found")
    await store.mark_sent(sent, at=clock())
    service = DeadLetterService(store, clock=clock)
    assert await service.retry([dead1, pending, sent, 999]) == Revived(ids=[dead1], not_dead=[pending, sent, 999])
    assert await service.retry(None) == Revived(ids=[dead2], not_dead=[])
    assert await service.retry(None) == Revived(ids=[], not_dead=[])
    assert (await store.pending_notifications(), await store.dead_notifications()) == (3, 0)


async def test_the_outbox_listing_shows_who_what_and_why_but_never_a_dms_text(
    store: MemoryStore, clock: FakeClock
) -> None:
    await queue(store, "UGHOST", "UWAITING")
    ghost, waiting = (r.id for r in store.outbox())
    await store.bury(ghost, at=clock(), error="200 user_not_found")
    await store.reschedule(waiting, at=clock() + timedelta(minutes=5), error="503 ")
    report = outbox_report(await DeadLetterService(store, clock=clock).overview())
    pending_part, dead_part = report.split("Dead DMs")
    assert "Pending DMs: 1" in pending_part and "UWAITING" in pending_part and "UGHOST" not in pending_part
    assert ": 1" in dead_part and "UGHOST" in dead_part and "user_not_found" in dead_part
    assert "role granted" in report and "T1" in report
    assert "keybot outbox retry" in report
    for user in ("UGHOST", "UWAITING"):
        assert hello(user) not in report
    assert "Acme" not in report


async def test_the_outbox_listing_is_short_when_there_are_many_rows(store: MemoryStore, clock: FakeClock) -> None:
    await queue(store, *(f"U{n:03}" for n in range(120)))
    report = outbox_report(await DeadLetterService(store, clock=clock).overview(limit=50))
    assert "Pending DMs: 120" in report and "… and 70 more" in report
    assert "U049" in report and "U050" not in report
    assert "Dead DMs: none" in report


# -- retention: the periodic purge ------------------------------------------------------------------


def pending_deletion(token: str, *, expires_at: datetime, used_at: datetime | None = None) -> PendingDeletion:
    return PendingDeletion(token, key_row_id=1, project_id=1, user_id="U1", team_id="T1",
                           expires_at=expires_at, used_at=used_at)


async def test_the_purge_deletes_only_what_the_policy_no_longer_keeps_and_never_audit_events(
    store: MemoryStore, clock: FakeClock, keybot: Keybot
) -> None:
    await keybot.operators.bootstrap(team_id="T1", owner="U1", org_name="Acme")
    await queue(store, "UOLDSENT", "UNEWSENT", "UOLDDEAD", "UNEWDEAD", "UPENDING")
    old_sent, new_sent, old_dead, new_dead, _ = (r.id for r in store.outbox())
    await store.mark_sent(old_sent, at=clock() - timedelta(days=30, seconds=1))
    await store.mark_sent(new_sent, at=clock() - timedelta(days=29))
    await store.bury(old_dead, at=clock() - timedelta(days=91), error="200 user_not_found")
    await store.bury(new_dead, at=clock() - timedelta(days=89), error="200 user_not_found")
    store.state.outbox[old_dead].next_attempt_at = clock() - timedelta(days=365)  # queued long ago
    day = timedelta(days=1)
    store.state.pending.update(
        {
            p.token: p
            for p in (
                pending_deletion("expired-long-ago", expires_at=clock() - day - timedelta(seconds=1)),
                pending_deletion("expired-lately", expires_at=clock() - day + timedelta(seconds=1)),
                pending_deletion("used-long-ago", expires_at=clock() + day, used_at=clock() - 2 * day),
                pending_deletion("used-lately", expires_at=clock() - timedelta(hours=1), used_at=clock() - day / 2),
                pending_deletion("live", expires_at=clock() + timedelta(minutes=5)),
            )
        }
    )
    audit_before = store.audit_events()
    purged = await Purger(store, clock=clock, policy=RetentionPolicy()).purge_once()
    assert purged == Purged(sent_dms=1, dead_dms=1, pending_deletions=2)
    assert [r.user_id for r in store.outbox()] == ["UNEWSENT", "UNEWDEAD", "UPENDING"]
    assert sorted(store.state.pending) == ["expired-lately", "live", "used-lately"]
    assert store.audit_events() == audit_before and audit_before
    assert await Purger(store, clock=clock, policy=RetentionPolicy()).purge_once() == Purged()


async def test_the_purge_deletes_in_batches_until_nothing_old_is_left(store: MemoryStore, clock: FakeClock) -> None:
    await queue(store, *(f"U{n}" for n in range(5)))
    for row in store.outbox():
        await store.mark_sent(row.id, at=clock() - timedelta(days=31))
    purger = Purger(store, clock=clock, policy=RetentionPolicy(), batch=2)
    assert (await purger.purge_once()).sent_dms == 5
    assert store.outbox() == []
    assert store.calls["purge_sent_notifications"] == 3  # 2 + 2 + 1


async def test_a_retention_of_forever_purges_nothing_of_that_kind(store: MemoryStore, clock: FakeClock) -> None:
    await queue(store, "U1")
    await store.mark_sent(only_row(store).id, at=clock() - timedelta(days=3650))
    policy = RetentionPolicy(sent_dms=None, dead_dms=None, pending_deletions=None)
    assert await Purger(store, clock=clock, policy=policy).purge_once() == Purged()
    assert len(store.outbox()) == 1
    assert store.calls["purge_sent_notifications"] == 0


async def test_the_running_purger_purges_at_once_survives_an_outage_and_stops_cleanly(
    store: MemoryStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    await queue(store, "U1")
    await store.mark_sent(only_row(store).id, at=clock() - timedelta(days=31))
    store.down = True
    purger = Purger(store, clock=clock, policy=RetentionPolicy(), interval=0.01)
    purger.start()
    await eventually(lambda: store.calls["purge_sent_notifications"] >= 2)
    assert "database unavailable" in caplog.text
    store.down = False
    await eventually(lambda: store.outbox() == [])
    await purger.stop(within=1.0)
    calls = store.calls["purge_sent_notifications"]
    await asyncio.sleep(0.05)
    assert store.calls["purge_sent_notifications"] == calls


async def _queue_at(store: MemoryStore, clock: FakeClock, user: str, key: str) -> None:
    note = Notice(
        NoticeKind.KEY_CREATED,
        recipient=user,
        team_id="T1",
        actor="U0",
        at=clock(),
        project="web",
        key_name=key,
        key_masked="kb_AbCdEfGhIj_…wxyz",
    )
    async with store.transaction() as tx:
        await tx.notify(note)


async def test_changes_for_one_person_within_the_merge_window_go_out_as_one_dm(
    store: MemoryStore, clock: FakeClock
) -> None:
    client = FakeSlackClient()
    outbox = worker(store, client, clock, merge_seconds=3)
    await _queue_at(store, clock, "U1", "first")
    clock.advance(seconds=2)
    await _queue_at(store, clock, "U1", "second")
    await _queue_at(store, clock, "U2", "other")
    assert await outbox.drain_once() == 0  # nothing has settled yet: more may come
    clock.advance(seconds=1)
    assert await outbox.drain_once() == 2  # U1's first settled and brought its second along
    assert len(client.delivered) == 1  # U2's change is still settling
    clock.advance(seconds=2)
    assert await outbox.drain_once() == 1
    by_user = {user: text for user, text in client.delivered}
    assert len(client.delivered) == 2
    assert by_user["U1"].startswith("2 changes in keybot:\n• ")
    assert by_user["U1"].index("`first`") < by_user["U1"].index("`second`")
    assert "`other`" in by_user["U2"] and not by_user["U2"].startswith("2 changes")
    assert await store.pending_notifications() == 0


async def test_without_a_merge_window_each_change_is_its_own_dm(store: MemoryStore, clock: FakeClock) -> None:
    client = FakeSlackClient()
    await _queue_at(store, clock, "U1", "first")
    clock.advance(seconds=10)
    await _queue_at(store, clock, "U1", "second")
    await worker(store, client, clock, merge_seconds=0).drain_once()
    assert await store.pending_notifications() == 0
    assert len(client.delivered) == 1  # both were due together, so they still merge into one DM
    clock.advance(seconds=1)
    await _queue_at(store, clock, "U1", "third")
    await worker(store, client, clock, merge_seconds=0).drain_once()
    assert len(client.delivered) == 2 and "`third`" in client.delivered[-1][1]


async def test_a_merged_dm_slack_refuses_keeps_every_row_it_carried(store: MemoryStore, clock: FakeClock) -> None:
    client = FakeSlackClient()
    client.failing = True
    await _queue_at(store, clock, "U1", "first")
    await _queue_at(store, clock, "U1", "second")
    await worker(store, client, clock).drain_once()
    assert await store.pending_notifications() == 2
    assert all(row.sent_at is None for row in store.outbox())

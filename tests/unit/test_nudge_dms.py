"""Reminder DMs on the Slack side: their Block Kit and buttons (bot/slack/nudges.py), the codec of their
button values (bot/slack/codec.py), and how the outbox worker (bot/slack/outbox.py) sends them alone,
records where they went, and updates every copy once someone decided."""

import secrets
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from bot.domain.errors import InvalidInput
from bot.domain.jobs import Decision, NudgeRef
from bot.domain.keys import KeyFormat
from bot.domain.notices import Notice, NoticeKind
from bot.services.nudges import NudgeOutcome
from bot.slack import nudges
from bot.slack.codec import MAX_ROW_ID, STALE, ActionId, decode_nudge, encode_nudge
from bot.slack.notices import dm_text
from bot.slack.outbox import UPDATE_TRIES, OutboxWorker
from tests.fakes import FakeClock, MemoryStore

AT = FakeClock().now
MASKED = "kb_AbCdEfGhIj_…wxyz"
TOKEN = "AbCdEfGhIjKlMnOp"


def reminder(kind: NoticeKind = NoticeKind.EXPIRY_NUDGE, *, to: str = "U1", nudge: int = 7, **fields: Any) -> Notice:
    values: dict[str, Any] = {
        "recipient": to, "team_id": "T1", "actor": "U0", "at": AT, "project": "payments", "key_name": "ci",
        "key_masked": MASKED, "nudge": nudge, "token": TOKEN, "until": AT + timedelta(days=7),
        "since": AT - timedelta(days=95),
    }
    values.update(fields)
    return Notice(kind=kind, **values)


def decided(to: str, *, nudge: int = 7, decision: Decision = Decision.EXTENDED) -> Notice:
    return Notice(
        NoticeKind.NUDGE_DECIDED, recipient=to, team_id="T1", actor="U9", at=AT,
        project="payments", key_name="ci", key_masked=MASKED, nudge=nudge, decision=decision.value,
        until=AT + timedelta(days=37),
    )


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


# -- the codec ----------------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=MAX_ROW_ID), st.sampled_from([secrets.token_urlsafe(12) for _ in range(5)]))
def test_a_reminders_button_value_round_trips(job_id: int, token: str) -> None:
    assert decode_nudge(encode_nudge(NudgeRef(job_id, token))) == NudgeRef(job_id, token)


@given(st.text(max_size=90))
def test_any_other_value_is_stale(value: str) -> None:
    try:
        ref = decode_nudge(value)
    except InvalidInput as err:
        assert str(err) == STALE
        return
    assert encode_nudge(ref) == value  # only what the encoder could have written decodes


@pytest.mark.parametrize("value", ["", "n1", "n1.short", f"n{MAX_ROW_ID + 1}.{TOKEN}", f"7.{TOKEN}", f"n-1.{TOKEN}",
                                   f"n١.{TOKEN}", f"n1.{TOKEN}!", f"n1.{TOKEN}\n"])
def test_malformed_values_are_refused(value: str) -> None:
    with pytest.raises(InvalidInput):
        decode_nudge(value)


# -- the DMs ------------------------------------------------------------------------------------


def test_an_expiry_reminder_offers_roll_extend_and_let_it_expire() -> None:
    message = nudges.nudge_dm(reminder())
    assert [(b["action_id"], b["text"]["text"]) for b in buttons(message)] == [
        (ActionId.NUDGE_ROLL, "Roll"), (ActionId.NUDGE_EXTEND, "Extend 30 days"), (ActionId.NUDGE_LET_EXPIRE, "Let it expire")
    ]
    assert {b["value"] for b in buttons(message)} == {f"n7.{TOKEN}"}
    assert "confirm" not in buttons(message)[0]  # Roll opens the roll modal, which asks first
    assert "Key `ci` (`kb_AbCdEfGhIj_…wxyz`) in project `payments` expires <!date^" in message["text"]
    assert "in 7 days" in message["text"]


def test_a_stale_reminder_offers_delete_and_keep() -> None:
    message = nudges.nudge_dm(reminder(NoticeKind.STALE_NUDGE))
    assert [(b["action_id"], b["text"]["text"]) for b in buttons(message)] == [
        (ActionId.NUDGE_DELETE, "Delete…"), (ActionId.NUDGE_KEEP, "Keep")
    ]
    assert "has not been used since <!date^" in message["text"] and "(95 days)" in message["text"]


def test_a_grace_end_and_a_decided_reminder_have_no_buttons() -> None:
    ended = nudges.nudge_dm(reminder(NoticeKind.GRACE_ENDED, nudge=None, token=None))
    assert buttons(ended) == [] and "stopped working" in ended["text"] and "<@U0>'s roll" in ended["text"]
    update = nudges.decided_dm(decided("U1"))
    assert buttons(update) == [] and update["text"].startswith(":hourglass: <@U9> extended key `ci`")


@pytest.mark.parametrize(
    ("decision", "words"),
    [
        (Decision.ROLLED, "rolled key `ci`"),
        (Decision.EXTENDED, "extended key `ci`"),
        (Decision.LET_EXPIRE, "chose to let key `ci`"),
        (Decision.KEPT, "kept key `ci`"),
        (Decision.DELETED, "deleted key `ci`"),
    ],
)
def test_a_decided_reminder_says_who_did_what(decision: Decision, words: str) -> None:
    text = dm_text(decided("U1", decision=decision))
    assert text == nudges.decided_dm(decided("U1", decision=decision))["text"]
    assert "<@U9>" in text and words in text and MASKED in text


@pytest.mark.parametrize(
    "message",
    [
        nudges.nudge_dm(reminder()),
        nudges.nudge_dm(reminder(NoticeKind.STALE_NUDGE)),
        nudges.nudge_dm(reminder(NoticeKind.GRACE_ENDED, nudge=None, token=None)),
        nudges.decided_dm(decided("U1")),
        nudges.answered(NudgeOutcome(Decision.LET_EXPIRE, "payments", "ci", MASKED, AT, AT)),
        nudges.answered(NudgeOutcome(Decision.KEPT, "payments", "ci", MASKED, None, AT)),
    ],
    ids=["expiry", "stale", "grace end", "decided", "let expire reply", "keep reply"],
)
def test_every_reminder_message_is_block_kit_slack_accepts(message: dict[str, Any]) -> None:
    for block in message["blocks"]:
        assert Block.parse(block).to_dict() == block  # type: ignore[union-attr]


def test_a_reminder_names_a_real_key_by_its_masked_form_only() -> None:
    key = KeyFormat().generate()
    for kind in (NoticeKind.EXPIRY_NUDGE, NoticeKind.STALE_NUDGE, NoticeKind.GRACE_ENDED):
        note = reminder(kind, key_masked=key.masked)
        shown = str(nudges.nudge_dm(note)) + note.to_json() + repr(note)
        assert key.plaintext not in shown and key.plaintext.split("_", 2)[2][:22] not in shown
        assert TOKEN not in repr(note)


# -- the outbox worker --------------------------------------------------------------------------


class Slack:
    """``chat_postMessage`` and ``chat_update`` answering like Slack (a DM channel and a ts)."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []

    async def chat_postMessage(self, **kwargs: Any) -> dict[str, Any]:
        self.posts.append(kwargs)
        return {"ok": True, "channel": f"D{kwargs['channel']}", "ts": f"100.{len(self.posts):06d}"}

    async def chat_update(self, **kwargs: Any) -> dict[str, Any]:
        self.updates.append(kwargs)
        return {"ok": True, "channel": kwargs["channel"], "ts": kwargs["ts"]}


async def queue(store: MemoryStore, *notices: Notice) -> None:
    async with store.transaction() as tx:
        for notice in notices:
            await tx.notify(notice)


def worker(store: MemoryStore, slack: Slack, clock: FakeClock) -> OutboxWorker:
    return OutboxWorker(store, slack, clock=clock, nudge_dms=store)  # type: ignore[arg-type]


async def test_a_reminder_goes_alone_with_its_buttons_and_where_it_went_is_recorded(clock: FakeClock) -> None:
    store, slack = MemoryStore(), Slack()
    created = Notice(NoticeKind.KEY_CREATED, recipient="U1", team_id="T1", actor="U0", at=AT, project="p",
                     key_name="k", key_masked=MASKED)
    await queue(store, created, reminder(), created)
    assert await worker(store, slack, clock).drain_once() == 3
    merged, alone = slack.posts
    assert merged["text"].startswith("2 changes in keybot:") and "blocks" not in merged
    assert [b["action_id"] for b in buttons(alone)] == [ActionId.NUDGE_ROLL, ActionId.NUDGE_EXTEND, ActionId.NUDGE_LET_EXPIRE]
    assert await store.nudge_dm(job_id=7, user_id="U1") == ("DU1", "100.000002")


async def test_a_decision_updates_each_recipients_copy_in_place(clock: FakeClock) -> None:
    store, slack = MemoryStore(), Slack()
    await queue(store, reminder(to="U1"), reminder(to="U2"))
    await worker(store, slack, clock).drain_once()
    await queue(store, decided("U1"), decided("U2"))
    assert await worker(store, slack, clock).drain_once() == 2
    assert sorted((u["channel"], u["ts"]) for u in slack.updates) == [("DU1", "100.000001"), ("DU2", "100.000002")]
    assert all("blocks" in u and not buttons(u) for u in slack.updates)
    assert len(slack.posts) == 2  # no new DM


async def test_a_reminder_and_its_decision_claimed_together_go_in_order(clock: FakeClock) -> None:
    store, slack = MemoryStore(), Slack()
    await queue(store, reminder(to="U1"), decided("U1"))
    assert await worker(store, slack, clock).drain_once() == 2
    assert [u["ts"] for u in slack.updates] == [slack_ts(1)]


def slack_ts(n: int) -> str:
    return f"100.{n:06d}"


async def test_an_update_waits_for_its_reminder_and_is_dead_if_it_never_went(clock: FakeClock) -> None:
    store, slack = MemoryStore(), Slack()
    await queue(store, decided("U1", nudge=99))
    outbox = worker(store, slack, clock)
    for _ in range(UPDATE_TRIES - 1):  # the last try buries it
        assert await outbox.drain_once() == 0
        [row] = store.outbox()
        assert row.dead_at is None and row.last_error == "its reminder DM is not sent yet"
        clock.advance(hours=1)
    await outbox.drain_once()
    [row] = store.outbox()
    assert row.dead_at is not None and slack.updates == []


async def test_a_reminder_slack_refuses_for_good_is_a_dead_letter_like_any_dm(clock: FakeClock) -> None:
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web.async_slack_response import AsyncSlackResponse

    class Refusing(Slack):
        async def chat_postMessage(self, **kwargs: Any) -> dict[str, Any]:
            response = AsyncSlackResponse(client=None, http_verb="POST", api_url="x", req_args={},
                                          data={"ok": False, "error": "user_not_found"}, headers={}, status_code=200)
            raise SlackApiError("user_not_found", response)

    store = MemoryStore()
    await queue(store, reminder())
    assert await worker(store, Refusing(), clock).drain_once() == 0
    [row] = store.outbox()
    assert row.dead_at is not None and await store.nudge_dm(job_id=7, user_id="U1") is None


async def test_an_update_waits_as_long_as_its_reminder_is_still_queued_however_many_tries_that_takes(
    clock: FakeClock,
) -> None:
    """Slack refused DMs for a while (or keybot was uninstalled there): the reminder is still queued, so
    its update keeps waiting past UPDATE_TRIES, and once the reminder goes the update changes it."""
    store, slack = MemoryStore(), Slack()
    await queue(store, reminder(to="U1"), decided("U1"))
    first, _ = store.outbox()
    await store.reschedule(first.id, at=clock() + timedelta(days=1), error="HTTP 500")  # Slack down
    outbox = worker(store, slack, clock)
    for _ in range(UPDATE_TRIES * 2):
        await outbox.drain_once()
        clock.advance(minutes=30)
    _, update = store.outbox()
    assert update.dead_at is None and update.last_error == "its reminder DM is not sent yet"
    clock.advance(days=1)  # Slack is back: the reminder goes, then its update
    while await outbox.drain_once():
        pass
    assert len(slack.posts) == 1 and [u["ts"] for u in slack.updates] == [slack_ts(1)]
    assert all(row.sent_at is not None for row in store.outbox())

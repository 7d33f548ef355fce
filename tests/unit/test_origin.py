"""Where a change came from: services stamp their context's origin on every audit event and DM, the
outbox worker sends only the DMs of its own origin, and the audit log shows shell changes as such."""

from datetime import timedelta
from typing import Any

from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.domain.keys import KeyFormat
from bot.domain.model import Actor, AuditEvent
from bot.domain.notices import SHELL_ORIGIN, Notice, NoticeKind
from bot.services import Context, Keybot, build_services
from bot.services.results import AuditPage
from bot.slack import blocks
from bot.slack.outbox import OutboxWorker
from tests.fakes import CountingHasher, FakeClock, MemoryStore

OWNER = Actor(team_id="T0001", user_id="U0OWNER")


class RecordingSlack:
    """A Web API client that accepts every DM and remembers who it went to."""

    def __init__(self) -> None:
        self.sent_to: list[str] = []

    async def chat_postMessage(self, **kwargs: Any) -> AsyncSlackResponse:
        self.sent_to.append(str(kwargs["channel"]))
        return AsyncSlackResponse(
            client=None,
            http_verb="POST",
            api_url="https://slack.test/api/chat.postMessage",
            req_args={},
            data={"ok": True},
            headers={},
            status_code=200,
        )


def services(store: MemoryStore, clock: FakeClock, *, origin: str | None) -> Keybot:
    return build_services(
        Context(uow=store, clock=clock, origin=origin),
        listing=store,
        hasher=CountingHasher(),
        key_format=KeyFormat(),
    )


def worker(
    store: MemoryStore, client: RecordingSlack, clock: FakeClock, *, origin: str | None
) -> OutboxWorker:
    return OutboxWorker(store, client, clock=clock, origin=origin)  # type: ignore[arg-type]


async def every_kind_of_change(keybot: Keybot) -> None:
    """Bootstrap, a project with its default key, a key, a grant, a revoke and a delete."""
    await keybot.operators.bootstrap(team_id=OWNER.team_id, owner=OWNER.user_id, org_name="Acme")
    await keybot.projects.create(OWNER, name="payments")
    await keybot.keys.create(OWNER, project="payments", name="checkout")
    await keybot.people.grant(OWNER, user_id="UBOB", role="owner", project="payments")
    await keybot.people.revoke(OWNER, user_id="UBOB", project="payments")
    request = await keybot.keys.request_delete(OWNER, project="payments", name="checkout")
    await keybot.keys.confirm_delete(OWNER, token=request.token)


async def test_every_audit_event_and_dm_of_a_shell_context_is_marked_as_made_in_the_shell(
    store: MemoryStore, clock: FakeClock
) -> None:
    await every_kind_of_change(services(store, clock, origin=SHELL_ORIGIN))
    events = store.audit_events()
    assert {e.action for e in events} == {
        "role granted",
        "project created",
        "key created",
        "role revoked",
        "key deleted",
    }
    assert [e.origin for e in events] == [SHELL_ORIGIN] * len(events)
    rows = store.outbox()
    assert len(rows) >= 2  # UBOB's grant and revoke (the actor gets no DM about their own changes)
    assert [(r.origin, r.notice.origin if r.notice else None) for r in rows] == [
        (SHELL_ORIGIN, SHELL_ORIGIN)
    ] * len(rows)


async def test_audit_events_and_dms_of_slacks_context_carry_no_origin(
    store: MemoryStore, clock: FakeClock
) -> None:
    await every_kind_of_change(services(store, clock, origin=None))
    assert store.audit_events() and all(e.origin is None for e in store.audit_events())
    rows = store.outbox()
    assert rows and all(r.origin is None and r.notice and r.notice.origin is None for r in rows)


async def test_a_shell_worker_sends_only_the_shells_dms_and_leaves_the_servers_unclaimed(
    store: MemoryStore, clock: FakeClock
) -> None:
    await services(store, clock, origin=None).operators.bootstrap(
        team_id=OWNER.team_id, owner=OWNER.user_id, org_name="Acme"
    )
    await services(store, clock, origin=None).people.grant(OWNER, user_id="USLACK", role="member")
    await services(store, clock, origin=SHELL_ORIGIN).people.grant(OWNER, user_id="USHELL", role="member")
    slack_row, shell_row = store.outbox()
    client = RecordingSlack()

    assert await worker(store, client, clock, origin=SHELL_ORIGIN).drain_once() == 1
    assert client.sent_to == ["USHELL"]
    assert shell_row.sent_at == clock()
    assert (slack_row.sent_at, slack_row.claimed_until, slack_row.attempts) == (None, None, 0)
    clock.advance(timedelta(hours=1))
    assert await worker(store, client, clock, origin=SHELL_ORIGIN).drain_once() == 0

    assert await worker(store, client, clock, origin=None).drain_once() == 1
    assert client.sent_to == ["USHELL", "USLACK"]
    assert slack_row.sent_at == clock()


async def test_the_fake_outbox_claims_by_origin_like_the_real_one(
    store: MemoryStore, clock: FakeClock
) -> None:
    async with store.transaction() as tx:
        for n, origin in enumerate([None, SHELL_ORIGIN, None, SHELL_ORIGIN]):
            await tx.notify(
                Notice(
                    NoticeKind.ROLE_GRANTED,
                    recipient=f"U{n}",
                    team_id="T1",
                    actor="U0",
                    at=clock(),
                    org="Acme",
                    role="member",
                    origin=origin,
                )
            )
    shell = await store.claim_notifications(limit=10, now=clock(), lease_seconds=60, origin=SHELL_ORIGIN)
    server = await store.claim_notifications(limit=10, now=clock(), lease_seconds=60)
    assert [n.user_id for n in shell] == ["U1", "U3"]
    assert [n.user_id for n in server] == ["U0", "U2"]


def _event(origin: str | None) -> AuditEvent:
    return AuditEvent(
        id=1,
        org_id=1,
        project_id=1,
        actor="UANA",
        action="key created",
        at=FakeClock().now,
        key_name="checkout",
        key_masked="kb_AbCdEfGhIj_…wxyz",
        origin=origin,
    )


def test_the_audit_log_says_which_changes_were_made_in_keybot_shell() -> None:
    shell = blocks.audit_page(AuditPage("p", events=[_event(SHELL_ORIGIN)], has_older=False), number=1)
    slack = blocks.audit_page(AuditPage("p", events=[_event(None)], has_older=False), number=1)
    shell_line, slack_line = shell["blocks"][-1]["text"]["text"], slack["blocks"][-1]["text"]["text"]
    assert shell_line.endswith("<@UANA> created key `checkout` (`kb_AbCdEfGhIj_…wxyz`) (in keybot shell)")
    assert slack_line.endswith("<@UANA> created key `checkout` (`kb_AbCdEfGhIj_…wxyz`)")

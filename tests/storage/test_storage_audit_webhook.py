"""The audit webhook's deliveries are outbox rows written in the audit event's own transaction, on SQLite
and PostgreSQL: one per committed event, none for a rolled-back one, claimed only by the webhook worker."""

import json
from datetime import timedelta

import pytest

from bot.domain.model import AUDIT_WEBHOOK, AuditEvent
from storage import SqlStore
from tests.storage.helpers import OWNER, T0, World


def _event(world: World, n: int) -> AuditEvent:
    return AuditEvent(
        org_id=world.org.id,
        project_id=world.project.id,
        actor=OWNER,
        action="key created",
        at=T0 + timedelta(seconds=n),
        key_name=f"k{n}",
        key_masked="kb_x_…a81Z",
    )


class Boom(Exception):
    pass


async def test_each_committed_audit_event_queues_one_delivery_whose_body_is_its_export_line(
    store: SqlStore, world: World
) -> None:
    store.audit_webhook = True
    async with store.transaction() as tx:
        await tx.add_audit(_event(world, 1))
        await tx.add_audit(_event(world, 2))
    rows = await store.claim_notifications(limit=10, now=T0 + timedelta(minutes=1), lease_seconds=60, origin=AUDIT_WEBHOOK)
    bodies = [json.loads(row.text) for row in rows]
    assert [(b["action"], b["key_name"], b["project"], b["team_id"], b["actor"]) for b in bodies] == [
        ("key created", "k1", "Web", world.org.team_id, OWNER),
        ("key created", "k2", "Web", world.org.team_id, OWNER),
    ]
    assert bodies[0]["id"] < bodies[1]["id"] and bodies[0]["at"] == (T0 + timedelta(seconds=1)).isoformat()
    assert [row.user_id for row in rows] == [AUDIT_WEBHOOK, AUDIT_WEBHOOK]


async def test_a_rolled_back_audit_event_queues_no_delivery(store: SqlStore, world: World) -> None:
    store.audit_webhook = True
    with pytest.raises(Boom):
        async with store.transaction() as tx:
            await tx.add_audit(_event(world, 1))
            raise Boom
    assert await store.pending_notifications() == 0


async def test_without_the_webhook_no_delivery_is_queued(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        await tx.add_audit(_event(world, 1))
    assert await store.pending_notifications() == 0


async def test_slacks_and_the_shells_outbox_workers_never_claim_a_delivery(store: SqlStore, world: World) -> None:
    store.audit_webhook = True
    async with store.transaction() as tx:
        await tx.add_audit(_event(world, 1))
    later = T0 + timedelta(minutes=1)
    assert await store.claim_notifications(limit=10, now=later, lease_seconds=60) == []
    assert await store.claim_notifications(limit=10, now=later, lease_seconds=60, origin="shell") == []
    assert await store.oldest_pending_notification() == T0 + timedelta(seconds=1)
    [listed] = await store.unsent_notifications(dead=False, limit=10)  # as `keybot outbox` shows it
    assert (listed.user_id, listed.kind) == (AUDIT_WEBHOOK, AUDIT_WEBHOOK)
    [row] = await store.claim_notifications(limit=10, now=later, lease_seconds=60, origin=AUDIT_WEBHOOK)
    await store.mark_sent(row.id, at=later)
    assert await store.oldest_pending_notification() is None


async def test_holding_the_deliveries_moves_every_waiting_one_to_the_later_time_and_no_other(
    store: SqlStore, world: World
) -> None:
    store.audit_webhook = True
    async with store.transaction() as tx:
        for n in range(1, 5):
            await tx.add_audit(_event(world, n))
    now, later = T0 + timedelta(minutes=1), T0 + timedelta(minutes=10)
    first, *_ = await store.claim_notifications(limit=1, now=now, lease_seconds=60, origin=AUDIT_WEBHOOK)
    await store.mark_sent(first.id, at=now)  # delivered: stays delivered
    [second] = await store.claim_notifications(limit=1, now=now, lease_seconds=60, origin=AUDIT_WEBHOOK)
    await store.reschedule(second.id, at=T0 + timedelta(hours=1), error="HTTP 503")  # already due after it
    assert await store.hold_notifications(origin=AUDIT_WEBHOOK, at=later, error="after an earlier event") == 2
    assert await store.claim_notifications(limit=10, now=later - timedelta(seconds=1), lease_seconds=60, origin=AUDIT_WEBHOOK) == []
    held = await store.claim_notifications(limit=10, now=later, lease_seconds=60, origin=AUDIT_WEBHOOK)
    assert [json.loads(r.text)["key_name"] for r in held] == ["k3", "k4"]
    assert await store.hold_notifications(origin="shell", at=later + timedelta(hours=2), error="x") == 0

"""The audit webhook over the wire: commands sent to a real keybot, every audit event POSTed to a local
aiohttp receiver, signed as README's *Audit webhook* says (its receiver recipe is run here on the real
deliveries), retried through a receiver outage without loss or duplicates, and a refused delivery kept
as a dead letter until an operator sends it again."""

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.audit_webhook import AuditWebhook
from bot.domain.model import AUDIT_WEBHOOK
from bot.shell.fakeslack import FakeSlack
from tests.e2e.conftest import Harness
from tests.e2e.test_metrics import scrape
from tests.e2e.test_secret_never_leaks import KEY_RE, leaks
from tests.procs import keybot_env, running_keybot

SECRET = "s3cr3t-" + "x" * 40
README = Path(__file__).resolve().parents[2] / "README.md"


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(self.body)
        return event


@dataclass
class Receiver:
    """A local webhook receiver: records every request; answers the queued statuses first, then 200."""

    port: int = 0
    answers: list[int] = field(default_factory=list)
    got: list[Delivery] = field(default_factory=list)
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/keybot?token=receiver-token"

    def accepted(self) -> list[dict[str, Any]]:
        """The events answered 2xx, in arrival order."""
        return [d.event for d in self.got if d.headers.get("X-Answered") == "200"]

    async def start(self) -> None:
        async def hook(request: web.Request) -> web.Response:
            status = self.answers.pop(0) if self.answers else 200
            self.got.append(Delivery({**request.headers, "X-Answered": str(status)}, await request.read()))
            return web.Response(status=status)

        app = web.Application()
        app.router.add_post("/hooks/keybot", hook)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture
def e2e_overrides(receiver: Receiver) -> dict[str, object]:
    return {"audit_webhook_url": receiver.url, "audit_webhook_secret": SECRET}


@pytest.fixture
async def webhook(harness: Harness) -> AsyncIterator[AuditWebhook]:
    """The running webhook worker (``keybot serve`` starts it; the harness starts only the DM worker)."""
    worker = harness.runtime.webhook
    assert worker is not None
    worker.start()
    yield worker


def readme_recipe() -> Any:
    """``keybot_signature_ok`` exactly as README's *Audit webhook* section prints it."""
    section = README.read_text().split("### Audit webhook", 1)[1].split("\n### ", 1)[0]
    [code] = re.findall(r"```python\n(.*?)```", section, re.S)
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # the documented recipe, run as written
    return namespace["keybot_signature_ok"]


async def delivered(receiver: Receiver, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    async with asyncio.timeout(timeout):
        while len(receiver.accepted()) < count:
            await asyncio.sleep(0.02)
    return receiver.accepted()


async def test_every_audit_event_arrives_signed_and_the_readme_recipe_verifies_it(
    harness: Harness, receiver: Receiver, webhook: AuditWebhook
) -> None:
    reply = await harness.as_owner("project create payments")
    [key] = set(KEY_RE.findall(reply.text))
    await harness.as_owner("disable payments default")
    events = await delivered(receiver, 4)

    assert [(e["action"], e["project"]) for e in events] == [
        ("role granted", None),  # the harness's bootstrap, queued before the worker started
        ("project created", "payments"),
        ("key created", "payments"),
        ("key disabled", "payments"),
    ]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    ok = readme_recipe()
    for delivery in receiver.got:
        assert delivery.headers["Content-Type"] == "application/json"
        assert delivery.headers["X-Keybot-Event-Id"] == str(delivery.event["id"])
        assert ok(SECRET, delivery.headers, delivery.body)
        assert not ok("another-secret-" + "y" * 40, delivery.headers, delivery.body)
        assert not ok(SECRET, delivery.headers, delivery.body.replace(b'"id":', b'"id":1'))  # tampered
        sent_at = int(delivery.headers["X-Keybot-Timestamp"])
        assert abs(sent_at - time.time()) < 300
        assert not ok(SECRET, delivery.headers, delivery.body, now=sent_at + 301)  # a replay, later
        replayed = {**delivery.headers, "X-Keybot-Timestamp": str(sent_at + 600)}
        assert not ok(SECRET, replayed, delivery.body, now=sent_at + 600)  # a new timestamp breaks the signature
    wire = json.dumps([{"headers": d.headers, "body": d.body.decode()} for d in receiver.got])
    assert leaks({"webhook deliveries": wire}, secrets=[key, SECRET]) == []
    assert "receiver-token" not in wire


async def test_a_receiver_outage_delays_events_but_loses_or_repeats_none(
    harness: Harness, receiver: Receiver, webhook: AuditWebhook, caplog: pytest.LogCaptureFixture
) -> None:
    await harness.as_owner("project create payments")
    await delivered(receiver, 3)
    await receiver.stop()  # down: connections refused
    for name in ("a", "b", "c"):
        await harness.as_owner(f"create payments {name}")
    async with asyncio.timeout(10):
        while webhook.retries < 2:
            await asyncio.sleep(0.02)
    receiver.answers = [503, 500, 429]  # back, but failing for three more requests
    await receiver.start()
    events = await delivered(receiver, 6)

    created = [e["key_name"] for e in events if e["action"] == "key created"]
    assert created == ["default", "a", "b", "c"]  # in order, each once
    assert len({e["id"] for e in events}) == len(events) == 6
    assert [d.headers["X-Answered"] for d in receiver.got[3:6]] == ["503", "500", "429"]
    assert await harness.runtime.store.pending_notifications() == 0
    samples = await scrape(harness)
    assert samples["keybot_audit_webhook_deliveries_total"][()] == 6
    assert samples["keybot_audit_webhook_retries_total"][()] >= 5
    assert samples["keybot_outbox_oldest_pending_seconds"][()] == 0
    assert receiver.url not in caplog.text and SECRET not in caplog.text


async def test_after_a_failure_no_event_overtakes_an_earlier_one_beyond_the_first_batch(
    harness: Harness, receiver: Receiver
) -> None:
    """More events queued than one claim takes (20): a failed first delivery holds every one behind it,
    not only its batch's."""
    for n in range(15):  # with the bootstrap's event: 31 events, queued before the worker starts
        await harness.as_owner(f"project create p{n}")
    queued = await harness.runtime.store.pending_notifications()
    assert queued > 20
    receiver.answers = [503]
    worker = harness.runtime.webhook
    assert worker is not None
    worker.start()
    events = await delivered(receiver, queued)
    assert [d.headers["X-Answered"] for d in receiver.got[:1]] == ["503"]
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == queued


async def test_a_delivery_the_receiver_refuses_is_a_dead_letter_until_sent_again(
    harness: Harness, receiver: Receiver, webhook: AuditWebhook
) -> None:
    receiver.answers = [401]  # to the first delivery: the harness's bootstrap, "role granted"
    await harness.as_owner("project create payments")
    events = await delivered(receiver, 2)
    assert [e["action"] for e in events] == ["project created", "key created"]  # the next events still went
    [dead] = await harness.runtime.store.unsent_notifications(dead=True, limit=10)
    assert dead.user_id == AUDIT_WEBHOOK and dead.last_error == "HTTP 401"
    assert webhook.dead_letters == 1

    assert await harness.runtime.store.revive_notifications([dead.id], at=harness.clock()) == [dead.id]
    webhook.wake()
    events = await delivered(receiver, 3)
    assert [e["action"] for e in events] == ["project created", "key created", "role granted"]


async def test_the_oldest_pending_delivery_age_shows_on_metrics_during_an_outage(
    harness: Harness, receiver: Receiver, webhook: AuditWebhook
) -> None:
    await receiver.stop()
    await harness.as_owner("project create payments")
    harness.clock.shift(timedelta(minutes=5))
    samples = await scrape(harness)
    assert samples["keybot_outbox_oldest_pending_seconds"][()] >= 300
    assert samples["keybot_outbox_pending"][()] >= 3  # the three audit events, at least


async def test_keybot_serve_delivers_what_keybot_bootstrap_audited(
    tmp_path: Path, receiver: Receiver, slack: FakeSlack
) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'keybot.db'}"
    webhook_env = {"KEYBOT_AUDIT_WEBHOOK_URL": receiver.url, "KEYBOT_AUDIT_WEBHOOK_SECRET": SECRET}
    env = keybot_env(database_url=db, slack_api_url=slack.api_url, port=0, **webhook_env)
    bootstrap = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot.cli", "bootstrap", "--team-id", "T0001", "--owner", "UOWNER01", "--org", "Acme"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert bootstrap.returncode == 0, bootstrap.stderr
    assert receiver.got == []  # queued, not sent: only `keybot serve` sends
    async with running_keybot(database_url=db, slack_api_url=slack.api_url, log_path=tmp_path / "kb.log", **webhook_env) as kb:
        [event] = await delivered(receiver, 1, timeout=30)
        code, log = await kb.stop()
    assert (event["action"], event["target_user"], event["actor"]) == ("role granted", "UOWNER01", "keybot bootstrap")
    assert readme_recipe()(SECRET, receiver.got[0].headers, receiver.got[0].body)
    assert code == 0 and SECRET not in log and "receiver-token" not in log

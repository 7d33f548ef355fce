"""A DM Slack refuses for good (a made-up user) becomes a dead letter after one attempt, is never
retried on its own, shows on /healthz and in `keybot outbox`, and `keybot outbox retry` sends it."""

import asyncio
import os
import sys
from datetime import timedelta
from typing import Any

import pytest

from bot.shell.fakeslack import SlackError
from tests.e2e.conftest import Harness
from tests.procs import ROOT

GHOST = "UGHOST01"
REAL = "UREAL001"


async def keybot_cli(harness: Harness, *args: str) -> tuple[int, str, str]:
    """Run ``keybot <args>`` as its own process on the harness's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "KEYBOT_", "DATABASE_URL"))}
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{harness.db_path}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def healthz(harness: Harness) -> dict[str, Any]:
    async with harness.session.get(f"{harness.base_url}/healthz") as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


async def until_health(harness: Harness, **expected: int) -> None:
    async with asyncio.timeout(10):
        while {k: (await healthz(harness))[k] for k in expected} != expected:
            await asyncio.sleep(0.02)


async def test_a_dm_to_a_made_up_user_is_dead_after_one_attempt_and_keybot_outbox_retry_sends_it(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    slack = harness.slack
    slack.fail_next("chat.postMessage", SlackError("user_not_found"))
    await harness.as_owner(f"grant <@{GHOST}> member")
    await slack.wait_for(lambda s: [c for c in s.calls_to("chat.postMessage") if c.outcome == "slack_error"])
    await until_health(harness, outbox_pending=0, outbox_dead=1)

    # A day later the worker has sent newer DMs, and never tried the dead one again.
    harness.clock.shift(timedelta(days=1))
    await harness.as_owner(f"grant <@{REAL}> member")
    await slack.wait_for(lambda s: s.dms_to(REAL))
    ghost_calls = [c for c in slack.calls_to("chat.postMessage") if c.args.get("channel") == GHOST]
    assert [c.outcome for c in ghost_calls] == ["slack_error"]
    [dead] = await harness.runtime.store.unsent_notifications(dead=True, limit=10)
    assert (dead.user_id, dead.attempts, dead.last_error) == (GHOST, 1, "200 user_not_found")

    code, listing, err = await keybot_cli(harness, "outbox")
    assert code == 0, err
    assert "Dead DMs: 1" in listing and "Pending DMs: none" in listing
    [line] = [line for line in listing.splitlines() if GHOST in line]
    assert str(dead.id) in line and "role granted" in line and "user_not_found" in line

    code, out, err = await keybot_cli(harness, "outbox", "retry", str(dead.id))
    assert code == 0, err
    assert f"Queued again: DM {dead.id}" in out
    [delivered] = await slack.wait_for(lambda s: s.dms_to(GHOST), timeout=10)
    await until_health(harness, outbox_pending=0, outbox_dead=0)
    assert (await keybot_cli(harness, "outbox"))[1].splitlines()[:2] == ["Pending DMs: none", "Dead DMs: none"]

    dead_lines = [r.getMessage() for r in caplog.records if "is dead" in r.getMessage()]
    assert len(dead_lines) == 1 and f"DM {dead.id} to {GHOST}" in dead_lines[0]
    text = str(delivered.args["text"])
    assert text and text not in caplog.text and text not in listing


async def test_a_second_retry_of_a_dm_already_sent_changes_nothing_and_says_so(harness: Harness) -> None:
    harness.slack.fail_next("chat.postMessage", SlackError("channel_not_found"))
    await harness.as_owner(f"grant <@{GHOST}> member")
    await until_health(harness, outbox_pending=0, outbox_dead=1)
    [dead] = await harness.runtime.store.unsent_notifications(dead=True, limit=10)
    code, out, _ = await keybot_cli(harness, "outbox", "retry", "--all-dead")
    assert code == 0 and f"Queued again: DM {dead.id}" in out
    await harness.slack.wait_for(lambda s: s.dms_to(GHOST), timeout=10)
    await harness.outbox_drained()
    code, out, _ = await keybot_cli(harness, "outbox", "retry", str(dead.id))
    assert code == 1
    assert f"No dead DM with id {dead.id}" in out
    assert len(harness.slack.dms_to(GHOST)) == 1

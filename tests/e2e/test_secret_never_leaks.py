"""The plaintext of a key exists only in the one ephemeral reply to its creator: not in the database
file (WAL included), not in any log line at any level, not in any Web API call or DM."""

import json
import logging
import re

import pytest

from bot.slack.codec import ActionId
from tests.e2e.conftest import OWNER, Harness

KEY_RE = re.compile(r"kb_[A-Za-z0-9]{10}_[A-Za-z0-9]{28}")


async def test_secrets_are_nowhere_but_their_ephemeral_reply(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    replies = [await harness.as_owner("project create payments")]
    replies += [await harness.as_owner(f"create payments key{i}") for i in range(5)]
    secrets = [m for r in replies for m in set(KEY_RE.findall(r.text))]
    assert len(secrets) == 6
    for secret in secrets:
        await harness.session.post(f"{harness.base_url}/v1/keys/verify", json={"key": secret})
    ask = await harness.as_owner("delete payments key0")
    await harness.driver.click(OWNER, ask.button(ActionId.DELETE_CONFIRM))
    await harness.as_owner("list payments")
    await harness.as_owner("audit payments")
    await harness.outbox_drained()

    stored = b"".join(
        path.read_bytes() for path in harness.db_path.parent.iterdir() if path.name.startswith("keybot.db")
    )
    slack_saw = json.dumps([c.args for c in harness.slack.calls])
    later_messages = json.dumps([r.body for r in harness.slack.responses])
    assert "created key" in slack_saw  # the DMs were really sent and scanned
    assert len(stored) > 0
    places = {"database": stored.decode("latin-1"), "logs": caplog.text, "web api": slack_saw,
              "later messages": later_messages}
    # Report where a secret leaked, never the secret itself (test output is scanned too).
    leaks = [(n, where) for n, secret in enumerate(secrets) for where, blob in places.items()
             if secret in blob or secret[-28:] in blob]
    assert leaks == []
    assert [sum(json.dumps(r.message).count(s) for r in replies) for s in secrets] == [1] * len(secrets)

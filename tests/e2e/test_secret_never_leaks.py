"""The plaintext of a key exists only in the one ephemeral reply to its creator: not in the database
file (WAL included), not in any log line at any level, not in any Web API call or DM. Nor do its
argon2 hash or a pending deletion's token ever reach a log line, a DM or a later message, even with
DEBUG logging on (database drivers log every statement's parameters at DEBUG)."""

import json
import logging
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.domain.hashing import HashParams
from bot.runtime import bootstrap
from bot.settings import Settings
from bot.shell.driver import Reply, SlackDriver
from bot.shell.fakeslack import FakeSlack
from bot.shell.wire import block_actions_body, event_body
from bot.slack import home, modals
from bot.slack.codec import ActionId
from tests.e2e.conftest import OWNER, TEAM, Harness
from tests.e2e.test_home_and_modals import opened_view, post, shortcut_modal, submit, values
from tests.procs import SIGNING_SECRET, running_keybot

KEY_RE = re.compile(r"kb_[A-Za-z0-9]{10}_[A-Za-z0-9]{28}")
SECOND_OWNER = "UOWNER02"
ARGON2 = "$argon2"  # the start of every argon2 hash string, whatever its variant and parameters


def stored_hashes(db_path: Path) -> list[str]:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        hashes = [
            row[0]
            for row in conn.execute("SELECT secret_hash FROM api_keys UNION ALL SELECT secret_hash FROM retired_secrets")
        ]
    assert hashes and all(h.startswith("$argon2id$") for h in hashes), "no hashes to look for"
    return hashes


def leaks(
    places: dict[str, str], *, secrets: list[str], hashes: Sequence[str] = (), tokens: Sequence[str] = ()
) -> list[str]:
    """Where each secret was found, named by kind and number, never by value (test output is scanned
    too). With ``hashes``, any argon2 string at all is a leak."""
    found = []
    for where, blob in places.items():
        found += [f"key {n} in {where}" for n, s in enumerate(secrets) if s in blob or s[-28:] in blob]
        found += [f"hash {n} in {where}" for n, h in enumerate(hashes) if h in blob or h.rsplit("$", 1)[-1] in blob]
        found += [f"token {n} in {where}" for n, t in enumerate(tokens) if t in blob]
        found += [f"an argon2 string in {where}"] if hashes and ARGON2 in blob else []
    return found


async def test_secrets_are_nowhere_but_their_ephemeral_reply(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await harness.as_owner("grant <@UOWNER02> owner")  # someone to DM: the actor gets no DM of its own change
    replies = [await harness.as_owner("project create payments")]
    replies += [await harness.as_owner(f"create payments key{i}") for i in range(5)]
    replies += [await harness.as_owner("roll payments key2"), await harness.as_owner("roll payments key3 grace 0")]
    secrets = [m for r in replies for m in set(KEY_RE.findall(r.text))]
    assert len(secrets) == 8  # two of them rolled: their old secrets and their new ones
    for secret in secrets:
        await harness.session.post(f"{harness.base_url}/v1/keys/verify", json={"key": secret})
    ask = await harness.as_owner("delete payments key0")
    await harness.driver.click(OWNER, ask.button(ActionId.DELETE_CONFIRM))
    cancelled = await harness.as_owner("delete payments key1")
    await harness.driver.click(OWNER, cancelled.button(ActionId.DELETE_CANCEL))
    tokens = [ask.button(ActionId.DELETE_CONFIRM)["value"], cancelled.button(ActionId.DELETE_CANCEL)["value"]]
    await harness.as_owner("list payments")
    await harness.as_owner("audit payments")
    await harness.outbox_drained()

    stored = b"".join(
        path.read_bytes() for path in harness.db_path.parent.iterdir() if path.name.startswith("keybot.db")
    )
    slack_saw = json.dumps([c.args for c in harness.slack.calls])
    later_messages = json.dumps([r.body for r in harness.slack.responses])
    assert "created key" in slack_saw and "rolled key" in slack_saw  # the DMs were really sent and scanned
    assert len(stored) > 0
    places = {"logs": caplog.text, "web api": slack_saw, "later messages": later_messages}
    assert leaks({"database": stored.decode("latin-1"), **places}, secrets=secrets) == []
    hashes = stored_hashes(harness.db_path)
    assert leaks(places, secrets=secrets, hashes=hashes, tokens=tokens) == []
    assert [sum(json.dumps(r.message).count(s) for r in replies) for s in secrets] == [1] * len(secrets)


async def test_secrets_made_in_modals_are_nowhere_but_the_modal_that_shows_them(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    h = harness
    await h.as_owner(f"grant <@{SECOND_OWNER}> owner")
    await h.as_owner("project create payments")
    for user in (OWNER, SECOND_OWNER):  # both watch their Home: every refresh is published and scanned
        await post(h, event_body(event={"type": "app_home_opened", "user": user, "tab": "home"}, team_id=TEAM), json_body=True)
    answers = []
    for n in range(3):
        view = await shortcut_modal(h)
        answers.append(await submit(h, OWNER, view, values(project="payments", name=f"modal{n}", note="a note")))
    home_roll = block_actions_body(
        user_id=OWNER, team_id=TEAM, action_id=home.HOME_ROLL, value=home.key_value("payments", "modal0"),
        response_url="", container={"type": "view", "view_id": "VHOME"},
    )
    before = len(h.slack.calls_to("views.open"))
    await post(h, home_roll)
    roll_view = await opened_view(h, before)
    grace = {modals.GRACE: {modals.GRACE: {"type": "static_select", "selected_option": {"value": "1h"}}}}
    answers.append(await submit(h, OWNER, roll_view, grace))
    secrets = [s for a in answers for s in set(KEY_RE.findall(json.dumps(a)))]
    assert len(secrets) == 4 and all(a["response_action"] == "update" for a in answers)
    for secret in secrets:
        await h.session.post(f"{h.base_url}/v1/keys/verify", json={"key": secret})
    await h.outbox_drained()
    await h.runtime.home.settle()

    stored = b"".join(path.read_bytes() for path in h.db_path.parent.iterdir() if path.name.startswith("keybot.db"))
    slack_saw = json.dumps([c.args for c in h.slack.calls])
    assert "views.publish" in {c.method for c in h.slack.calls} and "created key" in slack_saw  # scanned for real
    places = {"logs": caplog.text, "web api": slack_saw, "later messages": json.dumps([r.body for r in h.slack.responses])}
    assert leaks({"database": stored.decode("latin-1"), **places}, secrets=secrets) == []
    assert leaks(places, secrets=secrets, hashes=stored_hashes(h.db_path)) == []
    assert [sum(json.dumps(a).count(s) for a in answers) for s in secrets] == [1] * len(secrets)


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_a_keybot_process_logging_at_debug_logs_no_key_hash_or_token(
    tmp_path: Path, slack: FakeSlack, log_format: str
) -> None:
    db_path = tmp_path / "keybot.db"
    url = f"sqlite+aiosqlite:///{db_path}"
    settings = Settings(database_url=url, hash_params=HashParams.cheapest())
    for owner in (OWNER, SECOND_OWNER):  # SECOND_OWNER is DMed about OWNER's changes: DM sends get logged too
        await bootstrap(settings, team_id=TEAM, owner=owner, org="Acme")
    async with running_keybot(
        database_url=url, slack_api_url=slack.api_url, log_path=tmp_path / "keybot.log", KEYBOT_LOG_LEVEL="DEBUG",
        KEYBOT_LOG_FORMAT=log_format,
    ) as kb, aiohttp.ClientSession() as session:
        driver = SlackDriver(
            events_url=kb.events_url, signing_secret=SIGNING_SECRET, slack=slack, team_id=TEAM, session=session
        )
        replies: list[Reply] = [await driver.command(OWNER, "project create web")]
        replies += [await driver.command(OWNER, f"create web key{i}") for i in range(3)]
        replies += [await driver.command(OWNER, "roll web key2")]
        secrets = [m for r in replies for m in set(KEY_RE.findall(r.text))]
        assert len(secrets) == 5, [r.text for r in replies]
        for secret in secrets:
            assert (await kb.verify(session, secret))["valid"] is True
        ask = await driver.command(OWNER, "delete web key0")
        await driver.click(OWNER, ask.button(ActionId.DELETE_CONFIRM))
        cancelled = await driver.command(OWNER, "delete web key1")
        await driver.click(OWNER, cancelled.button(ActionId.DELETE_CANCEL))
        tokens = [ask.button(ActionId.DELETE_CONFIRM)["value"], cancelled.button(ActionId.DELETE_CANCEL)["value"]]
        await driver.command(OWNER, "audit web")
        await slack.wait_for(lambda s: "deleted key" in json.dumps([c.args for c in s.dms_to(SECOND_OWNER)]))
        code, log = await kb.stop()

    assert code == 0, log
    if log_format == "json":  # every line one JSON object; the scan below reads them as written
        lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        assert "DEBUG" in {line["level"] for line in lines}
    else:
        assert " DEBUG " in log  # DEBUG logging was really on
    assert "created key" in json.dumps([c.args for c in slack.dms_to(SECOND_OWNER)])  # DMs went out meanwhile
    hashes = stored_hashes(db_path)
    assert leaks({"the log": log}, secrets=secrets, hashes=hashes, tokens=tokens) == []


async def test_a_requested_key_is_nowhere_but_the_reply_to_its_reveal_click(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Access requests (DESIGN.md §5.4): the key made at the *Reveal key* click appears in that one reply
    only — not in the request's DMs or their updates, the database, the logs or any other message."""
    caplog.set_level(logging.DEBUG)
    requester = "UWRITER1"
    for text in ("grant <@UOWNER02> owner", "project create payments", f"grant <@{requester}> read-write payments"):
        await harness.as_owner(text)
    harness.runtime.jobs.start()
    await harness.cmd(requester, "request payments expires 30d for the importer")
    await harness.slack.wait_for(lambda s: any(_has(c, ActionId.REQUEST_APPROVE) for c in s.dms_to(SECOND_OWNER)))
    ask = next(c for c in harness.slack.dms_to(SECOND_OWNER) if _has(c, ActionId.REQUEST_APPROVE))
    await harness.driver.click(SECOND_OWNER, _button(ask, ActionId.REQUEST_APPROVE), dm=_in_dm(ask))
    await harness.slack.wait_for(lambda s: any(_has(c, ActionId.REQUEST_REVEAL) for c in s.dms_to(requester)))
    dm = next(c for c in harness.slack.dms_to(requester) if _has(c, ActionId.REQUEST_REVEAL))
    revealed = await harness.driver.click(requester, _button(dm, ActionId.REQUEST_REVEAL), dm=_in_dm(dm))
    again = await harness.driver.click(requester, _button(dm, ActionId.REQUEST_REVEAL), dm=_in_dm(dm))
    [secret] = set(KEY_RE.findall(revealed.text))
    await harness.cmd(requester, "requests")
    await harness.as_owner("show payments request-1")
    await harness.as_owner("audit payments")
    await harness.outbox_drained()
    await harness.slack.wait_for(lambda s: bool(s.updates_of(dm.answer["channel"], dm.answer["ts"])))

    stored = b"".join(
        path.read_bytes() for path in harness.db_path.parent.iterdir() if path.name.startswith("keybot.db")
    )
    slack_saw = json.dumps([c.args for c in harness.slack.calls])
    later = json.dumps([r.body for r in harness.slack.responses if r.body != revealed.message])
    assert "asks for a key" in slack_saw and "You revealed your key" in slack_saw  # the DMs were scanned
    assert "already revealed" in again.text
    places = {"logs": caplog.text, "web api": slack_saw, "later messages": later}
    assert leaks({"database": stored.decode("latin-1"), **places}, secrets=[secret]) == []
    assert leaks(places, secrets=[secret], hashes=stored_hashes(harness.db_path)) == []
    assert json.dumps(revealed.message).count(secret) == 1


def _has(call: Any, action: ActionId) -> bool:
    return action.value in json.dumps(call.args.get("blocks") or [])


def _button(call: Any, action: ActionId) -> dict[str, Any]:
    return next(
        e for b in call.args["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == action.value
    )


def _in_dm(call: Any) -> tuple[str, dict[str, Any]]:
    message = {"type": "message", "ts": call.answer["ts"], "text": call.args["text"], "blocks": call.args["blocks"]}
    return call.answer["channel"], message

"""The operator's view of the outbox and of retention, as real processes: `keybot outbox`,
`keybot outbox retry`, the retention settings, and the purge a starting `keybot serve` runs."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.domain.model import AuditEvent, PendingDeletion
from bot.domain.notices import Notice, NoticeKind
from storage import SqlStore, open_store
from storage.tables import audit_events, outbox, pending_deletions

KEYBOT = [sys.executable, "-m", "bot.cli"]
TEAM = "T0001"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "KEYBOT_", "DATABASE_URL"))}
    env.update(DATABASE_URL=_url(tmp_path), KEYBOT_ARGON2_PROFILE="cheapest")
    env.update(extra)
    return env


def _url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'kb.db'}"


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KEYBOT, *args], env=env, capture_output=True, text=True, timeout=60)


def _notice(user: str, at: datetime) -> Notice:
    return Notice(NoticeKind.ROLE_GRANTED, recipient=user, team_id=TEAM, actor="U0OWNER", at=at, org="Acme Secret Org",
                  role="member")


@dataclass(frozen=True)
class Seeded:
    ids: dict[str, int]  # recipient → outbox row id


async def _seed(url: str, *, sent: dict[str, timedelta] | None = None, dead: dict[str, timedelta] | None = None,
                pending: tuple[str, ...] = ()) -> Seeded:
    """DMs to each user in ``sent`` (sent that long ago), ``dead`` (dead that long ago) and ``pending``."""
    now = datetime.now(UTC)
    sent, dead = sent or {}, dead or {}
    store = await open_store(url)
    try:
        users = [*sent, *dead, *pending]
        async with store.transaction() as tx:
            for user in users:
                await tx.notify(_notice(user, now - timedelta(days=400)))
        claimed = await store.claim_notifications(limit=len(users), now=now, lease_seconds=60)
        ids = {n.user_id: n.id for n in claimed}
        for user, ago in sent.items():
            await store.mark_sent(ids[user], at=now - ago)
        for user, ago in dead.items():
            await store.bury(ids[user], at=now - ago, error="200 user_not_found")
        for user in pending:
            await store.reschedule(ids[user], at=now + timedelta(hours=1), error="503 ")
        return Seeded(ids)
    finally:
        await store.close()


async def _users(store: SqlStore) -> list[str]:
    async with store.engine.connect() as conn:
        return list((await conn.execute(select(outbox.c.user_id).order_by(outbox.c.id))).scalars())


# -- keybot outbox --------------------------------------------------------------------------------


def test_outbox_on_an_empty_database_says_there_is_nothing(tmp_path: Path) -> None:
    result = _run(["outbox"], _env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Pending DMs: none", "Dead DMs: none"]


def test_outbox_lists_pending_and_dead_dms_without_their_text_and_retry_revives_one(tmp_path: Path) -> None:
    seeded = asyncio.run(
        _seed(_url(tmp_path), sent={"USENT001": timedelta(hours=1)}, dead={"UGHOST01": timedelta(minutes=5)},
              pending=("UWAIT001",))
    )
    env = _env(tmp_path)
    listing = _run(["outbox"], env)
    assert listing.returncode == 0, listing.stderr
    pending_part, dead_part = listing.stdout.split("Dead DMs")
    assert "Pending DMs: 1" in pending_part and "UWAIT001" in pending_part and "503" in pending_part
    assert dead_part.startswith(": 1") and "UGHOST01" in dead_part and "user_not_found" in dead_part
    assert f" {seeded.ids['UGHOST01']} " in dead_part
    assert "USENT001" not in listing.stdout
    assert "Acme Secret Org" not in listing.stdout  # the DM's content is never listed

    retried = _run(["outbox", "retry", str(seeded.ids["UGHOST01"])], env)
    assert retried.returncode == 0, retried.stderr
    assert f"Queued again: DM {seeded.ids['UGHOST01']}" in retried.stdout
    after = _run(["outbox"], env).stdout
    assert "Pending DMs: 2" in after and "Dead DMs: none" in after


def test_retry_of_ids_that_are_not_dead_exits_1_and_names_them(tmp_path: Path) -> None:
    seeded = asyncio.run(_seed(_url(tmp_path), dead={"UGHOST01": timedelta(0)}, pending=("UWAIT001",)))
    result = _run(["outbox", "retry", str(seeded.ids["UGHOST01"]), str(seeded.ids["UWAIT001"]), "9999"],
                  _env(tmp_path))
    assert result.returncode == 1
    assert f"Queued again: DM {seeded.ids['UGHOST01']}." in result.stdout
    assert f"No dead DM with id {seeded.ids['UWAIT001']}, 9999" in result.stdout
    assert "Traceback" not in result.stderr


def test_retry_all_dead_revives_every_dead_dm(tmp_path: Path) -> None:
    seeded = asyncio.run(_seed(_url(tmp_path), dead={"UGHOST01": timedelta(0), "UGHOST02": timedelta(days=3)}))
    env = _env(tmp_path)
    result = _run(["outbox", "retry", "--all-dead"], env)
    assert result.returncode == 0, result.stderr
    assert f"Queued again: DM {seeded.ids['UGHOST01']}, {seeded.ids['UGHOST02']}." in result.stdout
    again = _run(["outbox", "retry", "--all-dead"], env)
    assert (again.returncode, again.stdout.strip()) == (0, "No dead DMs: nothing to retry.")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["outbox", "retry"], "needs the ids of dead DMs"),
        (["outbox", "retry", "1", "--all-dead"], "needs the ids of dead DMs"),
        (["outbox", "retry", "abc"], "'abc' is not a DM id"),
        (["outbox", "retry", "-5"], "is not a DM id"),
    ],
)
def test_retry_with_wrong_arguments_says_what_to_give_and_exits_2(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    result = _run(args, _env(tmp_path))
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_outbox_with_an_unreachable_database_stops_with_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = _env(tmp_path, DATABASE_URL=f"postgresql+asyncpg://postgres:hunter2@127.0.0.1:{port}/nope")
    result = _run(["outbox"], env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the database" in lines[0], result.stderr
    assert "hunter2" not in result.stderr


# -- retention settings and the purge of a running server ---------------------------------------


@pytest.mark.parametrize("name", ["KEYBOT_RETAIN_SENT_DMS", "KEYBOT_RETAIN_DEAD_DMS", "KEYBOT_RETAIN_PENDING_DELETIONS"])
@pytest.mark.parametrize("value", ["30", "0d", "-1d", "30 days", "3651d", "10m"])
def test_a_malformed_retention_setting_stops_keybot_with_one_clear_line(
    tmp_path: Path, name: str, value: str
) -> None:
    result = _run(["serve"], _env(tmp_path, SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s", **{name: value}))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert name in lines[0] and "30d" in lines[0] and "forever" in lines[0]


async def _old_pending_deletions(url: str) -> None:
    """An org with a project, an old audit event, and delete confirmations: one ended 2 days ago, one
    used 2 hours ago, one live."""
    now = datetime.now(UTC)
    store = await open_store(url)
    try:
        async with store.transaction() as tx:
            org = await tx.ensure_org(team_id=TEAM, name="Acme", at=now)
            project = await tx.add_project(org_id=org.id, name="web", created_by="U0OWNER", at=now)
            await tx.add_audit(AuditEvent(org_id=org.id, project_id=project.id, actor="U0OWNER",
                                          action="key created", at=now - timedelta(days=3650), key_name="k"))
            for token, expires, used in (
                ("ended-2-days-ago", now - timedelta(days=2), None),
                ("used-2-hours-ago", now + timedelta(minutes=5), now - timedelta(hours=2)),
                ("live", now + timedelta(minutes=10), None),
            ):
                await tx.add_pending(PendingDeletion(token, key_row_id=1, project_id=project.id, user_id="U0OWNER",
                                                     team_id=TEAM, expires_at=expires, used_at=used))
    finally:
        await store.close()


async def _state(url: str) -> tuple[list[str], list[str], int]:
    store = await open_store(url, migrate=False)
    try:
        async with store.engine.connect() as conn:
            tokens = list((await conn.execute(select(pending_deletions.c.token).order_by("token"))).scalars())
            audits = (await conn.execute(select(func.count()).select_from(audit_events))).scalar_one()
        return await _users(store), tokens, int(audits)
    finally:
        await store.close()


def _serve_until(
    tmp_path: Path, users: list[str], tokens: list[str], *, timeout: float = 60, **extra: str
) -> int:
    """Run `keybot serve` until the outbox holds DMs to exactly ``users`` and the delete confirmations
    left are exactly ``tokens`` (failing after ``timeout`` seconds); the audit events left then."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = _env(tmp_path, SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s", PORT=str(port), KEYBOT_HOST="127.0.0.1",
               SLACK_API_URL="http://127.0.0.1:9/api/", **extra)
    proc = subprocess.Popen([*KEYBOT, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout
        while (state := asyncio.run(_state(_url(tmp_path))))[:2] != (users, tokens):
            assert proc.poll() is None and time.monotonic() < deadline, f"still left: {state[:2]}"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "retention: deleted" in err
    return state[2]


def test_a_starting_server_purges_old_dms_and_confirmations_and_keeps_the_audit_trail(tmp_path: Path) -> None:
    url = _url(tmp_path)
    asyncio.run(_old_pending_deletions(url))
    asyncio.run(_seed(url, sent={"UOLDSENT": timedelta(days=31), "UNEWSENT": timedelta(days=29)},
                      dead={"UOLDDEAD": timedelta(days=91), "UNEWDEAD": timedelta(days=89)}))
    audits = _serve_until(tmp_path, ["UNEWSENT", "UNEWDEAD"], ["live", "used-2-hours-ago"])
    assert audits == 1


def test_retention_settings_decide_what_a_starting_server_purges(tmp_path: Path) -> None:
    url = _url(tmp_path)
    asyncio.run(_old_pending_deletions(url))
    asyncio.run(_seed(url, sent={"UOLDSENT": timedelta(days=3000)},
                      dead={"UDEAD2H": timedelta(hours=2), "UDEAD30M": timedelta(minutes=30)}))
    audits = _serve_until(
        tmp_path, ["UOLDSENT", "UDEAD30M"], ["live"],
        KEYBOT_RETAIN_SENT_DMS="forever", KEYBOT_RETAIN_DEAD_DMS="1h", KEYBOT_RETAIN_PENDING_DELETIONS="1h",
    )
    assert audits == 1

"""`keybot shell` never touches a server's data, as real processes: its own trial database by default
(DATABASE_URL ignored), a one-line refusal for a database holding a real workspace, and with
--i-know-this-is-production a real server's pending DMs left alone and its audit rows marked."""

import asyncio
import os
import re
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from bot.domain.notices import SHELL_ORIGIN, Notice, NoticeKind
from storage import open_store
from storage.tables import audit_events, outbox
from tests.procs import ROOT, fresh_postgres_database, running_keybot

SECRET_RE = re.compile(r"kb_[A-Za-z0-9]{10}_[A-Za-z0-9]{28}")
NO_SLACK = "http://127.0.0.1:9/api/"  # the servers here never reach Slack: nothing needs them to
FLAG = "--i-know-this-is-production"


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "KEYBOT_", "DATABASE_URL"))}
    env.update(KEYBOT_ARGON2_PROFILE="cheapest", PYTHONPATH=str(ROOT), HOME=str(home), **extra)
    return env


async def _keybot(cwd: Path, *args: str, stdin: str = "", **env: str) -> tuple[int, str, str]:
    """Run ``keybot <args>`` in ``cwd`` with ``stdin``; its exit code, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *args,
        cwd=cwd,
        env=_env(cwd, **env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _new_secret(transcript: str) -> str:
    """The secret of the one key made in a shell session (printed once, in its creator's reply)."""
    [secret] = set(SECRET_RE.findall(transcript))
    return secret


def _dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return list(conn.iterdump())


async def test_a_key_made_in_the_shell_does_not_verify_on_keybot_serve_in_the_same_folder(
    tmp_path: Path,
) -> None:
    serve_db = f"sqlite+aiosqlite:///{tmp_path / 'keybot.db'}"  # what `keybot serve` uses in tmp_path
    serve_log = tmp_path / "serve.log"
    async with running_keybot(database_url=serve_db, slack_api_url=NO_SLACK, log_path=serve_log) as kb:
        newcomer = await _keybot(tmp_path, "shell", "--as", "ana", stdin="y\nproject create payments\n")
        told = await _keybot(
            tmp_path, "shell", "--as", "ana", stdin="project create billing\n", DATABASE_URL=serve_db
        )
        assert (newcomer[0], told[0]) == (0, 0), newcomer[2] + told[2]
        banner = "database keybot-shell.db (a trial database of its own; `serve` never reads it)."
        assert banner in newcomer[1] and banner in told[1]
        secrets = [_new_secret(newcomer[1]), _new_secret(told[1])]
        async with aiohttp.ClientSession() as session:
            assert [await kb.verify(session, key) for key in secrets] == [
                {"valid": False, "code": "NOT_FOUND"}
            ] * 2
    shell_db = f"sqlite+aiosqlite:///{tmp_path / 'keybot-shell.db'}"
    log = tmp_path / "trial.log"
    async with (
        running_keybot(database_url=shell_db, slack_api_url=NO_SLACK, log_path=log) as trial,
        aiohttp.ClientSession() as session,
    ):
        answers = [await trial.verify(session, key) for key in secrets]
    assert [(a["valid"], a["org"], a["name"]) for a in answers] == [(True, "keybot shell", "default")] * 2


async def test_the_shell_refuses_in_one_line_a_database_holding_a_real_workspace_and_changes_nothing(
    tmp_path: Path,
) -> None:
    prod = tmp_path / "prod.db"
    url = f"sqlite+aiosqlite:///{prod}"
    bootstrap = ("bootstrap", "--team-id", "T0ACME", "--owner", "UREAL")
    code, _, err = await _keybot(tmp_path, *bootstrap, DATABASE_URL=url)
    assert code == 0, err
    before = _dump(prod)

    code, out, err = await _keybot(
        tmp_path, "shell", "--as", "UREAL", "--database-url", url, stdin="project create payments\n"
    )
    assert code == 1
    [line] = err.strip().splitlines()
    assert line.startswith(f"keybot: keybot shell will not open {url}: it holds the organization of real")
    assert "T0ACME" in line and FLAG in line
    assert out == ""
    assert _dump(prod) == before

    code, out, err = await _keybot(
        tmp_path, "shell", "--as", "UREAL", stdin="project create payments\n", DATABASE_URL=url
    )
    assert code == 0, err
    assert "Workspace TSHELL0001, database keybot-shell.db" in out  # DATABASE_URL alone is ignored
    assert _dump(prod) == before


async def test_told_it_is_production_the_shell_leaves_a_servers_pending_dms_alone_and_marks_its_audit_rows(
    tmp_path: Path,
) -> None:
    async with fresh_postgres_database() as url:
        bootstrap = ("bootstrap", "--team-id", "T0ACME", "--owner", "UREAL", "--org", "Acme")
        code, _, err = await _keybot(tmp_path, *bootstrap, DATABASE_URL=url)
        assert code == 0, err
        store = await open_store(url)
        try:
            async with store.transaction() as tx:
                for n in range(3):  # a real server's DMs, waiting for Slack to come back
                    await tx.notify(
                        Notice(
                            NoticeKind.KEY_CREATED,
                            recipient="UREAL",
                            team_id="T0ACME",
                            actor="UREAL",
                            at=datetime.now(UTC) - timedelta(minutes=5),
                            project="real-project",
                            key_name=f"real-key-{n}",
                            key_masked="kb_RealRealRe_…a81Z",
                        )
                    )
        finally:
            await store.close()

        code, out, err = await _keybot(
            tmp_path,
            "shell",
            "--as",
            "UREAL",
            "--database-url",
            url,
            FLAG,
            # bob's key is DMed by the shell to UREAL, who also has the server's DMs waiting
            stdin="project create payments\ngrant @bob owner payments\n/as bob\ncreate payments checkout\n"
            "audit payments\n/dms\n",
        )
        assert code == 0, err
        assert "It holds real data: the organization of Slack workspace T0ACME." in out
        assert "real-key" not in out
        audit_reply = out.split("> audit payments\n")[1].split("> /dms")[0]
        assert audit_reply.count("(in keybot shell)") == 4  # project, key and role by UREAL; a key by bob

        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                servers = (
                    await conn.execute(
                        select(outbox.c.sent_at, outbox.c.claimed_until, outbox.c.attempts)
                        .where(outbox.c.origin.is_(None))
                        .order_by(outbox.c.id)
                    )
                ).all()
                shells = (
                    await conn.execute(
                        select(outbox.c.user_id, outbox.c.sent_at.is_not(None))
                        .where(outbox.c.origin == SHELL_ORIGIN)
                        .order_by(outbox.c.user_id)
                    )
                ).all()
                audit = (
                    await conn.execute(
                        select(audit_events.c.actor, audit_events.c.action, audit_events.c.origin).order_by(
                            audit_events.c.id
                        )
                    )
                ).all()
        finally:
            await engine.dispose()
    assert servers == [(None, None, 0)] * 3
    assert shells == [("UBOB", True), ("UREAL", True)]
    assert audit == [
        ("keybot bootstrap", "role granted", None),
        ("UREAL", "project created", SHELL_ORIGIN),
        ("UREAL", "key created", SHELL_ORIGIN),
        ("UREAL", "role granted", SHELL_ORIGIN),
        ("UBOB", "key created", SHELL_ORIGIN),
    ]

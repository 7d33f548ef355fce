"""The shell's database: a trial database of its own by default, a refusal for one holding a real
workspace's organization, and with ``production`` a server's pending DMs left alone and every shell
change marked as such."""

import asyncio
import io
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import make_url

from bot.domain.notices import SHELL_ORIGIN, Notice, NoticeKind
from bot.runtime import bootstrap
from bot.settings import Settings
from bot.shell import SHELL_DATABASE_URL, run_shell
from storage import open_store
from tests.shell.conftest import reply_to, transcript

REFUSAL_FLAG = "--i-know-this-is-production"


def _path(settings: Settings) -> str:
    database = make_url(settings.database_url).database
    assert database is not None
    return database


def _rows(settings: Settings, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(_path(settings)) as conn:
        return list(conn.execute(sql))


def _real_workspace(settings: Settings, *, pending_dms: int = 0) -> None:
    """The database of a real server: workspace T0ACME owned by UREAL, with DMs waiting to be sent."""
    asyncio.run(bootstrap(settings, team_id="T0ACME", owner="UREAL", org="Acme"))

    async def queue() -> None:
        store = await open_store(settings.database_url)
        try:
            async with store.transaction() as tx:
                for n in range(pending_dms):
                    await tx.notify(
                        Notice(
                            NoticeKind.KEY_CREATED,
                            recipient="UREAL",
                            team_id="T0ACME",
                            actor="UREAL",
                            at=datetime.now(UTC) - timedelta(minutes=1),
                            project="real-project",
                            key_name=f"real-key-{n}",
                            key_masked="kb_RealRealRe_…a81Z",
                        )
                    )
        finally:
            await store.close()

    asyncio.run(queue())


def test_by_default_the_shell_keeps_its_own_trial_database_in_the_working_folder_and_says_so(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = transcript(replace(settings, database_url=SHELL_DATABASE_URL), "y", "project create payments")
    banner = "database keybot-shell.db (a trial database of its own; `serve` never reads it)."
    assert f"Workspace TSHELL0001, {banner}" in text
    assert (tmp_path / "keybot-shell.db").exists()
    assert not (tmp_path / "keybot.db").exists()
    again = transcript(replace(settings, database_url=SHELL_DATABASE_URL), "projects")
    assert "payments" in reply_to(again, "projects")  # the trial survives a restart


def test_a_database_holding_a_real_workspaces_organization_is_refused_in_one_line_and_left_as_it_was(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    _real_workspace(settings, pending_dms=1)
    capsys.readouterr()
    tables = ("orgs", "audit_events", "outbox")
    before = [_rows(settings, f"SELECT * FROM {table}") for table in tables]
    out = io.StringIO()
    code = run_shell(settings, user="ana", stdin=io.StringIO("y\nproject create payments\n"), stdout=out)
    assert code == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("keybot: keybot shell will not open sqlite+aiosqlite:///")
    assert "T0ACME" in err and REFUSAL_FLAG in err
    assert out.getvalue() == ""
    assert [_rows(settings, f"SELECT * FROM {table}") for table in tables] == before


def test_a_database_holding_only_the_shells_own_organization_is_not_refused(settings: Settings) -> None:
    transcript(settings, "y")
    assert "@ana> " in transcript(settings, "whoami")


def test_told_it_is_production_the_shell_warns_marks_its_changes_and_never_claims_the_servers_dms(
    settings: Settings,
) -> None:
    _real_workspace(settings, pending_dms=2)
    text = transcript(
        settings,
        "project create payments",
        "grant @bob owner payments",
        "/as bob",
        "create payments checkout",  # the shell DMs UREAL, who also has the server's DMs waiting
        "audit payments",
        user="UREAL",
        production=True,
    )
    assert "Workspace T0ACME, database sqlite+aiosqlite:///" in text
    assert "It holds real data: the organization of Slack workspace T0ACME." in text
    assert "real-key" not in text  # the server's DMs were not sent (nor shown) by the shell
    audit = reply_to(text, "audit payments")
    assert audit.count("(in keybot shell)") == 4, audit  # project, key and role by UREAL; a key by bob
    servers_dms = _rows(
        settings, "SELECT user_id, sent_at, claimed_until, attempts FROM outbox WHERE origin IS NULL"
    )
    assert servers_dms == [("UREAL", None, None, 0)] * 2
    shell_dms = _rows(settings, "SELECT user_id, sent_at IS NOT NULL FROM outbox WHERE origin = 'shell'")
    assert sorted(shell_dms) == [("UBOB", 1), ("UREAL", 1)]  # bob's role; bob's key, to the org owner
    audit_rows = _rows(settings, "SELECT actor, action, origin FROM audit_events ORDER BY id")
    assert audit_rows == [
        ("keybot bootstrap", "role granted", None),
        ("UREAL", "project created", SHELL_ORIGIN),
        ("UREAL", "key created", SHELL_ORIGIN),
        ("UREAL", "role granted", SHELL_ORIGIN),
        ("UBOB", "key created", SHELL_ORIGIN),
    ]

"""``keybot audit export``: the audit trail streamed in id order with constant memory, on SQLite and
PostgreSQL, and the command line that writes it as JSON lines or CSV."""

import csv
import io
import json
import subprocess
import sys
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.audit_export import FIELDS, write_events
from bot.services.audit import export_audit
from storage import SqlStore
from storage.audit_export import SqlAuditExport
from storage.tables import audit_events, orgs, projects

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def _fill(engine: AsyncEngine, rows: int) -> None:
    """Two orgs; ``rows`` events of org T1 a second apart from T0 (every tenth in project `web`), and
    one event of org T2."""
    async with engine.begin() as conn:
        await conn.execute(insert(orgs), [
            {"id": 1, "team_id": "T1", "name": "One", "created_at": T0},
            {"id": 2, "team_id": "T2", "name": "Two", "created_at": T0},
        ])
        await conn.execute(insert(projects), [
            {"id": 1, "org_id": 1, "name": "web", "name_lower": "web", "created_by": "U1", "created_at": T0}
        ])
        batch = []
        for n in range(rows):
            batch.append({
                "org_id": 1, "project_id": 1 if n % 10 == 0 else None, "actor": "U1", "action": "key created",
                "key_name": f"k{n}", "key_masked": "kb_AbCdEfGhIj_…wxyz", "at": T0 + timedelta(seconds=n),
            })
            if len(batch) == 5000:
                await conn.execute(insert(audit_events), batch)
                batch = []
        if batch:
            await conn.execute(insert(audit_events), batch)
        await conn.execute(insert(audit_events), [
            {"org_id": 2, "actor": "U9", "action": "role granted", "target_user": "U8", "role": "owner", "at": T0}
        ])


async def test_a_hundred_thousand_events_stream_in_order_with_bounded_memory(store: SqlStore) -> None:
    await _fill(store.engine, 100_000)
    out = io.StringIO()
    source = SqlAuditExport(store.engine)
    tracemalloc.start()
    try:
        written = await write_events(export_audit(source, since=T0, team_id="T1"), _Counting(out), fmt="jsonl")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written == 100_000
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"  # the whole export would be ~25 MB of text
    assert out.tell() == 0  # _Counting kept nothing


class _Counting(io.StringIO):
    """A sink that checks each line and keeps none of them."""

    def __init__(self, _: io.StringIO) -> None:
        super().__init__()
        self.last_id = 0

    def write(self, text: str) -> int:
        event = json.loads(text)
        assert event["id"] > self.last_id and event["team_id"] == "T1"
        self.last_id = event["id"]
        return len(text)


async def test_since_and_org_choose_the_events(store: SqlStore) -> None:
    await _fill(store.engine, 30)
    source = SqlAuditExport(store.engine)
    later = [e async for e in export_audit(source, since=T0 + timedelta(seconds=25), team_id=None, batch=4)]
    assert [e.key_name for e in later] == [f"k{n}" for n in range(25, 30)]
    every = [e async for e in export_audit(source, since=T0, team_id=None, batch=7)]
    assert len(every) == 31 and {e.team_id for e in every} == {"T1", "T2"}
    assert [e.id for e in every] == sorted(e.id for e in every)
    assert every[0].project == "web" and every[1].project is None


async def test_csv_has_a_header_and_one_row_per_event(store: SqlStore) -> None:
    await _fill(store.engine, 3)
    out = io.StringIO()
    await write_events(export_audit(SqlAuditExport(store.engine), since=T0, team_id="T1"), out, fmt="csv")
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == FIELDS
    assert [r["key_name"] for r in rows] == ["k0", "k1", "k2"]
    assert rows[0]["at"] == T0.isoformat()


def test_keybot_audit_export_writes_json_lines_from_the_command_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'kb.db'}",
           "KEYBOT_ARGON2_PROFILE": "cheapest"}
    root = Path(__file__).resolve().parents[2]
    boot = subprocess.run([sys.executable, "-m", "bot.cli", "bootstrap", "--team-id", "T0001", "--owner", "U0001"],
                          env=env, cwd=root, capture_output=True, text=True, timeout=120)
    assert boot.returncode == 0, boot.stderr
    run = subprocess.run([sys.executable, "-m", "bot.cli", "audit", "export", "--since", "2000-01-01"],
                         env=env, cwd=root, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    [event] = [json.loads(line) for line in run.stdout.splitlines()]
    assert (event["team_id"], event["action"], event["target_user"], event["role"]) == (
        "T0001", "role granted", "U0001", "owner"
    )
    bad = subprocess.run([sys.executable, "-m", "bot.cli", "audit", "export", "--since", "yesterday"],
                         env=env, cwd=root, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "is not a date like 2026-01-31" in bad.stderr
    for org, expected in (("T0001", 1), ("TNOPE", None)):  # a typo is said, not an empty export
        one = subprocess.run([sys.executable, "-m", "bot.cli", "audit", "export", "--since", "2000-01-01", "--org", org],
                             env=env, cwd=root, capture_output=True, text=True, timeout=120)
        if expected is None:
            assert one.returncode == 1 and one.stdout == ""
            assert one.stderr.strip() == (
                "keybot: this database has no organization for TNOPE (it has: T0001); "
                "without --org every organization is exported."
            )
        else:
            assert one.returncode == 0 and len(one.stdout.splitlines()) == expected, one.stderr

"""The CSV of ``keybot audit export`` is safe to open in a spreadsheet: typed text never runs as a formula."""

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bot.audit_export import spreadsheet_safe, write_events
from bot.domain.model import ExportedEvent


@pytest.mark.parametrize("typed", ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_text_that_would_start_a_formula_gets_a_leading_quote(typed: str) -> None:
    assert spreadsheet_safe(typed) == "'" + typed


@pytest.mark.parametrize("value", ["kb_AbCdEfGhIj_…a81Z", "2026-12-01T10:00:00+00:00", "for the nightly job", "", None, 42])
def test_anything_else_is_unchanged(value: object) -> None:
    assert spreadsheet_safe(value) == value


async def test_the_csv_quotes_a_formula_in_a_reason_and_jsonl_keeps_it_as_typed() -> None:
    fields = {f: None for f in ExportedEvent.__dataclass_fields__}
    event = ExportedEvent(**{**fields, "id": 1, "at": datetime(2026, 12, 1, tzinfo=UTC), "team_id": "T1",
                             "actor": "U1", "action": "key requested", "detail": "=cmd|' /C calc'!A0"})  # type: ignore[arg-type]

    async def events() -> AsyncIterator[ExportedEvent]:
        yield event

    out = io.StringIO()
    assert await write_events(events(), out, fmt="csv") == 1
    [row] = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["detail"] == "'=cmd|' /C calc'!A0" and row["action"] == "key requested"
    out = io.StringIO()
    await write_events(events(), out, fmt="jsonl")
    assert '"detail":"=cmd|\' /C calc\'!A0"' in out.getvalue()

"""``keybot audit export``: the audit trail as JSON lines or CSV, streamed row by row."""

import csv
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import TextIO

from bot.domain.model import ExportedEvent

FIELDS = [field.name for field in dataclasses.fields(ExportedEvent)]
FORMATS = ("jsonl", "csv")
# A spreadsheet runs a cell that starts with one of these as a formula; people type reasons and notes.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A CSV cell as a spreadsheet should show it: text that would start a formula gets a leading ``'``
    (OWASP's advice against CSV injection); anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


async def write_events(events: AsyncIterator[ExportedEvent], out: TextIO, *, fmt: str) -> int:
    """Write each event as it comes (nothing is held but the current row); how many were written."""
    count = 0
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    async for event in events:
        if writer is not None:
            writer.writerow({name: spreadsheet_safe(value) for name, value in event.as_json().items()})
        else:
            out.write(json.dumps(event.as_json(), ensure_ascii=False, separators=(",", ":")) + "\n")
        count += 1
    return count

"""``keybot audit export``: the audit trail as JSON lines or CSV, streamed row by row."""

import csv
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import TextIO

from bot.domain.model import ExportedEvent

FIELDS = [field.name for field in dataclasses.fields(ExportedEvent)]
FORMATS = ("jsonl", "csv")


async def write_events(events: AsyncIterator[ExportedEvent], out: TextIO, *, fmt: str) -> int:
    """Write each event as it comes (nothing is held but the current row); how many were written."""
    count = 0
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    async for event in events:
        if writer is not None:
            writer.writerow(event.as_json())
        else:
            out.write(json.dumps(event.as_json(), ensure_ascii=False, separators=(",", ":")) + "\n")
        count += 1
    return count

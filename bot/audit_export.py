"""``keybot audit export``: the audit trail as JSON lines or CSV, streamed row by row."""

import csv
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import TextIO

from bot.domain.model import ExportedEvent

FIELDS = [field.name for field in dataclasses.fields(ExportedEvent)]
FORMATS = ("jsonl", "csv")


def _values(event: ExportedEvent) -> dict[str, object]:
    values = dataclasses.asdict(event)
    values["at"] = event.at.isoformat()
    return values


async def write_events(events: AsyncIterator[ExportedEvent], out: TextIO, *, fmt: str) -> int:
    """Write each event as it comes (nothing is held but the current row); how many were written."""
    count = 0
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    async for event in events:
        if writer is not None:
            writer.writerow(_values(event))
        else:
            out.write(json.dumps(_values(event), ensure_ascii=False, separators=(",", ":")) + "\n")
        count += 1
    return count

"""Rows, ratios and targets of one benchmark run, and its two outputs: results.json and results.md.

A row is one workload at one concurrency. Its ratio compares it with a baseline measured in the same
run: for concurrency 1, p50 ÷ the baseline's p50 (how many times slower); for higher concurrency,
req/s ÷ the baseline's req/s (which share of the baseline's throughput). A target turns a ratio into
PASS or FAIL; the benchmark reports it and asserts nothing.
"""

import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.load import Measured


@dataclass
class Row:
    workload: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    statements_per_request: float | None = None
    baseline: str | None = None
    baseline_rps: float | None = None
    baseline_p50_ms: float | None = None
    baseline_p99_ms: float | None = None
    ratio: float | None = None
    target: str | None = None
    passed: bool | None = None
    note: str = ""
    error_samples: list[str] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        workload: str,
        concurrency: int,
        measured: Measured,
        *,
        base: Measured | None = None,
        **extra: Any,
    ) -> "Row":
        """A row; with ``base``, its ratio (p50 ratio at concurrency 1, throughput ratio above)."""
        if base is not None:
            extra.setdefault("baseline_rps", base.rps)
            extra.setdefault("baseline_p50_ms", base.p50)
            extra.setdefault("baseline_p99_ms", base.p99)
            if "ratio" not in extra:
                if concurrency == 1:
                    extra["ratio"] = measured.p50 / base.p50 if base.p50 else None
                else:
                    extra["ratio"] = measured.rps / base.rps if base.rps else None
        return cls(
            workload=workload,
            concurrency=concurrency,
            rps=measured.rps,
            p50_ms=measured.p50,
            p99_ms=measured.p99,
            requests=measured.count,
            errors=measured.errors,
            error_samples=list(measured.error_samples),
            **extra,
        )

    @property
    def baseline_text(self) -> str:
        if self.baseline is None:
            return "—"
        if self.baseline_rps is None:
            return self.baseline
        if self.concurrency == 1:
            return f"{self.baseline}: p50 {_num(self.baseline_p50_ms)} ms"
        return f"{self.baseline}: {_num(self.baseline_rps)}/s"


@dataclass
class Target:
    """One performance target, evaluated in this run."""

    name: str
    measured: str
    limit: str
    passed: bool
    detail: str = ""

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        detail = f" ({self.detail})" if self.detail else ""
        return f"{verdict}  {self.name}: {self.measured}, target {self.limit}{detail}"


def machine(db: str, db_version: str | None) -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "db": db,
        "db_version": db_version,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def markdown(rows: list[Row], targets: list[Target], info: dict[str, Any]) -> str:
    m = info["machine"]
    lines = [
        f"# keybot benchmark — {m['db']}{' (quick)' if info.get('quick') else ''}",
        "",
        f"{m['date']} · {m['cpu_count']} × {m['cpu_model']} · Python {m['python']} · "
        f"{m['db']} {m['db_version'] or ''} · one argon2id hash (OWASP) {info['argon2_hash_ms']:.1f} ms · "
        f"whole run {info['run_seconds']:.0f} s",
        "",
        "Load from a separate process on the same machine (closed loop, aiohttp). "
        "Ratio: p50 ÷ baseline p50 at concurrency 1 (lower is better), "
        "req/s ÷ baseline req/s at higher concurrency (higher is better).",
        "",
        "| workload | c | req/s | p50 ms | p99 ms | errors | SQL/req | baseline | ratio | target | result |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---|---|",
    ]
    for r in rows:
        verdict = "" if r.passed is None else ("PASS" if r.passed else "**FAIL**")
        lines.append(
            f"| {r.workload} | {r.concurrency} | {_num(r.rps)} | {_num(r.p50_ms)} | {_num(r.p99_ms)} | "
            f"{r.errors} | {_num(r.statements_per_request)} | {r.baseline_text} | {_num(r.ratio)} | "
            f"{r.target or '—'} | {verdict} |"
        )
    lines += ["", "## Targets", ""]
    lines += [f"- {t.line()}" for t in targets]
    rss = info.get("rss_mb_after")
    if rss:
        lines += [
            "",
            "keybot RSS (MB) after each phase: " + ", ".join(f"{k} {v:.0f}" for k, v in rss.items()),
        ]
    opened = info.get("db_connections_opened")
    if opened:
        lines += [
            "",
            "database connections keybot opened in each phase: "
            + ", ".join(f"{k} {v}" for k, v in opened.items()),
        ]
    for line, count in (info.get("keybot_warnings") or {}).items():
        lines += ["", f"keybot logged {count}×: `{line}`"]
    notes = [f"- {r.workload} (c={r.concurrency}): {r.note}" for r in rows if r.note]
    if notes:
        lines += ["", "## Notes", "", *notes]
    return "\n".join(lines) + "\n"


def write(
    out: Path, *, rows: list[Row], targets: list[Target], info: dict[str, Any], stem: str = "results"
) -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.md`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    payload = {**info, "rows": [asdict(r) for r in rows], "targets": [asdict(t) for t in targets]}
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    md_path.write_text(markdown(rows, targets, info))
    return json_path, md_path

"""The README's picture of the Grafana dashboard, drawn from a real run: ``python -m bench.dashboard``.

It serves a real keybot (``bot.runtime.build_runtime``, OWASP argon2, the audit webhook on) against the
Slack stand-in and a local webhook receiver, drives it over the wire for ``--seconds`` (commands, clicks,
verifies of good, unknown and malformed keys, one Slack error a few seconds, the receiver down from 30 %
to 55 % of the run), scrapes ``/metrics`` every ``--every`` seconds, evaluates each query of
``docs/grafana/keybot.json`` on those scrapes (the few PromQL shapes the dashboard uses; rates over
``--window`` seconds instead of 5 minutes, the run being short) and draws the panels as one SVG, no
plotting library needed. ``--database-url postgresql+asyncpg://…`` fills the pool panel.
"""

import argparse
import asyncio
import contextlib
import json
import math
import re
import secrets
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from bot.runtime import build_runtime
from bot.settings import Settings
from bot.shell.driver import SlackDriver
from bot.shell.fakeslack import FakeSlack, SlackError

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "docs" / "grafana" / "keybot.json"
OUT = ROOT / "docs" / "grafana" / "keybot.svg"
TEAM, OWNER, SIGNING = "T0001", "UOWNER01", "bench-signing-secret"
KEY_RE = re.compile(r"kb_[A-Za-z0-9]{10}_[A-Za-z0-9]{28}")
Labels = tuple[tuple[str, str], ...]
Scrape = dict[str, dict[Labels, float]]
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


# -- the run -------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def receiver(down: asyncio.Event) -> AsyncIterator[str]:
    """A webhook receiver that answers 503 while ``down`` is set."""

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=503 if down.is_set() else 204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        await runner.cleanup()


def parse(text: str) -> Scrape:
    samples: Scrape = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


async def run(*, seconds: float, every: float, database_url: str | None) -> list[tuple[float, Scrape]]:
    """Drive a keybot for ``seconds``; its ``/metrics`` every ``every`` seconds."""
    down = asyncio.Event()
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeSlack(team_id=TEAM) as slack, receiver(down) as hook_url:
            settings = Settings(
                slack_bot_token="xoxb-bench",
                slack_signing_secret=SIGNING,
                slack_api_url=slack.api_url,
                database_url=database_url or f"sqlite+aiosqlite:///{tmp}/keybot.db",
                host="127.0.0.1",
                port=0,
                dm_merge_seconds=0,
                audit_webhook_url=hook_url,
                audit_webhook_secret=secrets.token_hex(32),
            )
            runtime = await build_runtime(settings)
            runner = web.AppRunner(runtime.web_app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            base = f"http://127.0.0.1:{runner.addresses[0][1]}"
            for part in (runtime.worker, runtime.webhook, runtime.jobs):
                if part is not None:
                    part.start()
            await runtime.keybot.operators.bootstrap(team_id=TEAM, owner=OWNER, org_name="Acme")
            scrapes: list[tuple[float, Scrape]] = []
            try:
                async with aiohttp.ClientSession() as session:
                    driver = SlackDriver(
                        events_url=f"{base}/slack/events", signing_secret=SIGNING, slack=slack, team_id=TEAM,
                        session=session,
                    )
                    started = time.monotonic()
                    load = asyncio.create_task(drive(driver, session, base, slack, down, started, seconds))
                    while time.monotonic() - started < seconds:
                        async with session.get(f"{base}/metrics") as response:
                            scrapes.append((time.monotonic() - started, parse(await response.text())))
                        await asyncio.sleep(every)
                    load.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await load
            finally:
                await runner.cleanup()
                await runtime.aclose()
    return scrapes


async def drive(
    driver: SlackDriver, session: aiohttp.ClientSession, base: str, slack: FakeSlack, down: asyncio.Event,
    started: float, seconds: float,
) -> None:
    """Commands and verifies at a steady pace; bursts of first-time verifies now and then."""
    keys: list[str] = []
    n = 0
    while True:
        n += 1
        elapsed = (time.monotonic() - started) / seconds
        if 0.30 <= elapsed < 0.55:
            down.set()
        else:
            down.clear()
        if n % 10 == 1:
            reply = await driver.command(OWNER, f"project create proj{n}")
            keys += KEY_RE.findall(reply.text)
        elif n % 10 == 5:
            if n % 40 == 5:
                slack.fail_next("chat.postMessage", SlackError("ratelimited"))
            await driver.command(OWNER, f"grant <@UUSER{n:04d}> member")
        elif n % 10 == 7:
            reply = await driver.command(OWNER, f"delete proj{n - 6} default")
            buttons = [b for b in reply.buttons() if b["action_id"] == "delete_cancel"]
            if buttons:
                await driver.click(OWNER, buttons[0])
        else:
            await driver.command(OWNER, f"list proj{max(n - n % 10 - 9, 1)}")
        candidates = [*keys[-3:], "kb_nonsense"]
        if n % 15 == 0 and keys:  # unknown secrets of a real key id: first-time verifies, through argon2
            candidates += [keys[-1][:-6] + secrets.token_hex(3) for _ in range(4)]
        await asyncio.gather(*(verify(session, base, key) for key in candidates))
        await asyncio.sleep(0.15)


async def verify(session: aiohttp.ClientSession, base: str, key: str) -> None:
    async with session.post(f"{base}/v1/keys/verify", json={"key": key}) as response:
        await response.read()


# -- the dashboard's queries, evaluated on the scrapes ---------------------------------------------------

_AGG = re.compile(r"(sum|max|min)(?: by \(([^)]*)\))?\s*\((.*)\)")
_RATE = re.compile(r"rate\((keybot_\w+)\[\w+\]\)")
_QUANTILE = re.compile(r"histogram_quantile\(([0-9.]+), (.*)\)")


def evaluate(expr: str, scrapes: list[tuple[float, Scrape]], i: int, window: float) -> dict[Labels, float]:
    """The value of ``expr`` at scrape ``i``, by label set."""
    expr = expr.strip()
    if " / " in expr:
        top, bottom = (evaluate(part, scrapes, i, window) for part in expr.split(" / ", 1))
        return {k: v / bottom[k] for k, v in top.items() if bottom.get(k)}
    if match := _QUANTILE.fullmatch(expr):
        return _quantiles(float(match[1]), evaluate(match[2], scrapes, i, window))
    if match := _AGG.fullmatch(expr):
        by = [name.strip() for name in match[2].split(",")] if match[2] else []
        grouped: dict[Labels, list[float]] = {}
        for labels, value in evaluate(match[3], scrapes, i, window).items():
            grouped.setdefault(tuple((k, v) for k, v in labels if k in by), []).append(value)
        combine = {"sum": sum, "max": max, "min": min}[match[1]]
        return {labels: float(combine(values)) for labels, values in grouped.items()}
    if match := _RATE.fullmatch(expr):
        now_t, now = scrapes[i]
        j = next(k for k, (t, _) in enumerate(scrapes) if t >= now_t - window)
        then_t, then = scrapes[j]
        if j == i:
            return {}
        before = then.get(match[1], {})
        return {k: max(v - before.get(k, 0.0), 0.0) / (now_t - then_t) for k, v in now.get(match[1], {}).items()}
    return dict(scrapes[i][1].get(expr, {}))


def _quantiles(q: float, buckets: dict[Labels, float]) -> dict[Labels, float]:
    """Prometheus' ``histogram_quantile``: linear interpolation within the bucket the rank falls in."""
    series: dict[Labels, list[tuple[float, float]]] = {}
    for labels, count in buckets.items():
        le = dict(labels)["le"]
        series.setdefault(tuple(kv for kv in labels if kv[0] != "le"), []).append((math.inf if le == "+Inf" else float(le), count))
    out = {}
    for labels, points in series.items():
        points.sort()
        total = points[-1][1]
        if total <= 0:
            continue
        rank, lower, below = q * total, 0.0, 0.0
        for upper, count in points:
            if count >= rank:
                out[labels] = lower if upper == math.inf else lower + (upper - lower) * (rank - below) / max(count - below, 1e-12)
                break
            lower, below = upper, count
    return out


# -- the picture ---------------------------------------------------------------------------------------

W, H, PAD = 380, 200, 34


def panel_svg(panel: dict[str, Any], scrapes: list[tuple[float, Scrape]], window: float, x0: int, y0: int) -> str:
    lines: dict[str, list[tuple[float, float]]] = {}
    for target in panel["targets"]:
        for i, (t, _) in enumerate(scrapes):
            for labels, value in evaluate(target["expr"], scrapes, i, window).items():
                lines.setdefault(_legend(target["legendFormat"], dict(labels)), []).append((t, value))
    shown = sorted(lines.items(), key=lambda item: -max(v for _, v in item[1]))[: len(COLOURS)]
    t_end = scrapes[-1][0] or 1.0
    top = max([v for _, points in shown for _, v in points] + [0.0]) * 1.1 or 1.0
    parts = [
        f'<g transform="translate({x0},{y0})"><rect width="{W - 8}" height="{H - 8}" rx="4" fill="#ffffff" stroke="#d0d0d0"/>',
        f'<text x="8" y="16" font-size="11" font-weight="bold">{escape(panel["title"])}</text>',
        f'<text x="8" y="{PAD - 4}" font-size="9" fill="#666">{_fmt(top)}</text>',
        f'<line x1="{PAD}" y1="{H - 50}" x2="{W - 16}" y2="{H - 50}" stroke="#ccc"/>',
        f'<text x="{W - 16}" y="{H - 40}" font-size="9" fill="#666" text-anchor="end">{t_end:.0f} s</text>',
    ]
    for n, (name, points) in enumerate(shown):
        xy = " ".join(
            f"{PAD + (W - 16 - PAD) * t / t_end:.1f},{H - 50 - (H - 50 - PAD) * v / top:.1f}" for t, v in points
        )
        colour = COLOURS[n]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{xy}"/>')
        lx, ly = 8 + (n % 3) * 122, H - 28 + (n // 3) * 11
        parts.append(f'<rect x="{lx}" y="{ly - 7}" width="8" height="3" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 11}" y="{ly - 3}" font-size="8">{escape(name[:24])}</text>')
    if not shown:
        parts.append(f'<text x="{W / 2}" y="{H / 2}" font-size="10" fill="#999" text-anchor="middle">no data</text>')
    parts.append("</g>")
    return "".join(parts)


def _legend(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{(\w+)\}\}", lambda m: labels.get(m[1], ""), template).strip()


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def draw(scrapes: list[tuple[float, Scrape]], *, window: float, note: str) -> str:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    rows = math.ceil(len(panels) / 3)
    body = [panel_svg(p, scrapes, window, 4 + (k % 3) * W, 30 + (k // 3) * H) for k, p in enumerate(panels)]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{3 * W + 8}" height="{rows * H + 34}" '
        'font-family="Helvetica, Arial, sans-serif">'
        f'<rect width="100%" height="100%" fill="#f4f5f7"/><text x="8" y="20" font-size="14" font-weight="bold">'
        f"keybot — docs/grafana/keybot.json</text>"
        f'<text x="{3 * W}" y="20" font-size="9" fill="#666" text-anchor="end">{escape(note)}</text>'
        + "".join(body)
        + "</svg>\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--every", type=float, default=2.0, help="seconds between scrapes")
    parser.add_argument("--window", type=float, default=10.0, help="seconds of each rate()")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    scrapes = asyncio.run(run(seconds=args.seconds, every=args.every, database_url=args.database_url))
    backend = "PostgreSQL" if args.database_url and args.database_url.startswith("postgresql") else "SQLite"
    note = f"measured: {args.seconds:.0f} s on {backend}, scraped every {args.every:g} s, rates over {args.window:g} s"
    args.out.write_text(draw(scrapes, window=args.window, note=note))
    print(f"{args.out}: {len(scrapes)} scrapes, {args.out.stat().st_size} bytes")


if __name__ == "__main__":
    main()

"""keybot's benchmark: keybot against the floor of its own stack, measured in the same run.

``python -m bench --db sqlite|postgres`` (``make bench``) starts, each in its own OS process, a local
Slack Web API stand-in, a bare Bolt app and a bare aiohttp JSON handler (the floors) and keybot
itself; seeds keybot's database through the storage layer; then drives every workload
over HTTP from this process and writes ``bench/results.json`` and ``bench/results.md``.
``--quick`` runs the same harness with tiny durations and sizes (a smoke test, under a minute).

Modules: ``servers`` (the server processes), ``seed`` (database seeding, its own process),
``load`` (the closed-loop load generator), ``flood`` (the guessers' process), ``run`` (the workloads
and their order), ``report`` (targets, ratios and the output files).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent

TEAM = "TBENCH01"
OWNER = "UBENCHOWNER"
SIGNING_SECRET = "bench-signing-secret-0123456789abcdef"
BOT_TOKEN = "xoxb-bench-token"

LIST_PROJECT = "list1k"
VERIFY_PROJECT = "verify"
WRITES_PROJECT = "writes"
BIG_PROJECT = "big"

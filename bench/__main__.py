"""``python -m bench [--db sqlite|postgres] [--quick | --profile] [--only PHASE …] [--out DIR]`` — see
``bench/README.md``."""

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.run import PHASES, run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark keybot against a bare Bolt app and a bare aiohttp handler, in one run.",
    )
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite", help="keybot's database")
    parser.add_argument(
        "--quick", action="store_true", help="tiny durations and sizes: a smoke test of the harness (< 1 min)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of benchmarking, profile keybot per workload with py-spy (pip install py-spy)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=PHASES,
        metavar="PHASE",
        default=None,
        help=f"run only these phases (in their usual order); one of: {', '.join(repr(p) for p in PHASES)}. "
        "Results go to a temp dir unless --out says otherwise",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where the results go (default: bench/; a temp dir with --quick or --profile)",
    )
    args = parser.parse_args(argv)
    try:
        if args.profile:
            from bench.profile import profile

            return asyncio.run(profile(db=args.db, out=args.out))
        return asyncio.run(run(db=args.db, quick=args.quick, out=args.out, only=args.only))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

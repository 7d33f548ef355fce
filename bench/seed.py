"""Seed keybot's database for the benchmark, in its own process: ``python -m bench.seed <step> …``.

- ``initial`` (before keybot serves): the org, the projects ``list1k``, ``verify`` and ``writes``
  through the services (``build_runtime``, real OWASP argon2), ``--real-keys`` real keys in ``verify``
  through ``keybot.keys.create`` (their plaintexts go to ``--out``, a 0600 file, for the verify
  workloads), and ``list1k`` filled up to ``--list-keys`` keys by bulk insert.
- ``fill`` (while keybot serves, between workloads): a project ``big`` with ``--project-keys`` keys and
  filler projects until the org holds ``--org-keys`` keys, by bulk insert.

Bulk-inserted rows share one precomputed argon2 hash: they are listed, never verified. On PostgreSQL
each step ends with ``VACUUM ANALYZE``, which autovacuum would run within a minute or so of a bulk
load anyway: the workloads then meet the tables as a server in use has them (planner statistics, a
visibility map for index-only counts), whether or not autovacuum happened to get there first.
"""

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bench import (
    BIG_PROJECT,
    BOT_TOKEN,
    LIST_PROJECT,
    OWNER,
    SIGNING_SECRET,
    TEAM,
    VERIFY_PROJECT,
    WRITES_PROJECT,
)
from bot.domain.hashing import Hasher, HashParams
from bot.domain.keys import BASE62
from bot.domain.model import Actor
from storage import SqlStore, open_store
from storage.tables import api_keys, projects

CHUNK = 5_000
FILLER_PROJECT_SIZE = 1_000


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(BASE62[digit])
    return "".join(reversed(digits))


async def insert_keys(engine: AsyncEngine, *, project_id: int, count: int, digest: str) -> None:
    """Bulk-insert ``count`` keys into a project; key ids are unique per (project, index)."""
    now = datetime.now(UTC)
    for start in range(0, count, CHUNK):
        rows: list[dict[str, Any]] = []
        for i in range(start, min(count, start + CHUNK)):
            key_id = _base62(project_id, 3) + _base62(i, 7)
            name = f"bulk{i:06d}"
            rows.append(
                {
                    "project_id": project_id,
                    "key_id": key_id,
                    "name": name,
                    "name_lower": name,
                    "masked": f"kb_{key_id}_…{key_id[-4:]}",
                    "secret_hash": digest,
                    "created_by": OWNER,
                    "created_at": now,
                }
            )
        async with engine.begin() as conn:
            await conn.execute(api_keys.insert(), rows)


async def _project_id(store: SqlStore, name: str) -> int:
    async with store.read() as tx:
        scope = await tx.scope(team_id=TEAM, user_id=OWNER, project_name=name)
    assert scope is not None and scope.project is not None, f"project {name} is missing"
    return scope.project.id


async def _count_keys(engine: AsyncEngine, *, project_id: int | None = None) -> int:
    stmt = select(func.count()).select_from(api_keys.join(projects, projects.c.id == api_keys.c.project_id))
    if project_id is not None:
        stmt = stmt.where(api_keys.c.project_id == project_id)
    async with engine.connect() as conn:
        return int((await conn.execute(stmt)).scalar_one())


async def settle(engine: AsyncEngine) -> None:
    """``VACUUM ANALYZE`` on PostgreSQL (outside any transaction: the engine autocommits); nothing on
    SQLite, whose planner needs no statistics for keybot's indexed statements."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            await conn.exec_driver_sql("VACUUM ANALYZE")


async def initial(*, url: str, slack_api_url: str, real_keys: int, list_keys: int, out: Path) -> None:
    from bot.runtime import build_runtime
    from bot.settings import Settings

    settings = Settings(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack_api_url,
        database_url=url,
        hash_params=HashParams(),
    )
    runtime = await build_runtime(settings)  # the outbox worker is not started: keybot's server drains it
    try:
        keybot = runtime.keybot
        owner = Actor(team_id=TEAM, user_id=OWNER)
        await keybot.operators.bootstrap(team_id=TEAM, owner=OWNER, org_name="Bench")
        for project in (LIST_PROJECT, VERIFY_PROJECT, WRITES_PROJECT):
            await keybot.projects.create(owner, name=project)
        gate = asyncio.Semaphore(os.cpu_count() or 1)

        async def create(i: int) -> str:
            async with gate:
                return (await keybot.keys.create(owner, project=VERIFY_PROJECT, name=f"real{i:05d}")).plaintext

        plaintexts = await asyncio.gather(*(create(i) for i in range(real_keys)))
        list_id = await _project_id(runtime.store, LIST_PROJECT)
        have = await _count_keys(runtime.store.engine, project_id=list_id)
        digest = Hasher(HashParams()).hash_sync("bench-shared-secret-never-verified")
        await insert_keys(runtime.store.engine, project_id=list_id, count=list_keys - have, digest=digest)
        await settle(runtime.store.engine)
    finally:
        await runtime.aclose()
    _write_private(out, json.dumps({"valid_keys": plaintexts}))


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read (it holds key plaintexts)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


async def fill(*, url: str, project_keys: int, org_keys: int) -> dict[str, int]:
    store = await open_store(url, migrate=False)
    try:
        digest = Hasher(HashParams()).hash_sync("bench-shared-secret-never-verified")
        now = datetime.now(UTC)
        async with store.transaction() as tx:
            scope = await tx.scope(team_id=TEAM, user_id=OWNER, project_name=None)
            assert scope is not None, "run the initial seed first"
            org_id = scope.org.id
            big = await tx.add_project(org_id=org_id, name=BIG_PROJECT, created_by=OWNER, at=now)
        await insert_keys(store.engine, project_id=big.id, count=project_keys, digest=digest)
        missing = org_keys - await _count_keys(store.engine)
        number = 0
        while missing > 0:
            number += 1
            async with store.transaction() as tx:
                filler = await tx.add_project(
                    org_id=org_id, name=f"fill{number:04d}", created_by=OWNER, at=now
                )
            size = min(missing, FILLER_PROJECT_SIZE)
            await insert_keys(store.engine, project_id=filler.id, count=size, digest=digest)
            missing -= size
        await settle(store.engine)
        return {
            "org_keys": await _count_keys(store.engine),
            "project_keys": await _count_keys(store.engine, project_id=big.id),
        }
    finally:
        await store.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.seed", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    first = sub.add_parser("initial")
    first.add_argument("--url", required=True)
    first.add_argument("--slack-api-url", required=True)
    first.add_argument("--real-keys", type=int, required=True)
    first.add_argument("--list-keys", type=int, required=True)
    first.add_argument("--out", type=Path, required=True)
    more = sub.add_parser("fill")
    more.add_argument("--url", required=True)
    more.add_argument("--project-keys", type=int, required=True)
    more.add_argument("--org-keys", type=int, required=True)
    args = parser.parse_args(argv)
    if args.step == "initial":
        asyncio.run(
            initial(
                url=args.url,
                slack_api_url=args.slack_api_url,
                real_keys=args.real_keys,
                list_keys=args.list_keys,
                out=args.out,
            )
        )
        print(json.dumps({"ok": True}))
    else:
        print(
            json.dumps(
                asyncio.run(fill(url=args.url, project_keys=args.project_keys, org_keys=args.org_keys))
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

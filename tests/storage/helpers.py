"""Data builders shared by the storage contract tests."""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.model import NewKeyRecord, Org, Project
from bot.domain.notices import Notice, NoticeKind
from storage import SqlTransaction

T0 = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
TEAM = "T0001"
OWNER = "U0OWNER"


@dataclass(frozen=True)
class World:
    """What the ``world`` fixture builds."""

    org: Org
    project: Project


def new_key(project_id: int, name: str, *, n: int = 0) -> NewKeyRecord:
    """A key record as services would build it (the hash is a stand-in)."""
    key_id = f"K{secrets.token_hex(6)}"
    return NewKeyRecord(
        project_id=project_id,
        key_id=key_id,
        name=name,
        masked=f"kb_{key_id}_…{n:04d}",
        secret_hash=f"$argon2id$v=19$m=8,t=1,p=1$stand-in-{n}",
        created_by=OWNER,
        created_at=T0 + timedelta(seconds=n),
    )


def notice(n: int = 0, *, at: datetime = T0, kind: NoticeKind = NoticeKind.KEY_CREATED) -> Notice:
    """A notice for user ``U{n:04d}`` as services would queue it."""
    return Notice(
        kind=kind,
        recipient=f"U{n:04d}",
        team_id=TEAM,
        actor=OWNER,
        at=at,
        project="Web",
        key_name=f"key-{n}",
        key_masked=f"kb_K{n:04d}_…a81Z",
    )


async def add_keys(tx: SqlTransaction, project_id: int, count: int) -> list[int]:
    """Add keys ``key-0`` … and return their row ids, oldest first."""
    return [(await tx.add_key(new_key(project_id, f"key-{n}", n=n))).id for n in range(count)]


async def reset_postgres(engine: AsyncEngine) -> None:
    """Drop everything in a PostgreSQL test database (including the append-only audit table)."""
    async with engine.begin() as conn:
        await conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        await conn.exec_driver_sql("CREATE SCHEMA public")

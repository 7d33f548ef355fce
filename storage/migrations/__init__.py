"""Alembic migrations, run in code: there is no alembic.ini on disk.

``upgrade(engine)`` follows Alembic's "programmatic API use (connection sharing) with asyncio"
cookbook recipe: it opens one write transaction, hands its connection to ``env.py`` through
``Config.attributes`` and runs ``alembic upgrade head`` inside it via ``run_sync``. On PostgreSQL
the transaction first takes a transaction-scoped advisory lock, so instances starting together
migrate one after the other (DDL is transactional there); on SQLite BEGIN IMMEDIATE does the same.
"""

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.engine import writer

_HERE = Path(__file__).resolve().parent
_LOCK_KEY = 0x6B6579626F74  # "keybot": the advisory lock id for migrations
_Command = Callable[[Config], None]


def alembic_config(url: str | None = None) -> Config:
    """An Alembic ``Config`` for keybot's migrations (``url`` only for offline ``--sql`` use)."""
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url)
    return config


def head_revision() -> str | None:
    """The newest revision shipped with this code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (idempotent; safe with several instances starting)."""
    await _run(engine, lambda config: command.upgrade(config, revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Migrate the database back to ``revision`` (``"base"`` drops everything)."""
    await _run(engine, lambda config: command.downgrade(config, revision))


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
        )


async def _run(engine: AsyncEngine, alembic_command: _Command) -> None:
    async with writer(engine).begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        await conn.run_sync(_in_connection, alembic_command)


def _in_connection(connection: Connection, alembic_command: _Command) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    alembic_command(config)

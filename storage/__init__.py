"""keybot's storage: SQLAlchemy Core tables, engines, Alembic migrations and the ``SqlStore``.

    store = await open_store("sqlite+aiosqlite:///keybot.db")   # migrates to the newest schema
    async with store.transaction() as tx:
        scope = await tx.scope(team_id="T1", user_id="U1", project_name="web")
    await store.close()
"""

from storage.engine import make_engine
from storage.migrations import current_revision, downgrade, head_revision, upgrade
from storage.repository import UNAVAILABLE, SqlStore, SqlTransaction, open_store
from storage.tables import metadata

__all__ = [
    "UNAVAILABLE",
    "SqlStore",
    "SqlTransaction",
    "current_revision",
    "downgrade",
    "head_revision",
    "make_engine",
    "metadata",
    "open_store",
    "upgrade",
]

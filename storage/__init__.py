"""keybot's storage: SQLAlchemy Core tables, engines, Alembic migrations and the ``SqlStore``.

``await open_store(url)`` gives a migrated ``SqlStore`` (``bot.ports.Store``) for a
``sqlite+aiosqlite://`` or ``postgresql+asyncpg://`` URL; ``await store.close()`` releases it.
"""

from storage.engine import make_engine, reader, single_statement, writer
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
    "reader",
    "single_statement",
    "upgrade",
    "writer",
]

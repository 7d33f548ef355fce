"""keybot's storage: SQLAlchemy Core tables, engines, Alembic migrations and the ``SqlStore``.

``await open_store(url)`` gives a migrated ``SqlStore`` (the ports of ``bot.ports``) for a
``sqlite+aiosqlite://`` or ``postgresql+asyncpg://`` URL; ``await store.close()`` releases it.

Modules: ``tables`` (the schema), ``engine`` (engines and transaction modes), ``migrations``
(Alembic), ``errors`` (database errors as domain errors), ``statements`` (the hot paths' Core
statements), ``fastpath`` (those statements on the raw driver), ``transaction`` (``SqlTransaction``)
and ``store`` (``SqlStore``, ``open_store``).
"""

from storage.engine import make_engine, reader, writer
from storage.errors import UNAVAILABLE
from storage.migrations import current_revision, downgrade, head_revision, upgrade
from storage.store import SqlStore, open_store
from storage.tables import metadata
from storage.transaction import SqlTransaction

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
    "upgrade",
    "writer",
]

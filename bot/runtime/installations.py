"""slack-sdk's installation and OAuth state stores on keybot's own database (keybot installed in many
workspaces, ``SLACK_CLIENT_ID`` / ``SLACK_CLIENT_SECRET``).

slack-sdk's ``AsyncSQLAlchemyInstallationStore`` and ``AsyncSQLAlchemyOAuthStateStore`` take an
``AsyncEngine`` and run plain SQLAlchemy Core on it, so they work on keybot's engine with either
async driver (aiosqlite, asyncpg); no sync engine or second driver is needed. The installation store
is read on every Slack request (Bolt's ``authorize``) and every DM, so it gets keybot's plain engine
(no write lock for a read on SQLite; AUTOCOMMIT on PostgreSQL); its rare writes (an install, a token
rotation) are slack-sdk's read-then-write. The state store, written once per install started and
once per callback, gets the *writer* engine (BEGIN IMMEDIATE on SQLite, READ COMMITTED on
PostgreSQL). Their tables are created by keybot's Alembic migrations (0007), never by
``create_tables``.
"""

from datetime import UTC, datetime

from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from sqlalchemy import and_
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import writer

STATE_SECONDS = 600  # an install started more than 10 minutes ago must start again


class OneUseStateStore(AsyncSQLAlchemyOAuthStateStore):
    """slack-sdk's state store, except that consuming a state is one ``DELETE``: of two callbacks
    carrying the same state at once (a replay racing the real one), exactly one finds it. slack-sdk's
    own ``async_consume`` reads, then deletes, so on PostgreSQL both could succeed."""

    async def async_consume(self, state: str) -> bool:
        now = datetime.now(UTC).replace(tzinfo=None)  # slack-sdk stores naive UTC
        c = self.oauth_states.c
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(self.oauth_states.delete().where(and_(c.state == state, c.expire_at > now)))
                return int(result.rowcount or 0) == 1
        except Exception as err:
            self.logger.warning("could not consume an OAuth state: %s", type(err).__name__)
            return False


def installation_stores(
    engine: AsyncEngine, *, client_id: str
) -> tuple[AsyncSQLAlchemyInstallationStore, OneUseStateStore]:
    """The installation store and the OAuth state store, on ``engine``'s database."""
    return (
        AsyncSQLAlchemyInstallationStore(client_id=client_id, engine=engine),
        OneUseStateStore(expiration_seconds=STATE_SECONDS, engine=writer(engine)),
    )

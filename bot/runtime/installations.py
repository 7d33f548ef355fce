"""slack-sdk's installation and OAuth state stores on keybot's own database (keybot installed in many
workspaces, ``SLACK_CLIENT_ID`` / ``SLACK_CLIENT_SECRET``).

slack-sdk's ``AsyncSQLAlchemyInstallationStore`` and ``AsyncSQLAlchemyOAuthStateStore`` take an
``AsyncEngine`` and run plain SQLAlchemy Core on it, so they work on keybot's engine with either
async driver (aiosqlite, asyncpg); no sync engine or second driver is needed. The installation store
is read on every Slack request (Bolt's ``authorize``) and every DM, so its reads run on keybot's plain
engine (no write lock for a read on SQLite; AUTOCOMMIT on PostgreSQL); its rare writes (an install, a
token rotation, an uninstall) are slack-sdk's read-then-write transactions, so they run on the *writer*
engine: on SQLite a deferred transaction that reads and then writes fails with "database is locked"
at once if another connection wrote in between, instead of waiting for the lock. The state store,
written once per install started and once per callback, gets the writer engine too (BEGIN IMMEDIATE on SQLite, READ COMMITTED on
PostgreSQL). Their tables are created by keybot's Alembic migrations (0007), never by
``create_tables``.
"""

from datetime import UTC, datetime

from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from sqlalchemy import and_, desc, select
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


class InstallationStore(AsyncSQLAlchemyInstallationStore):
    """slack-sdk's installation store, writing on the writer engine and reading on the plain one."""

    def __init__(self, *, client_id: str, engine: AsyncEngine) -> None:
        super().__init__(client_id=client_id, engine=writer(engine))
        self._reads = AsyncSQLAlchemyInstallationStore(client_id=client_id, engine=engine)

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        """slack-sdk's lookup; and a workspace asked for by its team id alone (keybot's organization
        key, as the outbox, the leak watch and offboarding know it) is found even when it belongs to an
        Enterprise Grid and was installed on its own: slack-sdk would look only among installations
        without an enterprise. Team ids are unique across Slack."""
        bot = await self._reads.async_find_bot(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install
        )
        if bot is None and enterprise_id is None and team_id is not None and not is_enterprise_install:
            enterprise = await self._enterprise_of(team_id)
            if enterprise is not None:
                bot = await self._reads.async_find_bot(enterprise_id=enterprise, team_id=team_id)
        return bot

    async def _enterprise_of(self, team_id: str) -> str | None:
        """The enterprise of the newest bot installed in workspace ``team_id`` on its own, if any."""
        c = self.bots.c
        query = (
            select(c.enterprise_id)
            .where(c.client_id == self.client_id, c.team_id == team_id, c.enterprise_id.is_not(None))
            .where(c.is_enterprise_install.is_(False))
            .order_by(desc(c.installed_at))
            .limit(1)
        )
        async with self._reads.engine.connect() as conn:
            return (await conn.execute(query)).scalar()

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        return await self._reads.async_find_installation(
            enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, is_enterprise_install=is_enterprise_install
        )


def installation_stores(
    engine: AsyncEngine, *, client_id: str
) -> tuple[InstallationStore, OneUseStateStore]:
    """The installation store and the OAuth state store, on ``engine``'s database."""
    return (
        InstallationStore(client_id=client_id, engine=engine),
        OneUseStateStore(expiration_seconds=STATE_SECONDS, engine=writer(engine)),
    )

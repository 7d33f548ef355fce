"""slack-sdk's installation store on keybot's database: installs (and token rotations) that happen at
the same time all land. slack-sdk saves with a read-then-write transaction; on SQLite a deferred one
fails with "database is locked" when another writer commits between its read and its write."""

import asyncio
from datetime import UTC, datetime

from slack_sdk.oauth.installation_store import Installation

from bot.runtime.installations import installation_stores
from storage import SqlStore


def installation(n: int) -> Installation:
    return Installation(
        app_id="A0KEYBOT",
        team_id=f"T{n:08d}",
        team_name=f"Team {n}",
        user_id=f"U{n:08d}",
        bot_token=f"xoxb-team-{n}",
        bot_id=f"B{n:08d}",
        bot_user_id=f"UB{n:07d}",
        bot_scopes="commands,chat:write",
        installed_at=datetime.now(UTC).timestamp() + n,
    )


async def test_installs_saved_at_the_same_time_all_land_and_are_found(store: SqlStore) -> None:
    installations, _ = installation_stores(store.engine, client_id="1.2")
    await asyncio.gather(*(installations.async_save(installation(n)) for n in range(24)))
    for n in range(24):
        bot = await installations.async_find_bot(enterprise_id=None, team_id=f"T{n:08d}")
        assert bot is not None and bot.bot_token == f"xoxb-team-{n}"
        found = await installations.async_find_installation(enterprise_id=None, team_id=f"T{n:08d}")
        assert found is not None and found.user_id == f"U{n:08d}"
    assert await installations.async_find_bot(enterprise_id=None, team_id="T99999999") is None

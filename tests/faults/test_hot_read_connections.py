"""PostgreSQL's hot reads (``/apikeys list``, first-time verifies) run on a pool of their own that does no
pre-ping (storage.fastpath.PgReader): when the server terminates its connections — as a restart or an
administrator does — the very next list and verify still answer, with nothing logged as an outage."""

import aiohttp
import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import make_url

from tests.faults.helpers import (
    KEY_RE,
    OWNER,
    Instance,
    SlackWithOutages,
    assert_private_and_clean,
    bootstrap,
    in_process_keybot,
    is_refusal,
)

pytestmark = pytest.mark.postgres


async def _terminate_keybots_connections(url: str) -> int:
    """``pg_terminate_backend`` on every other session of the database: keybot's hot pool and engine."""
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        return int(
            await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await conn.close()


async def _listed(kb: Instance) -> str:
    reply = await kb.cmd(OWNER, "list web")
    assert_private_and_clean(reply)
    assert not is_refusal(reply), reply.text
    return reply.text


async def test_the_next_list_and_verify_after_the_server_kills_every_connection_succeed(
    pg_url: str, slack: SlackWithOutages, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    await bootstrap(pg_url)
    async with in_process_keybot(url=pg_url, slack=slack, session=session) as kb:
        keys = KEY_RE.findall((await kb.cmd(OWNER, "project create web")).text)[:1]
        for n in range(6):
            keys += KEY_RE.findall((await kb.cmd(OWNER, f"create web k{n}")).text)[:1]
        assert len(keys) == 7
        assert "default" in await _listed(kb)
        assert (await kb.verify(keys[0]))[1]["valid"] is True  # the hot pool holds a connection now

        for key in keys[1:]:  # each round: a key never verified, so its verify reads the database
            assert await _terminate_keybots_connections(pg_url) >= 1
            assert "default" in await _listed(kb)
            status, verdict = await kb.verify(key)
            assert (status, verdict["valid"]) == (200, True), verdict

    assert not [r for r in caplog.records if "unavailable" in r.getMessage()]

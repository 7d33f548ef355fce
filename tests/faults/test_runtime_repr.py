"""A running keybot's repr (what a debugger, a log line or a traceback's locals would print) names its
database without the password, and none of its tokens."""

import pytest
from sqlalchemy import make_url

from bot.domain.hashing import HashParams
from bot.runtime import build_runtime
from bot.settings import Settings
from tests.faults.helpers import SlackWithOutages

PASSWORD = "hunter2-in-the-url"


@pytest.mark.postgres
async def test_the_runtime_repr_shows_no_database_password_and_no_token(pg_url: str, slack: SlackWithOutages) -> None:
    url = make_url(pg_url).set(password=PASSWORD).render_as_string(hide_password=False)  # trust auth ignores it
    settings = Settings(
        slack_bot_token="xoxb-token-in-settings",
        slack_signing_secret="signing-secret-in-settings",
        slack_api_url=slack.api_url,
        database_url=url,
        verify_token="verify-token-in-settings",
        hash_params=HashParams.cheapest(),
    )
    runtime = await build_runtime(settings)
    try:
        shown = repr(runtime) + str(runtime) + repr(runtime.settings) + repr(runtime.store.engine)
    finally:
        await runtime.aclose()

    assert make_url(pg_url).database in shown  # it does name the database
    for secret in (PASSWORD, "xoxb-token-in-settings", "signing-secret-in-settings", "verify-token-in-settings"):
        assert secret not in shown

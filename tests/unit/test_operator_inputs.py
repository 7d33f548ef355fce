"""What an operator types or configures: the settings' repr hides every secret and password, a
malformed DATABASE_URL is a SettingsError, and an organization's name is checked when given and
escaped wherever keybot shows it."""

import re

import pytest

from bot.domain.errors import InvalidInput
from bot.domain.model import Actor
from bot.domain.names import ORG_NAME_MAX, validate_org_name
from bot.services import Keybot
from bot.settings import Settings, SettingsError, load_settings, without_password
from tests.fakes import MemoryStore

TEAM = "T0001"
OWNER = Actor(TEAM, "U0OWNER")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://keybot:hunter2@db.internal:5432/keybot",
        "postgresql+asyncpg://keybot:hun@ter2@db.internal/keybot",  # an unencoded @ in the password
        "postgresql+asyncpg://keybot:hunter2/x?y#z@db.internal/keybot",
    ],
)
def test_the_settings_repr_shows_the_database_url_without_its_password_and_no_token(url: str) -> None:
    settings = Settings(
        database_url=url,
        slack_bot_token="xoxb-hunter2",
        slack_signing_secret="hunter2",
        slack_app_token="xapp-hunter2",
        verify_token="hunter2",
    )

    for text in (repr(settings), str(settings), repr([settings])):
        assert "hunter2" not in text and "ter2" not in text, text
        assert "keybot:***@" in text and "/keybot" in text


def test_a_url_without_a_password_is_shown_as_it_is() -> None:
    for url in ("sqlite+aiosqlite:///var/lib/keybot/keybot.db", "postgresql+asyncpg://keybot@db:5432/k"):
        assert without_password(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://u:hunter2@host:notaport/db",
        "postgresql+asyncpg://u:hunter2@host:99999/db",
        "postgresql+asyncpg://u:hunter2@[::1/db",
    ],
)
def test_a_database_url_with_a_malformed_port_is_a_settings_error_that_does_not_repeat_it(url: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"DATABASE_URL": url})

    assert "DATABASE_URL is malformed" in str(raised.value)
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize("name", ["Acme", "Acme Corp. (EU)", "Åcme ∞", "a", "x" * ORG_NAME_MAX, "Ac`me <!here>"])
def test_an_org_name_of_1_to_64_printable_characters_is_accepted(name: str) -> None:
    assert validate_org_name(name) == name


@pytest.mark.parametrize("name", ["", "   ", "x" * (ORG_NAME_MAX + 1), "Acme\nInc", "Acme\x1b[31m", "Ac\u200bme"])
def test_an_org_name_that_is_empty_too_long_or_not_printable_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        validate_org_name(name)


async def test_an_org_name_is_escaped_wherever_keybot_shows_it(keybot: Keybot, store: MemoryStore) -> None:
    # An org made before names were checked, or through another door than `keybot bootstrap`.
    await keybot.operators.bootstrap(team_id=TEAM, owner=OWNER.user_id, org_name="Ac`me <!channel>\x07")

    whoami = await keybot.people.whoami(OWNER)
    await keybot.people.grant(OWNER, user_id="U1NEW", role="member")

    notices = [row.notice for row in store.outbox(user_id="U1NEW")]
    shown = [whoami.org, *(n.org for n in notices if n is not None)]
    assert len(shown) == 2
    for text in shown:
        assert "`" not in text and "<" not in text and "\x07" not in text, text
        assert text.startswith("Ac'me ")


def test_a_client_id_and_secret_switch_oauth_on_and_no_bot_token_is_needed() -> None:
    settings = load_settings(
        {"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "hunter2", "SLACK_SIGNING_SECRET": "s3cr3t"}
    )
    assert settings.oauth and settings.slack_configured
    assert settings.slack_scopes == ("commands", "chat:write")
    settings.require_slack()
    assert "hunter2" not in repr(settings) and "1.2" in repr(settings)
    assert not load_settings({"SLACK_BOT_TOKEN": "xoxb-1"}).oauth


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"SLACK_CLIENT_ID": "1.2"}, "SLACK_CLIENT_ID is set but SLACK_CLIENT_SECRET is not"),
        ({"SLACK_CLIENT_SECRET": "x"}, "SLACK_CLIENT_SECRET is set but SLACK_CLIENT_ID is not"),
        ({"SLACK_SCOPES": "commands"}, "must include commands and chat:write"),
        ({"SLACK_SCOPES": "commands,chat:write,<!channel>"}, "bot scopes separated by commas"),
    ],
)
def test_incomplete_oauth_settings_say_what_is_missing(env: dict[str, str], says: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(says)):
        load_settings(env)


@pytest.mark.parametrize(
    ("extra", "says"),
    [({"SLACK_APP_TOKEN": "xapp-1"}, "needs HTTP mode"), ({"SLACK_SIGNING_SECRET": ""}, "SLACK_SIGNING_SECRET is not set")],
)
def test_oauth_needs_http_mode_and_a_signing_secret(extra: dict[str, str], says: str) -> None:
    env = {"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "x", "SLACK_SIGNING_SECRET": "s", **extra}
    with pytest.raises(SettingsError, match=says):
        load_settings(env).require_slack()

"""The newcomer's shell: `/dms` takes one name, a key row's menu is clickable like a button, and
`project create` says it created the project."""

from bot.settings import Settings
from tests.shell.conftest import reply_to, transcript


def test_dms_with_two_names_says_it_takes_one(settings: Settings) -> None:
    text = transcript(settings, "y", "/dms @ana @bob")
    assert "/dms takes one name" in reply_to(text, "/dms @ana @bob")


def test_project_create_in_the_shell_confirms_the_project(settings: Settings) -> None:
    text = transcript(settings, "y", "/apikeys project create web")
    assert "Created project `web`; its `default` key is below" in reply_to(text, "/apikeys project create web")


def test_a_key_rows_menu_offers_delete_and_clicking_it_asks_for_confirmation(settings: Settings) -> None:
    text = transcript(settings, "y", "/apikeys project create web", "/apikeys list web", "/click 4")
    listing = reply_to(text, "/apikeys list web")
    assert "[1] Show details" in listing and "[4] Delete…" in listing and "[5] Audit log" in listing
    asked = reply_to(text, "/click 4")
    assert "Delete key `default` (`kb_" in asked and "[1] Delete (danger)" in asked

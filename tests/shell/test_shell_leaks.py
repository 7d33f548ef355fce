"""Leaks and offboarding in ``keybot shell``: ``/say`` posts a message in #general the way Slack sends it
(a key in it is disabled, its owners DMed with buttons, the poster warned privately), ``/deactivate``
sends Slack's ``user_change`` (the user's roles end and the owners get their keys with buttons)."""

from bot.settings import Settings
from tests.shell.conftest import SECRET_RE, reply_to, transcript


def test_a_key_posted_with_say_is_disabled_and_the_dm_buttons_work(settings: Settings) -> None:
    created = transcript(settings, "y", "/apikeys project create web")
    [secret] = set(SECRET_RE.findall(created))
    said = f"/say the prod key is {secret}"
    text = transcript(settings, "/say nothing to see here", said, "/click 2", "/apikeys show web default")
    assert "only @ana sees" not in reply_to(text, "/say nothing to see here")
    shown = reply_to(text, said)
    assert "In #general, only @ana sees:" in shown and "delete the message" in shown
    assert "DM to @ana:" in shown and "posted key `default`" in shown and "keybot disabled it" in shown
    assert "[1] Roll (primary)  [2] Enable again  [3] Delete… (danger)" in shown
    assert "enabled" in reply_to(text, "/click 2").lower()
    assert "active" in reply_to(text, "/apikeys show web default")


def test_deactivate_ends_a_users_roles_and_dms_the_owners_their_keys(settings: Settings) -> None:
    transcript(
        settings, "y", "/apikeys project create web", "/apikeys grant @bob owner web", "/as bob", "/apikeys create web deploy"
    )
    text = transcript(settings, "/deactivate @bob", "/as bob", "/apikeys whoami")
    shown = reply_to(text, "/deactivate @bob")
    assert "Slack deactivated @bob." in shown
    assert "DM to @ana:" in shown and "was deactivated in Slack" in shown and "`deploy`" in shown
    assert "[1] Roll (primary)  [2] Delete… (danger)" in shown
    assert "no role" in reply_to(text, "/apikeys whoami").lower()


def test_after_the_last_owner_is_deactivated_the_next_shell_offers_to_make_you_owner(settings: Settings) -> None:
    first = transcript(settings, "y", "/deactivate @ana")
    assert "Slack deactivated @ana." in first
    declined = transcript(settings, "n", "/apikeys whoami")
    assert "This organization has no owner any more. Make you (@ana) its owner? [Y/n]" in declined
    assert "Nobody was made an owner" in declined
    again = transcript(settings, "y", "/apikeys whoami")
    assert "You (@ana) are now an owner of this organization." in again
    assert "owner" in reply_to(again, "/apikeys whoami")

"""Users in the shell: names become stable Slack ids, and typed mentions are escaped as Slack sends them."""

import pytest

from bot.settings import Settings
from bot.shell import SHELL_TEAM_ID, Shell, user_id_for


def test_a_name_maps_to_a_stable_uppercase_user_id_and_an_id_stays_itself() -> None:
    assert user_id_for("ana") == "UANA"
    assert user_id_for("Ana.Lopez") == "UANALOPEZ"
    assert user_id_for("x") == "UX0"
    assert user_id_for("U0123ABC") == "U0123ABC"
    with pytest.raises(ValueError):
        user_id_for("...")


async def test_typed_mentions_and_specials_are_sent_the_way_slack_escapes_them(settings: Settings) -> None:
    async with await Shell.open(settings, user="ana") as shell:
        assert shell.slack_text("grant @bob owner") == "grant <@UBOB|bob> owner"
        assert shell.slack_text("grant @U0123ABC owner") == "grant <@U0123ABC> owner"
        assert (
            shell.slack_text("a <b> & @here, mail ana@example.com")
            == "a &lt;b&gt; &amp; <!here>, mail ana@example.com"
        )
        assert shell.names["UBOB"] == "bob"


async def test_switching_user_changes_the_prompt_and_who_sends_the_next_command(settings: Settings) -> None:
    async with await Shell.open(settings, user="ana") as shell:
        await shell.start()
        assert shell.team_id == SHELL_TEAM_ID
        await shell.handle("y")
        assert shell.prompt == "@ana> "
        assert await shell.handle("/as bob") == "You are now @bob (UBOB)."
        assert shell.prompt == "@bob> "
        reply = await shell.handle("whoami")
        assert "You are @bob in keybot shell, with no role yet, so you can see no project or key." in reply
        assert "Ask an organization owner for one: @ana." in reply

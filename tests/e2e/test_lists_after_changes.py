"""A list is never older than the last change, over Slack's wire format: on SQLite keybot keeps pages of
keys until anything commits (``storage.fastpath.UnchangedReads``), so a change by another owner in
Slack, or by an operator's ``keybot`` process on the same database, shows in the very next list."""

from bot.slack.codec import ActionId
from tests.e2e.conftest import OWNER, TEAM, Harness
from tests.e2e.test_dead_letters import keybot_cli
from tests.e2e.test_keys_over_the_wire import KEY_RE, _project

NEWCOMER = "UNEWCOME1"


async def test_a_list_shows_every_change_made_since_the_last_one_in_slack_or_by_an_operator(
    harness: Harness,
) -> None:
    await _project(harness)
    for name in ("alpha", "beta"):
        assert KEY_RE.search((await harness.as_owner(f"create payments {name}")).text)
    before = await harness.cmd(NEWCOMER, "list payments")
    again = await harness.cmd(NEWCOMER, "list payments")
    assert "*alpha*" not in before.text and before.text == again.text  # refused, and kept so

    code, _, err = await keybot_cli(harness, "bootstrap", "--team-id", TEAM, "--owner", NEWCOMER)
    assert code == 0, err
    granted = await harness.cmd(NEWCOMER, "list payments")
    ask = await harness.cmd(OWNER, "delete payments alpha")
    await harness.driver.click(OWNER, ask.button(ActionId.DELETE_CONFIRM), response_url=ask.response_url)
    after_delete = await harness.cmd(NEWCOMER, "list payments")

    assert "*alpha*" in granted.text and "*beta*" in granted.text and "all 3" in granted.text
    assert "*alpha*" not in after_delete.text and "*beta*" in after_delete.text and "all 2" in after_delete.text

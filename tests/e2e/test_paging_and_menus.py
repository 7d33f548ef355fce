"""List pages that count keys as they are (no second "page 1"), audit paging both ways, a menu on
every key row, confirmations that end where they were shown, and `project create` that says what it
did — over Slack's wire format."""

from datetime import timedelta

from bot.shell.driver import Reply
from bot.slack.codec import ActionId
from tests.e2e.conftest import OWNER, Harness
from tests.e2e.test_keys_over_the_wire import KEY_RE, _project

STRANGER = "USTRANGE1"


async def _keys(harness: Harness, count: int, *, prefix: str = "k") -> None:
    for n in range(count):
        assert KEY_RE.search((await harness.as_owner(f"create payments {prefix}-{n:02d}")).text)


async def _click(harness: Harness, reply: Reply, action: ActionId) -> Reply:
    return await harness.driver.click(OWNER, reply.button(action), response_url=reply.response_url)


async def test_project_create_confirms_the_project_and_hands_over_its_default_key(harness: Harness) -> None:
    reply = await harness.as_owner("project create web")
    assert "Created project `web`; its `default` key is below" in reply.text
    assert "Copy it now" in reply.text and len(KEY_RE.findall(reply.text)) == 1


async def test_list_pages_say_which_keys_of_how_many_they_show(harness: Harness) -> None:
    await _project(harness)
    await _keys(harness, 44)  # 45 with `default`
    first = await harness.as_owner("list payments")
    assert "1–20 of 45, newest first" in first.text
    second = await _click(harness, first, ActionId.KEYS_OLDER)
    assert "21–40 of 45" in second.text
    third = await _click(harness, second, ActionId.KEYS_OLDER)
    assert "41–45 of 45" in third.text and "`default`" in third.text.replace("*default*", "`default`")
    assert [b["action_id"] for b in third.buttons()] == [ActionId.KEYS_NEWER]


async def test_keys_created_while_paging_never_make_a_second_page_one(harness: Harness) -> None:
    await _project(harness)
    await _keys(harness, 39)  # 40 keys: two full pages
    first = await harness.as_owner("list payments")
    second = await _click(harness, first, ActionId.KEYS_OLDER)
    assert "21–40 of 40" in second.text
    await _keys(harness, 5, prefix="late")  # five newer keys arrive while the user reads page two
    back = await _click(harness, second, ActionId.KEYS_NEWER)
    assert "6–25 of 45" in back.text, back.text
    assert ActionId.KEYS_NEWER in [b["action_id"] for b in back.buttons()]  # the five late keys are newer
    newest = await _click(harness, back, ActionId.KEYS_NEWER)
    assert "1–20 of 45" in newest.text
    assert ActionId.KEYS_NEWER not in [b["action_id"] for b in newest.buttons()]
    assert "*late-04*" in newest.text


async def test_the_audit_log_pages_both_ways(harness: Harness) -> None:
    await _project(harness)
    await _keys(harness, 25)  # 27 events: project created, default key, 25 keys
    first = await harness.as_owner("audit payments")
    assert [b["action_id"] for b in first.buttons()] == [ActionId.AUDIT_OLDER]
    older = await _click(harness, first, ActionId.AUDIT_OLDER)
    assert "created the project `payments`" in older.text
    assert ActionId.AUDIT_NEWER in [b["action_id"] for b in older.buttons()]
    newer = await _click(harness, older, ActionId.AUDIT_NEWER)
    assert "created key `k-24`" in newer.text and "page 1" in newer.text


async def test_each_row_of_a_list_has_a_menu_whose_delete_asks_for_confirmation_below(harness: Harness) -> None:
    await _project(harness)
    await _keys(harness, 1)
    listing = await harness.as_owner("list payments")
    ask = await harness.driver.click(OWNER, listing.menu_choice("Delete…"), response_url=listing.response_url)
    assert "Delete key `k-00`" in ask.text
    [posted] = harness.slack.responses_to(listing.response_url.rsplit("/", 1)[-1])
    assert posted.body.get("replace_original") is False  # the list stays; the question comes below
    done = await harness.driver.click(OWNER, ask.button(ActionId.DELETE_CONFIRM), response_url=ask.response_url)
    assert "Deleted key `k-00`" in done.text


async def test_a_menu_choice_is_authorized_like_the_command(harness: Harness) -> None:
    await _project(harness)
    listing = await harness.as_owner("list payments")
    stranger = await harness.driver.click(STRANGER, listing.menu_choice("Delete…"), response_url=listing.response_url)
    assert "Delete key" not in stranger.text
    assert "No project named `payments` that you can see" in stranger.text


async def test_a_forged_menu_value_is_refused_as_stale(harness: Harness) -> None:
    await _project(harness)
    forged = {"action_id": ActionId.KEY_MENU.value, "selected_option": {"text": {"type": "plain_text", "text": "x"},
                                                                         "value": "drop|payments|default"}}
    reply = await harness.driver.click(OWNER, forged)
    assert "out of date" in reply.text
    assert "*default*" in (await harness.as_owner("list payments")).text


async def test_an_expired_confirmation_replaces_its_buttons_and_gives_the_command_again(harness: Harness) -> None:
    await _project(harness)
    ask = await harness.as_owner("delete payments default")
    harness.clock.shift(timedelta(minutes=11))
    refused = await _click(harness, ask, ActionId.DELETE_CONFIRM)
    assert "expired" in refused.text and "`/apikeys delete payments default`" in refused.text
    [posted] = harness.slack.responses_to(ask.response_url.rsplit("/", 1)[-1])
    assert posted.body.get("replace_original") is True
    assert refused.buttons() == []
    harness.clock.reset()
    assert "*default*" in (await harness.as_owner("list payments")).text


async def test_a_used_confirmation_clicked_again_is_replaced_by_why_nothing_changed(harness: Harness) -> None:
    await _project(harness)
    ask = await harness.as_owner("delete payments default")
    await _click(harness, ask, ActionId.DELETE_CANCEL)
    again = await _click(harness, ask, ActionId.DELETE_CONFIRM)
    assert "already used" in again.text
    assert harness.slack.responses_to(ask.response_url.rsplit("/", 1)[-1])[-1].body.get("replace_original") is True


async def test_the_row_menu_shows_disables_enables_and_rolls_a_key(harness: Harness) -> None:
    await _project(harness)
    listing = await harness.as_owner("list payments")
    details = await harness.driver.click(OWNER, listing.menu_choice("Show details"), response_url=listing.response_url)
    assert "`default`" in details.text and "active" in details.text
    off = await harness.driver.click(OWNER, listing.menu_choice("Disable"), response_url=listing.response_url)
    assert "disabled" in off.text.lower()
    relisted = await harness.as_owner("list payments")
    on = await harness.driver.click(OWNER, relisted.menu_choice("Enable"), response_url=relisted.response_url)
    assert "enabled" in on.text.lower()
    rolled = await harness.driver.click(
        OWNER, relisted.menu_choice("Roll (new secret)"), response_url=relisted.response_url
    )
    assert len(KEY_RE.findall(rolled.text)) == 1 and rolled.message["response_type"] == "ephemeral"

"""Key commands over Slack's wire format: create, list, delete — secrets shown once, only to their creator."""

import json
import re
from datetime import timedelta

from bot.slack.codec import ActionId
from tests.e2e.conftest import OWNER, Harness

KEY_RE = re.compile(r"kb_[A-Za-z0-9]{10}_[A-Za-z0-9]{28}")
PROJECT_OWNER = "UPOWNER1"
SECOND_PROJECT_OWNER = "UPOWNER2"
READER = "UREADER1"
STRANGER = "USTRANGE1"


async def _project(h: Harness, name: str = "payments") -> str:
    reply = await h.as_owner(f"project create {name}")
    assert reply.status == 200, reply.text
    [secret] = KEY_RE.findall(reply.text)
    return secret


def _everything_slack_saw(h: Harness) -> str:
    calls = [json.dumps(call.args) for call in h.slack.calls]
    return "\n".join(calls)


async def test_project_create_shows_the_default_key_once_and_only_to_its_creator(harness: Harness) -> None:
    reply = await harness.as_owner("project create payments")
    assert reply.status == 200
    assert reply.message["response_type"] == "ephemeral"
    secrets_shown = KEY_RE.findall(json.dumps(reply.message))
    assert len(set(secrets_shown)) == 1
    assert "will not be shown again" in reply.text
    assert "default" in reply.text


async def test_created_secret_appears_in_no_web_api_call_and_no_later_message(harness: Harness) -> None:
    await _project(harness)
    await harness.as_owner(f"grant <@{PROJECT_OWNER}> owner payments")  # an owner told of the new key
    reply = await harness.as_owner("create payments checkout")
    [secret] = set(KEY_RE.findall(reply.text))
    await harness.slack.wait_for(
        lambda s: [c for c in s.dms_to(PROJECT_OWNER) if "created key `checkout`" in c.args["text"]]
    )
    listing = await harness.as_owner("list payments")
    audit = await harness.as_owner("audit payments")
    assert secret not in _everything_slack_saw(harness)
    assert secret not in json.dumps(listing.message)
    assert secret not in json.dumps(audit.message)
    assert secret not in "".join(json.dumps(r.body) for r in harness.slack.responses)
    masked = f"{secret[:14]}…{secret[-4:]}"
    assert masked in listing.text


async def test_list_shows_keys_masked_newest_first_with_creator_and_dates(harness: Harness) -> None:
    await _project(harness)
    await harness.as_owner("create payments alpha")
    await harness.as_owner("create payments beta")
    listing = await harness.as_owner("list payments")
    text = listing.text
    assert text.index("beta") < text.index("alpha") < text.index("default")
    assert f"<@{OWNER}>" in text
    assert "<!date^" in text
    assert "never" in text
    assert not KEY_RE.search(json.dumps(listing.message))


async def test_list_paginates_twenty_keys_per_page_with_buttons_that_replace_the_message(harness: Harness) -> None:
    await _project(harness)
    for i in range(44):
        await harness.as_owner(f"create payments k{i:02d}")
    first = await harness.as_owner("list payments")
    names = re.findall(r"\*(k\d\d|default)\*", first.text)
    assert names == [f"k{i:02d}" for i in range(43, 23, -1)]
    second = await harness.driver.click(OWNER, first.button(ActionId.KEYS_OLDER), response_url=first.response_url)
    assert second.status == 200
    [posted] = harness.slack.responses_to(first.response_url.rsplit("/", 1)[-1])
    assert posted.body["replace_original"] is True
    assert re.findall(r"\*(k\d\d|default)\*", second.text) == [f"k{i:02d}" for i in range(23, 3, -1)]
    third = await harness.driver.click(OWNER, second.button(ActionId.KEYS_OLDER))
    assert re.findall(r"\*(k\d\d|default)\*", third.text) == ["k03", "k02", "k01", "k00", "default"]
    assert not [b for b in third.buttons() if b["action_id"] == ActionId.KEYS_OLDER]
    back = await harness.driver.click(OWNER, third.button(ActionId.KEYS_NEWER))
    assert re.findall(r"\*(k\d\d|default)\*", back.text) == [f"k{i:02d}" for i in range(23, 3, -1)]


async def test_page_click_rechecks_authorization(harness: Harness) -> None:
    await _project(harness)
    for i in range(21):
        await harness.as_owner(f"create payments k{i:02d}")
    first = await harness.as_owner("list payments")
    await harness.as_owner(f"grant <@{READER}> read-only payments")
    reply = await harness.driver.click(READER, first.button(ActionId.KEYS_OLDER))
    assert "Only owners of `payments` can list keys" in reply.text
    assert reply.message.get("replace_original") is False


async def test_delete_asks_for_confirmation_with_a_danger_button_and_cancel(harness: Harness) -> None:
    secret = await _project(harness)
    reply = await harness.as_owner("delete payments default")
    delete = reply.button(ActionId.DELETE_CONFIRM)
    assert delete["style"] == "danger"
    assert delete["confirm"]["style"] == "danger"
    assert reply.button(ActionId.DELETE_CANCEL)["value"] == delete["value"]
    verify = await harness.session.post(f"{harness.base_url}/v1/keys/verify", json={"key": secret})
    assert (await verify.json())["valid"] is True


async def test_confirmed_delete_revokes_at_once_and_replaces_the_message(harness: Harness) -> None:
    secret = await _project(harness)
    await harness.session.post(f"{harness.base_url}/v1/keys/verify", json={"key": secret})
    ask = await harness.as_owner("delete payments default")
    done = await harness.driver.click(OWNER, ask.button(ActionId.DELETE_CONFIRM), response_url=ask.response_url)
    assert done.message["replace_original"] is True
    assert "Deleted key `default`" in done.text
    verify = await harness.session.post(f"{harness.base_url}/v1/keys/verify", json={"key": secret})
    assert await verify.json() == {"valid": False, "code": "NOT_FOUND"}
    listing = await harness.as_owner("list payments")
    assert "No keys in `payments`" in listing.text


async def test_second_click_on_a_used_confirmation_changes_nothing_and_says_why(harness: Harness) -> None:
    await _project(harness)
    await harness.as_owner("create payments spare")
    ask = await harness.as_owner("delete payments default")
    await harness.driver.click(OWNER, ask.button(ActionId.DELETE_CONFIRM), response_url=ask.response_url)
    again = await harness.driver.click(OWNER, ask.button(ActionId.DELETE_CONFIRM), response_url=ask.response_url)
    assert "already used" in again.text
    assert again.message["replace_original"] is True  # the used confirmation's buttons go away
    assert "spare" in (await harness.as_owner("list payments")).text


async def test_cancel_uses_up_the_confirmation(harness: Harness) -> None:
    await _project(harness)
    ask = await harness.as_owner("delete payments default")
    cancelled = await harness.driver.click(OWNER, ask.button(ActionId.DELETE_CANCEL), response_url=ask.response_url)
    assert "Cancelled" in cancelled.text
    assert cancelled.message["replace_original"] is True
    late = await harness.driver.click(OWNER, ask.button(ActionId.DELETE_CONFIRM))
    assert "already used" in late.text
    assert "default" in (await harness.as_owner("list payments")).text


async def test_another_users_click_changes_nothing_and_leaves_the_confirmation_usable(harness: Harness) -> None:
    await _project(harness)
    await harness.as_owner(f"grant <@{PROJECT_OWNER}> owner payments")
    ask = await harness.as_owner("delete payments default")
    theirs = await harness.driver.click(PROJECT_OWNER, ask.button(ActionId.DELETE_CONFIRM))
    assert f"Only <@{OWNER}>" in theirs.text
    assert "default" in (await harness.as_owner("list payments")).text
    mine = await harness.driver.click(OWNER, ask.button(ActionId.DELETE_CONFIRM))
    assert "Deleted key `default`" in mine.text


async def test_expired_confirmation_changes_nothing(harness: Harness) -> None:
    await _project(harness)
    ask = await harness.as_owner("delete payments default")
    harness.clock.shift(timedelta(minutes=10, seconds=1))
    late = await harness.driver.click(OWNER, ask.button(ActionId.DELETE_CONFIRM))
    harness.clock.reset()
    assert "expired" in late.text
    assert "default" in (await harness.as_owner("list payments")).text


async def test_forged_confirmation_value_is_refused(harness: Harness) -> None:
    await _project(harness)
    reply = await harness.driver.click(OWNER, {"action_id": ActionId.DELETE_CONFIRM, "value": "forged-token"})
    assert reply.status == 200
    assert "not valid" in reply.text
    assert "default" in (await harness.as_owner("list payments")).text


async def test_every_owner_but_the_actor_gets_a_dm_for_created_and_deleted_keys_without_the_secret(
    harness: Harness,
) -> None:
    await _project(harness)
    await harness.as_owner(f"grant <@{PROJECT_OWNER}> owner payments")
    await harness.as_owner(f"grant <@{SECOND_PROJECT_OWNER}> owner payments")
    await harness.as_owner(f"grant <@{READER}> read-only payments")
    created = await harness.cmd(PROJECT_OWNER, "create payments web")
    [secret] = set(KEY_RE.findall(created.text))
    ask = await harness.cmd(PROJECT_OWNER, "delete payments web")
    await harness.driver.click(PROJECT_OWNER, ask.button(ActionId.DELETE_CONFIRM))
    for user in (OWNER, SECOND_PROJECT_OWNER):  # the org owner and the other project owner
        dms = await harness.slack.wait_for(
            lambda s, u=user: [c for c in s.dms_to(u) if "deleted key `web`" in c.args["text"]]
        )
        texts = [c.args["text"] for c in harness.slack.dms_to(user)]
        assert any("created key `web`" in t for t in texts)
        assert dms and "payments" in dms[0].args["text"]
    await harness.outbox_drained()
    actor_texts = [c.args["text"] for c in harness.slack.dms_to(PROJECT_OWNER)]
    assert actor_texts and not any("key `web`" in t for t in actor_texts)  # only the DM about their grant
    reader_texts = [c.args["text"] for c in harness.slack.dms_to(READER)]
    assert not any("key `web`" in t for t in reader_texts)
    assert secret not in _everything_slack_saw(harness)


async def test_dms_survive_slack_answering_429_then_500_then_ok(harness: Harness) -> None:
    from bot.shell.fakeslack import RateLimited, ServerError

    await _project(harness)
    await harness.as_owner(f"grant <@{PROJECT_OWNER}> owner payments")
    await harness.outbox_drained()  # the DM about the grant is out of the way
    before = len(harness.slack.calls_to("chat.postMessage"))
    harness.slack.fail_next("chat.postMessage", RateLimited(retry_after=1), ServerError(500), ServerError(503))
    await harness.as_owner("create payments checkout")
    dm = await harness.slack.wait_for(
        lambda s: [c for c in s.dms_to(PROJECT_OWNER) if "checkout" in c.args["text"]], timeout=15
    )
    assert "created key `checkout`" in dm[0].args["text"]
    outcomes = [c.outcome for c in harness.slack.calls_to("chat.postMessage")][before:]
    assert outcomes == ["ratelimited", "server_error", "server_error", "ok"]
    await harness.outbox_drained()


async def test_cancelling_a_deletion_another_owner_already_confirmed_says_it_was_deleted(harness: Harness) -> None:
    await harness.as_owner("grant <@UOWNER02> owner")
    await harness.as_owner("project create payments")
    await harness.as_owner("create payments ci")
    asked = await harness.as_owner("delete payments ci")
    other = await harness.cmd("UOWNER02", "delete payments ci")
    done = await harness.driver.click("UOWNER02", other.button(ActionId.DELETE_CONFIRM), response_url=other.response_url)
    assert "Deleted key `ci`" in done.text
    cancelled = await harness.driver.click(OWNER, asked.button(ActionId.DELETE_CANCEL), response_url=asked.response_url)
    assert "already deleted" in cancelled.text and "was not deleted" not in cancelled.text and "`?`" not in cancelled.text

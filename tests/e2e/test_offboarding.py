"""A user deactivated in Slack, over the wire: a signed ``user_change`` event with ``deleted: true``
ends their roles at once, voids their pending delete confirmations, DMs the owners of the projects
where they created keys (with Roll / Delete… buttons), and tells the workspace's admins when the org
lost its last owner."""

from typing import Any

from bot.slack.codec import ActionId
from tests.e2e.conftest import OWNER, TEAM, Harness
from tests.e2e.test_leaks_in_slack import send
from tests.e2e.test_secret_never_leaks import KEY_RE

LEAVER = "ULEAVER1"
ADMIN = "UADMIN01"


def deactivated(user_id: str) -> dict[str, Any]:
    return {
        "type": "user_change",
        "user": {"id": user_id, "team_id": TEAM, "name": user_id.lower(), "deleted": True, "is_bot": False},
    }


def deactivation_dms(harness: Harness, user: str) -> list[dict[str, Any]]:
    return [c.args for c in harness.slack.dms_to(user) if "was deactivated in Slack" in str(c.args.get("text"))]


async def verify(harness: Harness, key: str) -> dict[str, object]:
    async with harness.session.post(f"{harness.base_url}/v1/keys/verify", json={"key": key}) as response:
        answer: dict[str, object] = await response.json()
        return answer


async def test_a_deactivated_users_roles_end_their_confirmations_void_and_owners_get_their_keys_with_buttons(
    harness: Harness,
) -> None:
    await harness.as_owner("project create payments")
    await harness.as_owner(f"grant <@{LEAVER}> owner payments")
    await harness.cmd(LEAVER, "create payments deploy")
    await harness.cmd(LEAVER, "create payments worker")
    ask = await harness.cmd(LEAVER, "delete payments default")
    confirm = ask.button(ActionId.DELETE_CONFIRM.value)
    await harness.outbox_drained()

    await send(harness, deactivated(LEAVER))

    assert "no role" in (await harness.cmd(LEAVER, "whoami")).text.lower()
    assert "No project named `payments`" in (await harness.cmd(LEAVER, "list payments")).text
    [dm] = deactivation_dms(harness, OWNER)
    assert f"<@{LEAVER}>" in dm["text"] and "`deploy`" in dm["text"] and "`worker`" in dm["text"]
    actions = [b["elements"] for b in dm["blocks"] if b["type"] == "actions"]
    assert [[e["action_id"] for e in row] for row in actions] == [[ActionId.LEAK_ROLL, ActionId.LEAK_DELETE]] * 2
    audit = await harness.as_owner("audit payments")
    assert f"keybot removed <@{LEAVER}>'s role *owner* in `payments` (deactivated in Slack)" in audit.text

    rolled = await harness.driver.click(OWNER, actions[0][0])
    assert "deploy" in rolled.text and KEY_RE.search(rolled.text)

    await harness.as_owner(f"grant <@{LEAVER}> owner payments")  # back (reactivated): the old confirmation stays void
    again = await harness.driver.click(LEAVER, confirm, response_url=ask.response_url)
    assert "already used" in again.text
    assert "default" in (await harness.as_owner("list payments")).text

    await harness.as_owner(f"revoke <@{LEAVER}> payments")
    await send(harness, deactivated(LEAVER))  # Slack sends user_change again for later profile changes
    assert len(deactivation_dms(harness, OWNER)) == 1


async def test_when_the_last_owner_is_deactivated_the_workspace_admins_are_told_how_to_name_one(
    harness: Harness,
) -> None:
    harness.slack.admins.add(ADMIN)
    await harness.as_owner("project create payments")
    reply = await harness.as_owner("create payments ci")
    [secret] = set(KEY_RE.findall(reply.text))
    await harness.outbox_drained()
    await send(harness, deactivated(OWNER))
    [dm] = [c.args["text"] for c in harness.slack.dms_to(ADMIN)]
    assert "last owner" in dm and f"keybot bootstrap --team-id {TEAM} --owner" in dm
    assert (await verify(harness, secret))["valid"] is True  # keys keep working: only access ended
    assert "no role" in (await harness.as_owner("whoami")).text.lower()


async def test_a_user_change_that_deactivates_nobody_changes_nothing(harness: Harness) -> None:
    await send(harness, {"type": "user_change", "user": {"id": OWNER, "team_id": TEAM, "deleted": False}})
    assert "owner" in (await harness.as_owner("whoami")).text

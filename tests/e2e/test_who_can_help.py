"""Every role means something visible, and every refusal names who can help — over the wire."""

import pytest

from tests.e2e.conftest import OWNER, Harness
from tests.e2e.test_keys_over_the_wire import _project

SECOND_OWNER = "UOWNER02"
PETE = "UPETE001"
ANA = "UANA0001"
BILLING = "UBILL001"
MEMBER = "UMEMB001"


@pytest.fixture
async def payments(harness: Harness) -> Harness:
    await _project(harness)
    await harness.as_owner(f"grant <@{SECOND_OWNER}> owner")
    await harness.as_owner(f"grant <@{PETE}> owner payments")
    await harness.as_owner(f"grant <@{ANA}> admin payments")
    await harness.as_owner(f"grant <@{BILLING}> billing-admin")
    await harness.as_owner(f"grant <@{MEMBER}> member")
    return harness


async def test_a_refused_list_names_the_owners_who_can_help(payments: Harness) -> None:
    reply = await payments.cmd(ANA, "list payments")
    assert reply.message["response_type"] == "ephemeral"
    assert (
        f"Only owners of `payments` can list keys: <@{OWNER}> and <@{SECOND_OWNER}> (organization owners) "
        f"or <@{PETE}> (project owner)." in reply.text
    )


@pytest.mark.parametrize("command", ["create payments ci", "delete payments default", "audit payments"])
async def test_every_refused_key_command_names_who_can_help(payments: Harness, command: str) -> None:
    reply = await payments.cmd(ANA, command)
    assert "Only owners of `payments` can" in reply.text and f"<@{PETE}> (project owner)" in reply.text


async def test_a_refused_org_action_names_the_organization_owners(payments: Harness) -> None:
    reply = await payments.cmd(PETE, "project create ledger")
    assert f"Only organization owners can create projects: <@{OWNER}> and <@{SECOND_OWNER}>." in reply.text


async def test_whoami_says_what_each_role_lets_you_do(payments: Harness) -> None:
    text = (await payments.cmd(ANA, "whoami")).text
    assert "*admin* in `payments` — you may see this project, see members, request keys (an owner approves each) — but not see or change its keys" in text
    owner = (await payments.as_owner("whoami")).text
    assert "a *owner* of the organization" not in owner  # grammar: "an owner"
    assert "an *owner* of the organization — you may do everything in every project" in owner
    nobody = (await payments.cmd("UNOBODY1", "whoami")).text
    assert "with no role yet" in nobody and f"<@{OWNER}>" in nobody


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        (BILLING, "Your organization role, *billing-admin*, lets you see only the projects where you hold a project role"),
        (MEMBER, "Your organization role, *member*, lets you see only the projects where you hold a project role"),
    ],
)
async def test_roles_that_see_no_project_say_why_and_who_can_help(payments: Harness, user: str, expected: str) -> None:
    text = (await payments.cmd(user, "projects")).text
    assert expected in text and f"<@{OWNER}>" in text


async def test_project_members_include_the_organization_owners_marked_as_such(payments: Harness) -> None:
    text = (await payments.cmd(ANA, "members payments")).text
    assert f"<@{OWNER}> — *owner* of the organization (controls this project's keys)" in text
    assert f"<@{PETE}> — *owner* in `payments`" in text and f"<@{ANA}> — *admin* in `payments`" in text

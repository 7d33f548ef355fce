"""help, whoami, projects, grant, revoke, members, audit — and who may do what — over the wire."""

import pytest

from bot.shell.fakeslack import Call, FakeSlack
from tests.e2e.conftest import OWNER, TEAM, Harness
from tests.e2e.test_keys_over_the_wire import _project

ADMIN = "UADMIN01"
READER = "UREADER1"
PROJECT_OWNER = "UPOWNER1"
BILLING = "UBILLING1"
NOBODY = "UNOBODY1"


@pytest.mark.parametrize("text", ["", "help", "HELP"])
async def test_help_is_private_and_lists_every_command(harness: Harness, text: str) -> None:
    reply = await harness.cmd(NOBODY, text)
    assert reply.status == 200
    assert reply.message["response_type"] == "ephemeral"
    for usage in ("whoami", "project create", "create <project> <key-name>", "delete", "grant", "revoke",
                  "members", "audit"):
        assert usage in reply.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lsit payments", "Did you mean `list`? Usage: `/apikeys list <project>`"),
        ("craete payments k", "Did you mean `create`? Usage: `/apikeys create <project> <key-name>"),
        ("memebrs", "Did you mean `members`?"),
        ("nonsense words", "`/apikeys help` lists what I can do."),
    ],
)
async def test_an_unknown_command_gets_the_nearest_one_and_its_usage_not_the_whole_help(
    harness: Harness, text: str, expected: str
) -> None:
    reply = await harness.cmd(NOBODY, text)
    assert reply.status == 200 and reply.message["response_type"] == "ephemeral"
    assert expected in reply.text
    assert "revoke" not in reply.text  # not the whole command list
    assert len(reply.text.strip().splitlines()) == 1


async def test_help_roles_explains_what_every_role_allows(harness: Harness) -> None:
    text = (await harness.cmd(NOBODY, "help roles")).text
    for role in ("owner", "billing-admin", "member", "admin", "read-write", "read-only"):
        assert f"*{role}* —" in text
    assert "read-only* — see this project, see members — but not see or change its keys" in text
    assert "*billing-admin* — see no project or key (the role is for billing only)" in text


@pytest.mark.parametrize("text", ["create payments my key", "project create my project"])
async def test_a_name_typed_as_several_words_gets_the_dashed_name_suggested(harness: Harness, text: str) -> None:
    await _project(harness)
    reply = await harness.as_owner(text)
    assert "have no spaces: did you mean `my-" in reply.text
    assert "New key" not in reply.text


@pytest.mark.parametrize("mention", ["<!channel>", "<!here>", "<!subteam^S123|@devs>", "@everyone", "<#C123|general>"])
async def test_granting_a_role_to_a_group_mention_says_it_is_not_a_person(harness: Harness, mention: str) -> None:
    reply = await harness.as_owner(f"grant {mention} owner")
    assert "is not a person; mention one person, like @ana" in reply.text


async def test_whoami_lists_roles(harness: Harness) -> None:
    await _project(harness)
    await harness.as_owner(f"grant <@{PROJECT_OWNER}|pat> owner payments")
    assert "an *owner* of the organization — you may do everything" in (await harness.as_owner("whoami")).text
    assert "*owner* in `payments` — you may create keys" in (await harness.cmd(PROJECT_OWNER, "whoami")).text
    assert "no role yet" in (await harness.cmd(NOBODY, "whoami")).text


async def test_projects_shows_only_projects_with_a_role_to_non_owners(harness: Harness) -> None:
    await _project(harness, "payments")
    await _project(harness, "search")
    await harness.as_owner(f"grant <@{READER}> read-only search")
    assert "`payments`" in (await harness.as_owner("projects")).text
    mine = (await harness.cmd(READER, "projects")).text
    assert "`search`" in mine and "`payments`" not in mine


@pytest.mark.parametrize("role", ["admin", "read-write", "read-only"])
async def test_project_roles_below_owner_cannot_touch_keys(harness: Harness, role: str) -> None:
    await _project(harness)
    await harness.as_owner(f"grant <@{ADMIN}> {role} payments")
    for text in ("create payments x", "list payments", "delete payments default", "audit payments"):
        reply = await harness.cmd(ADMIN, text)
        assert reply.status == 200
        assert "Only owners of `payments` can " in reply.text and f"<@{OWNER}> (organization owner)" in reply.text
    assert "members of" in (await harness.cmd(ADMIN, "members payments")).text.lower()


@pytest.mark.parametrize("org_role", ["billing-admin", "member"])
async def test_org_roles_other_than_owner_cannot_see_or_touch_projects(harness: Harness, org_role: str) -> None:
    await _project(harness)
    await harness.as_owner(f"grant <@{BILLING}> {org_role}")
    for text in ("create payments x", "list payments", "delete payments default", "members payments"):
        assert "No project named `payments` that you can see" in (await harness.cmd(BILLING, text)).text
    assert f"Only organization owners can create projects: <@{OWNER}>." in (
        await harness.cmd(BILLING, "project create x")
    ).text


async def test_project_owner_manages_its_project_but_not_the_org(harness: Harness) -> None:
    await _project(harness, "payments")
    await _project(harness, "search")
    await harness.as_owner(f"grant <@{PROJECT_OWNER}> owner payments")
    assert "created" not in (await harness.cmd(PROJECT_OWNER, "create search x")).text.lower()
    assert "Copy it now" in (await harness.cmd(PROJECT_OWNER, "create payments x")).text
    assert f"<@{READER}> is now *read-only* in `payments`. That lets them" in (
        await harness.cmd(PROJECT_OWNER, f"grant <@{READER}> read-only payments")).text
    assert f"Only organization owners can grant or revoke organization roles: <@{OWNER}>." in (
        await harness.cmd(PROJECT_OWNER, f"grant <@{READER}> owner")).text
    assert f"Only organization owners can create projects: <@{OWNER}>." in (
        await harness.cmd(PROJECT_OWNER, "project create other")).text


async def test_grant_and_revoke_dm_the_user_but_not_the_actor(harness: Harness) -> None:
    await _project(harness)
    granted = await harness.as_owner(f"grant <@{READER}|rita> read-only payments")
    revoked = await harness.as_owner(f"revoke <@{READER}> payments")
    assert "They got a DM." in granted.text
    assert f"<@{READER}> is no longer *read-only* in `payments`. They got a DM." in revoked.text

    def told(s: FakeSlack) -> list[Call]:  # the two may come as one DM of two lines: all READER was sent
        dms = s.dms_to(READER)
        return dms if any("removed your role" in c.args["text"] for c in dms) else []

    texts = "\n".join(c.args["text"] for c in await harness.slack.wait_for(told))
    assert f"<@{OWNER}> made you *read-only* in `payments`" in texts
    assert f"<@{OWNER}> removed your role *read-only* in `payments`" in texts
    await harness.outbox_drained()
    assert harness.slack.dms_to(OWNER) == []


async def test_the_last_org_owner_cannot_be_revoked(harness: Harness) -> None:
    reply = await harness.as_owner(f"revoke <@{OWNER}>")
    assert "at least one owner" in reply.text
    assert "*owner* of the organization" in (await harness.as_owner("whoami")).text


async def test_members_lists_roles_in_org_and_project(harness: Harness) -> None:
    await _project(harness)
    await harness.as_owner(f"grant <@{READER}> read-only payments")
    org = (await harness.as_owner("members")).text
    assert f"<@{OWNER}> — *owner*" in org
    project = (await harness.cmd(READER, "members payments")).text
    assert f"<@{READER}> — *read-only*" in project


async def test_audit_shows_who_did_what_to_which_key_masked(harness: Harness) -> None:
    await _project(harness)
    await harness.as_owner("create payments web")
    reply = await harness.as_owner("audit payments")
    assert f"<@{OWNER}> created key `web` (`kb_" in reply.text
    assert "<!date^" in reply.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("create payments", "Missing argument. Usage"),
        ("create payments a b", "did you mean `a-b`"),
        ("create payments bad/name", "is not a valid key name"),
        ("create payments café", "ASCII letters"),
        ("create -bad x", "is not a valid project name"),
        ("create nosuch x", "No project named `nosuch`"),
        ("delete payments nosuch", "No key named `nosuch` in `payments`"),
        ("create payments default", "already exists"),
        ("project create payments", "already exists"),
        ("project delete payments", "is not a command"),
        ("grant bob owner", "is not a user"),
        ("grant <@UX1> superuser", "is not an organization role"),
        ("grant <@UX1> superuser payments", "is not a project role"),
        ("grant <@UX1> admin", "is not an organization role"),
        ("revoke <@UX1>", "has no organization role"),
        ("list payload", "No project named `payload`"),
        ("create payments payload", "Copy it now"),
    ],
)
async def test_wrong_input_gets_a_specific_private_message(harness: Harness, text: str, expected: str) -> None:
    await _project(harness)
    reply = await harness.as_owner(text)
    assert reply.status == 200
    assert reply.message["response_type"] == "ephemeral"
    assert expected in reply.text


async def test_another_workspace_sees_and_changes_nothing(harness: Harness) -> None:
    await _project(harness)
    for text in ("list payments", "create payments x", "projects", "whoami", "members",
                 f"grant <@{NOBODY}> owner"):
        reply = await harness.cmd(OWNER, text, team_id="TOTHER01")
        assert "not set up for this workspace" in reply.text
    assert "`x`" not in (await harness.as_owner("list payments")).text
    assert TEAM != "TOTHER01"


async def test_bad_signature_and_old_timestamp_get_401_and_change_nothing(harness: Harness) -> None:
    import time

    from bot.shell.wire import post_signed, slash_command_body

    body = slash_command_body(text="project create sneaky", user_id=OWNER, team_id=TEAM,
                              response_url=harness.slack.response_url("x"))
    url = harness.driver.events_url
    bad, _ = await post_signed(harness.session, url, body, signing_secret="wrong-secret")
    old, _ = await post_signed(harness.session, url, body, signing_secret=harness.driver.signing_secret,
                               timestamp=int(time.time()) - 360)
    assert (bad, old) == (401, 401)
    assert "sneaky" not in (await harness.as_owner("projects")).text

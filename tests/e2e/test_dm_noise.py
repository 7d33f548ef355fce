"""DMs that tell people something: not the actor about their own change, one DM for a burst of
changes, roles explained where they are given, dates that read naturally — over the wire."""

import asyncio

import pytest

from tests.e2e.conftest import OWNER, Harness
from tests.e2e.test_keys_over_the_wire import _project

SECOND_OWNER = "UOWNER02"
ANA = "UANA0001"


@pytest.fixture
def e2e_overrides() -> dict[str, object]:
    return {"dm_merge_seconds": 1}


async def _dm_texts(h: Harness, user: str, *, at_least: int) -> list[str]:
    async with asyncio.timeout(10):
        while len(h.slack.dms_to(user)) < at_least:
            await asyncio.sleep(0.02)
    await h.outbox_drained()
    return [str(call.args.get("text", "")) for call in h.slack.dms_to(user)]


async def test_a_burst_of_creates_reaches_the_other_owner_as_one_dm_and_the_actor_not_at_all(harness: Harness) -> None:
    await _project(harness)
    await harness.as_owner(f"grant <@{SECOND_OWNER}> owner")
    await _dm_texts(harness, SECOND_OWNER, at_least=1)  # the grant
    before = len(harness.slack.dms_to(SECOND_OWNER))
    for n in range(5):
        assert "Copy it now" in (await harness.as_owner(f"create payments burst-{n}")).text
    texts = (await _dm_texts(harness, SECOND_OWNER, at_least=before + 1))[before:]
    assert len(texts) == 1
    assert texts[0].startswith("5 changes in keybot:")
    assert all(f"`burst-{n}`" in texts[0] for n in range(5))
    assert harness.slack.dms_to(OWNER) == []


async def test_a_grant_tells_the_grantee_what_the_role_allows_and_reads_naturally(harness: Harness) -> None:
    await _project(harness)
    reply = await harness.as_owner(f"grant <@{ANA}|ana> read-only payments")
    assert f"<@{ANA}> is now *read-only* in `payments`. That lets them see this project, see members" in reply.text
    assert "but not see or change its keys" in reply.text
    [dm] = await _dm_texts(harness, ANA, at_least=1)
    assert f"<@{OWNER}> made you *read-only* in `payments`, <!date^" in dm
    assert "That lets you see this project, see members — but not see or change its keys." in dm
    assert " on <!date" not in dm


async def test_changing_a_role_says_from_what_to_what_and_revoking_names_the_role(harness: Harness) -> None:
    await _project(harness)
    await harness.as_owner(f"grant <@{ANA}> read-only payments")
    changed = await harness.as_owner(f"grant <@{ANA}> owner payments")
    assert f"<@{ANA}> is now *owner* in `payments` (was read-only)." in changed.text
    revoked = await harness.as_owner(f"revoke <@{ANA}> payments")
    assert f"<@{ANA}> is no longer *owner* in `payments`." in revoked.text
    dms = await _dm_texts(harness, ANA, at_least=1)
    assert "(you were read-only)" in "".join(dms) and "removed your role *owner* in `payments`" in "".join(dms)


async def test_revoking_your_own_role_answers_you_and_sends_no_dm_in_the_third_person(harness: Harness) -> None:
    await _project(harness)
    await harness.as_owner(f"grant <@{SECOND_OWNER}> owner")
    await harness.cmd(SECOND_OWNER, f"grant <@{SECOND_OWNER}> owner payments")
    reply = await harness.cmd(SECOND_OWNER, f"revoke <@{SECOND_OWNER}> payments")
    assert "You are no longer *owner* in `payments`." in reply.text
    await harness.outbox_drained()
    assert not any("removed your role" in str(c.args.get("text")) for c in harness.slack.dms_to(SECOND_OWNER))


async def test_org_role_wording_and_the_audit_reads_as_sentences(harness: Harness) -> None:
    await _project(harness)
    assert f"<@{ANA}> is now a *member* of the organization." in (await harness.as_owner(f"grant <@{ANA}> member")).text
    await harness.as_owner(f"grant <@{ANA}> admin payments")
    await harness.as_owner(f"revoke <@{ANA}> payments")
    audit = (await harness.as_owner("audit payments")).text
    assert f"<@{OWNER}> made <@{ANA}> *admin* in `payments`" in audit
    assert f"<@{OWNER}> removed <@{ANA}>'s role *admin* in `payments`" in audit
    assert f"<@{OWNER}> created key `default`" in audit and f"<@{OWNER}> created the project `payments`" in audit

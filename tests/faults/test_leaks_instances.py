"""Leaks with two keybot instances on one PostgreSQL database (DESIGN.md §5.5): the same Slack message
delivered to both (Slack retries an event; a load balancer picks another instance), or the same GitHub
report posted to both at once, disables the key and DMs each owner once, and warns the poster once;
the other instance refuses the key too."""

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.shell.wire import event_body, post_signed
from tests.e2e.test_github_leaks import GitHubStandIn, github, report  # noqa: F401 (the fixture)
from tests.faults.helpers import (
    OWNER,
    TEAM,
    Instance,
    SlackWithOutages,
    bootstrap,
    eventually,
    in_process_keybot,
)
from tests.procs import SIGNING_SECRET, PostgresUnreachable, fresh_postgres_database

pytestmark = [pytest.mark.postgres]
SECOND_OWNER = "UOWNER02"
KEY_RE = r"kb_[A-Za-z0-9]{10}_[A-Za-z0-9]{28}"


@contextlib.asynccontextmanager
async def two_instances(github_keys_url: str | None = None) -> AsyncIterator[tuple[Instance, Instance, SlackWithOutages]]:
    async with contextlib.AsyncExitStack() as stack:
        try:
            url = await stack.enter_async_context(fresh_postgres_database())
        except PostgresUnreachable as err:
            pytest.fail(str(err))
        slack = await stack.enter_async_context(SlackWithOutages())
        session = await stack.enter_async_context(aiohttp.ClientSession())
        await bootstrap(url, owners=(OWNER, SECOND_OWNER))
        a = await stack.enter_async_context(
            in_process_keybot(url=url, slack=slack, session=session, github_keys_url=github_keys_url)
        )
        b = await stack.enter_async_context(
            in_process_keybot(url=url, slack=slack, session=session, github_keys_url=github_keys_url)
        )
        yield a, b, slack


async def new_key(a: Instance) -> str:
    await a.cmd(OWNER, "project create payments")
    reply = await a.cmd(OWNER, "create payments ci")
    [secret] = set(re.findall(KEY_RE, reply.text))
    await a.outbox_drained()
    return secret


async def settled(*instances: Instance) -> None:
    for instance in instances:
        assert instance.runtime.watch is not None
        await instance.runtime.watch.idle()
    for instance in instances:
        await instance.outbox_drained()


def leak_dms(slack: SlackWithOutages, user: str, marker: str) -> list[str]:
    return [str(c.args.get("text")) for c in slack.dms_to(user) if marker in str(c.args.get("text"))]


async def test_a_message_delivered_to_two_instances_disables_the_key_and_dms_each_owner_once() -> None:
    async with two_instances() as (a, b, slack):
        secret = await new_key(a)
        assert (await b.verify(secret))[1]["valid"] is True  # cached as valid on b
        event = {"type": "message", "channel": "C0GENERAL", "user": "UPOSTER1", "text": secret, "ts": "1700000000.000100"}
        body = event_body(event=event, team_id=TEAM)
        statuses = await asyncio.gather(
            *(
                post_signed(i.session, f"{i.base_url}/slack/events", body, signing_secret=SIGNING_SECRET, content_type="application/json")
                for i in (a, b)
            )
        )
        assert [status for status, _ in statuses] == [200, 200]
        await settled(a, b)
        for owner in (OWNER, SECOND_OWNER):
            assert len(leak_dms(slack, owner, "posted key")) == 1
        assert len(slack.calls_to("chat.postEphemeral")) == 1

        async def refused_on_b() -> bool:
            return (await b.verify(secret))[1] == {"valid": False, "code": "DISABLED"}

        await eventually(refused_on_b, within=10)


async def test_a_github_report_posted_to_two_instances_at_once_dms_each_owner_once(github: GitHubStandIn) -> None:  # noqa: F811
    async with two_instances(github.url) as (a, b, slack):
        secret = await new_key(a)
        body = report(secret)

        async def post(instance: Instance) -> tuple[int, object]:
            url = f"{instance.base_url}/v1/leaks/github"
            async with instance.session.post(url, data=body, headers=github.sign(body)) as response:
                return response.status, await response.json()

        answers = await asyncio.gather(post(a), post(b), post(a))  # a replay too
        assert all(status == 200 and answer[0]["label"] == "true_positive" for status, answer in answers)  # type: ignore[index]
        await settled(a, b)
        for owner in (OWNER, SECOND_OWNER):
            assert len(leak_dms(slack, owner, "GitHub found")) == 1
        assert (await a.verify(secret))[1] == {"valid": False, "code": "DISABLED"}

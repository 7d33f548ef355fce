"""The Slack stand-in (bot/shell/fakeslack.py) and Slack's request wire format (bot/shell/wire.py)."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.shell.fakeslack import FakeSlack, Hang, RateLimited, ServerError, SlackError
from bot.shell.wire import block_actions_body, post_signed, sign, slash_command_body


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(team_id="T9") as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(base_url=slack.api_url, token="xoxb-test")


async def test_post_message_is_recorded_with_args_and_token(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]
    answer = await client.chat_postMessage(channel="C1", text="hi", blocks=blocks)

    assert answer["ok"] is True and answer["channel"] == "C1" and answer["ts"]
    [call] = slack.calls_to("chat.postMessage")
    assert call.args["channel"] == "C1" and call.args["blocks"] == blocks
    assert call.token == "xoxb-test" and call.outcome == "ok"


async def test_form_encoded_blocks_are_decoded_from_json(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    blocks = [{"type": "divider"}]
    await client.api_call("chat.postMessage", data={"channel": "C1", "blocks": json.dumps(blocks)})

    assert slack.calls_to("chat.postMessage")[0].args["blocks"] == blocks


async def test_chat_update_changes_a_posted_message_and_refuses_one_that_does_not_exist(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel="U1", text="before", blocks=[{"type": "divider"}])
    assert (posted["channel"], posted["message"]["ts"]) == ("DU1", posted["ts"])
    updated = await client.chat_update(channel=posted["channel"], ts=posted["ts"], text="after", blocks=[])
    assert (updated["channel"], updated["ts"]) == (posted["channel"], posted["ts"])
    assert slack.message("DU1", posted["ts"]) == {"type": "message", "text": "after", "blocks": [], "ts": posted["ts"]}
    assert [c.args["text"] for c in slack.updates_of("DU1", posted["ts"])] == ["after"]
    with pytest.raises(SlackApiError, match="message_not_found"):
        await client.chat_update(channel="DU1", ts="1.000999", text="nothing there")
    assert slack.calls_to("chat.update")[-1].outcome == "slack_error"


async def test_auth_test_users_info_and_conversations_open_answer_like_slack(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    slack.users["U1"] = "Ana"

    auth = await client.auth_test()
    user = await client.users_info(user="U1")
    opened = await client.conversations_open(users="U2")

    assert auth["team_id"] == "T9" and auth["user_id"] == slack.bot_user_id
    assert user["user"]["name"] == "u1" and user["user"]["real_name"] == "Ana"
    assert opened["channel"]["id"] == "DU2"


async def test_dms_to_finds_messages_to_the_user_or_its_dm_channel(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    await client.chat_postMessage(channel="U1", text="one")
    await client.chat_postMessage(channel="DU1", text="two")
    await client.chat_postMessage(channel="U2", text="other")

    assert [call.args["text"] for call in slack.dms_to("U1")] == ["one", "two"]


async def test_rate_limited_call_answers_429_with_retry_after(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    slack.fail_next("chat.postMessage", RateLimited(retry_after=7))

    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="U1", text="hi")
    await client.chat_postMessage(channel="U1", text="hi")

    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "7"
    assert caught.value.response["error"] == "ratelimited"
    assert [c.outcome for c in slack.calls_to("chat.postMessage")] == ["ratelimited", "ok"]
    assert len(slack.dms_to("U1")) == 1


async def test_server_error_answers_with_its_status(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    slack.fail_next("chat.postMessage", ServerError(status=503))

    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="U1", text="hi")

    assert caught.value.response.status_code == 503
    assert slack.calls_to("chat.postMessage")[0].outcome == "server_error"
    assert slack.dms_to("U1") == []


async def test_slack_error_answers_200_with_ok_false(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    slack.fail_next("chat.postMessage", SlackError("channel_not_found"))

    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="U1", text="hi")

    assert caught.value.response.status_code == 200
    assert caught.value.response["error"] == "channel_not_found"


async def test_queued_failures_are_used_in_order_then_calls_succeed(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    slack.fail_next("auth.test", ServerError(), SlackError("invalid_auth"))

    for _ in range(2):
        with pytest.raises(SlackApiError):
            await client.auth_test()
    assert (await client.auth_test())["ok"] is True
    assert [c.outcome for c in slack.calls_to("auth.test")] == ["server_error", "slack_error", "ok"]


async def test_hang_holds_the_answer_back_until_the_client_gives_up(slack: FakeSlack) -> None:
    slack.fail_next("chat.postMessage", Hang(600.0))  # far past the client's timeout: only it can end the call
    impatient = AsyncWebClient(base_url=slack.api_url, token="xoxb-test", timeout=1)

    with pytest.raises(asyncio.TimeoutError):
        await impatient.chat_postMessage(channel="U1", text="hi")

    [call] = slack.calls_to("chat.postMessage")
    assert call.outcome == "hang" and call.delivered  # Slack may still carry out a call it answers late
    assert (await impatient.chat_postMessage(channel="U1", text="again"))["ok"] is True  # only the next call


async def test_a_hang_ends_in_a_normal_answer(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.fail_next("chat.postMessage", Hang(0.1))

    answer = await client.chat_postMessage(channel="U1", text="hi")

    assert answer["ok"] is True
    assert [c.outcome for c in slack.calls_to("chat.postMessage")] == ["hang"]
    assert len(slack.dms_to("U1")) == 1


async def test_closing_the_stand_in_releases_a_hung_call() -> None:
    async with FakeSlack() as slack:
        slack.fail_next("chat.postMessage", Hang(600.0))
        client = AsyncWebClient(base_url=slack.api_url, token="xoxb-test", timeout=60)
        hung = asyncio.create_task(client.chat_postMessage(channel="U1", text="hi"))
        await slack.wait_for(lambda s: s.calls_to("chat.postMessage"))
        assert not hung.done()
    assert (await hung)["ok"] is True  # answered when the server shut down, not after 600 s


async def test_response_url_posts_are_recorded(slack: FakeSlack) -> None:
    async with aiohttp.ClientSession() as session:
        reply = await session.post(slack.response_url("r1"), json={"text": "done"})

    assert reply.status == 200
    assert [r.body for r in slack.responses_to("r1")] == [{"text": "done"}]
    assert slack.responses[0].name == "r1"


async def test_wait_for_returns_once_the_predicate_holds(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    waiter = asyncio.create_task(slack.wait_for(lambda s: s.dms_to("U1"), timeout=2.0))
    await asyncio.sleep(0.05)
    assert not waiter.done()

    await client.chat_postMessage(channel="U1", text="hi")

    [dm] = await waiter
    assert dm.args["text"] == "hi"


async def test_wait_for_times_out_with_a_message_naming_the_calls(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    await client.auth_test()

    with pytest.raises(TimeoutError, match=r"auth\.test\(ok\)"):
        await slack.wait_for(lambda s: s.dms_to("U1"), timeout=0.1)


def test_signature_is_accepted_by_slack_sdk_verifier() -> None:
    body = b"token=x&text=hello"
    headers = sign("s3cret", body, timestamp=int(time.time()))

    verifier = SignatureVerifier("s3cret")
    ts, sig = headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    assert verifier.is_valid(body, ts, sig)
    assert not SignatureVerifier("other").is_valid(body, ts, sig)


def test_slash_body_with_the_word_payload_parses_to_its_text() -> None:
    body = slash_command_body(
        text="create payload-svc <@U2|bob>", user_id="U1", team_id="T1", response_url="http://x/r"
    )

    fields = parse_qs(body.decode(), strict_parsing=True)
    assert fields["text"] == ["create payload-svc <@U2|bob>"]
    assert fields["command"] == ["/apikeys"] and fields["user_id"] == ["U1"]
    assert list(fields) == [
        "token",
        "team_id",
        "team_domain",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "api_app_id",
        "is_enterprise_install",
        "response_url",
        "trigger_id",
    ]


def test_block_actions_body_on_an_ephemeral_message_has_no_message_field() -> None:
    body = block_actions_body(
        user_id="U1", team_id="T1", action_id="delete", value="p1", response_url="http://x/r"
    )

    payload = json.loads(parse_qs(body.decode())["payload"][0])
    assert "message" not in payload
    assert payload["type"] == "block_actions" and payload["container"]["is_ephemeral"] is True
    assert payload["actions"][0]["action_id"] == "delete"
    assert payload["actions"][0]["value"] == "p1"


async def test_post_signed_sends_a_body_the_receiver_can_verify() -> None:
    seen: dict[str, bool] = {}

    async def receive(request: aiohttp.web.Request) -> aiohttp.web.Response:
        body = await request.read()
        seen["valid"] = SignatureVerifier("s3cret").is_valid_request(body, dict(request.headers))
        return aiohttp.web.Response(text="thanks")

    app = aiohttp.web.Application()
    app.router.add_post("/slack/events", receive)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    await aiohttp.web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession() as session:
            status, text = await post_signed(
                session, f"http://{host}:{port}/slack/events", b"a=1", signing_secret="s3cret"
            )
    finally:
        await runner.cleanup()

    assert (status, text) == (200, "thanks")
    assert seen == {"valid": True}

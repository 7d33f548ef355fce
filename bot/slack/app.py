"""The Bolt app factory. Listeners ack, parse, call a service, build blocks, respond — nothing else.

Every reply is ephemeral: slash commands answer in the ack body (``process_before_response=True``
makes it the HTTP response; the listener returns it to Bolt as a ``BoltResponse``, serialized by
orjson), clicks answer through ``respond()`` on their ``response_url``.

Slack drops an ack that comes after 3 seconds. A command still working after ``ack_budget``
(2 s) is acked with a private "working on it" and its reply follows through ``respond()`` — so a
key created while argon2 has a queue still shows its secret once, to its creator only.
"""

import asyncio
import logging
import re
from collections.abc import Awaitable
from typing import Any

import orjson
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.errors import InvalidInput
from bot.domain.model import Actor
from bot.services import Keybot
from bot.slack import blocks
from bot.slack.actions import ACTIONS, ANSWER_BELOW
from bot.slack.codec import STALE, ActionId, action_id_named
from bot.slack.commands import reads_only, run_command
from bot.slack.errors import guarded
from bot.slack.events import EventWatch
from bot.slack.home_refresh import HomePublisher
from bot.slack.installs import NOT_INSTALLED, OAuthParts, context_org_key, oauth_flow, register_uninstalls
from bot.slack.views import open_create_command, opens_create_modal, register_views

COMMAND = "/apikeys"
SLOW_READ = "The key database is slow to answer right now, so nothing was shown. Try again in a moment."


def _actor(context: AsyncBoltContext) -> Actor:
    """Who is acting, as Bolt read it from the request (``context.user_id``, ``team_id``, ``enterprise_id``);
    in an org-wide Enterprise Grid install the enterprise id stands for the team id (``org_key``)."""
    user_id, team_id, enterprise_id = context.user_id, context_org_key(context), context.enterprise_id
    if not isinstance(user_id, str) or not isinstance(team_id, str) or not user_id or not team_id:
        raise InvalidInput("This request did not say who sent it.")
    return Actor(
        team_id=team_id, user_id=user_id, enterprise_id=enterprise_id if isinstance(enterprise_id, str) else None
    )


class _TokenFromEnvironmentIsExpected(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself and, since keybot hands it a client
    and an ``authorize`` that carry the token, warns at every start that the variable "will be unused".
    It is used (through ``authorize``): the warning only confuses operators, so it is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


def acked(reply: blocks.Message) -> BoltResponse:
    """``reply`` as a command's ack: the response Bolt sends back (the HTTP response, or the Socket Mode
    envelope's payload), as ``ack(**reply)`` would make it, but serialized by orjson (a page of keys
    is ~17 KB of JSON, which ``json.dumps`` took longer to write than the bare Bolt request takes)."""
    body = reply.json if isinstance(reply, blocks.SharedMessage) else orjson.dumps(reply).decode()
    return BoltResponse(status=200, body=body, headers={"content-type": "application/json;charset=utf-8"})


def _action_value(body: dict[str, Any]) -> tuple[str, str]:
    actions = body.get("actions")
    action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
    action_id, value = action.get("action_id"), action.get("value")
    selected = action.get("selected_option")  # an overflow menu's choice carries the value
    if value is None and isinstance(selected, dict):
        value = selected.get("value")
    if not isinstance(action_id, str) or not isinstance(value, str):
        raise InvalidInput(STALE)
    return action_id, value


def create_bolt_app(
    *,
    keybot: Keybot,
    signing_secret: str | None,
    bot_token: str,
    client: AsyncWebClient,
    logger: logging.Logger | None = None,
    ack_budget: float = 2.0,
    late_replies: set[asyncio.Task[None]] | None = None,
    oauth: OAuthParts | None = None,
    watch: EventWatch | None = None,
    home: HomePublisher | None = None,
) -> AsyncApp:
    """A Bolt app serving ``/apikeys`` and keybot's buttons. No Slack API call on the request path.

    ``late_replies`` collects the tasks still answering slow commands, for a graceful shutdown.
    With ``oauth``, keybot is installed through OAuth: each request's token comes from the installation
    store (``bot_token`` is unused), ``app.oauth_flow`` serves the install pages, and uninstalls delete
    tokens (bot/slack/installs.py). ``watch`` takes message and ``user_change`` events (leaks and
    offboarding, bot/slack/events.py); ``home`` publishes the App Home views (one of its own when not
    given)."""
    pending = late_replies if late_replies is not None else set()

    async def authorize(**kwargs: Any) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=kwargs.get("enterprise_id"),
            team_id=kwargs.get("team_id"),
            bot_token=bot_token,
            user_id=kwargs.get("user_id"),
        )

    bolt_logger = logger or logging.getLogger("keybot.bolt")
    # Bolt logs whole response bodies at DEBUG, and a body can hold a new key's secret.
    bolt_logger.setLevel(max(bolt_logger.getEffectiveLevel(), logging.INFO))
    if not any(isinstance(f, _TokenFromEnvironmentIsExpected) for f in bolt_logger.filters):
        bolt_logger.addFilter(_TokenFromEnvironmentIsExpected())
    installed: dict[str, Any] = {"authorize": authorize}
    if oauth is not None:
        installed = {
            "installation_store": oauth.installations,
            "installation_store_bot_only": True,
            "oauth_flow": oauth_flow(oauth, client=client, logger=bolt_logger),
            "user_facing_authorize_error_message": NOT_INSTALLED,
        }
    app = AsyncApp(
        signing_secret=signing_secret,
        # bot/web.py checks Slack's signature on the raw body before it parses it; Bolt need not again.
        request_verification_enabled=False,
        client=client,
        process_before_response=True,
        logger=bolt_logger,
        **installed,
    )
    publisher = home or HomePublisher(keybot)

    async def respond_later(work: Awaitable[tuple[blocks.Message, bool]], respond: AsyncRespond) -> None:
        reply, _ = await work
        try:
            await respond(**reply)
        except Exception as err:
            bolt_logger.warning("could not deliver a late reply on its response_url: %s", type(err).__name__)

    @app.command(COMMAND)
    async def apikeys(
        body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond | None, client: AsyncWebClient
    ) -> BoltResponse:
        raw = body.get("text")
        text = raw if isinstance(raw, str) else ""
        if opens_create_modal(text):  # the modal opens on the trigger_id (valid 3 s), before any slow work
            refusal = await open_create_command(keybot, client, body, context)
            return acked(blocks.message(refusal)) if refusal else BoltResponse(status=200, body="")
        if reads_only(text):  # the hot path: no task; a read cut short changes nothing
            try:
                async with asyncio.timeout(ack_budget):
                    reply, _ = await guarded(lambda: run_command(keybot, _actor(context), text))
            except TimeoutError:
                reply = blocks.error_message(SLOW_READ)
            return acked(reply)
        work = asyncio.ensure_future(guarded(lambda: run_command(keybot, _actor(context), text)))
        done, _ = await asyncio.wait({work}, timeout=ack_budget)
        if work in done or respond is None:
            reply, _ = await work
            return acked(reply)
        task = asyncio.create_task(respond_later(work, respond))
        pending.add(task)
        task.add_done_callback(pending.discard)
        return acked(blocks.working_message())

    # Bolt tries listeners in the order they were added: ``/apikeys`` first (the hot path), then the App
    # Home and modal listeners, then the catch-all for buttons below (so the views' own actions match first).
    register_views(app, keybot=keybot, publisher=publisher, ack_budget=ack_budget)
    if oauth is not None and oauth.installations is not None:
        register_uninstalls(app, installations=oauth.installations)

    if watch is not None:

        @app.event("message")
        async def message(ack: AsyncAck, body: dict[str, Any]) -> None:
            await ack()
            watch.message(body)

        @app.event("user_change")
        async def user_change(ack: AsyncAck, body: dict[str, Any]) -> None:
            await ack()
            watch.user_change(body)

    @app.action(re.compile(".*"))
    async def clicked(
        ack: AsyncAck,
        body: dict[str, Any],
        context: AsyncBoltContext,
        respond: AsyncRespond | None,
        client: AsyncWebClient,
    ) -> None:
        await ack()

        chosen: list[ActionId] = []

        async def work() -> blocks.Message:
            action_id, value = _action_value(body)
            chosen.append(action_id_named(action_id))
            return await ACTIONS[chosen[0]](keybot, _actor(context), value)

        reply, replace = await guarded(work)
        container = body.get("container")
        if isinstance(container, dict) and container.get("type") == "view":
            # a click on the App Home (an access request's Approve / Deny): the Home shows the answer
            publisher.changed(client, _actor(context), notice=str(reply.get("text", "")), seen=True)
            return
        if respond is None:
            return
        try:
            await respond(**reply, replace_original=replace and not (chosen and chosen[0] in ANSWER_BELOW))
        except Exception as err:  # Slack unreachable: the change (if any) is committed; DMs still go out
            bolt_logger.warning("could not answer a click on its response_url: %s", type(err).__name__)

    return app

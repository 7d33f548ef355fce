"""Slack-native surfaces (DESIGN.md §5.2): the App Home, the create and roll modals, the global
shortcut "Create API key", and ``/apikeys create`` with no arguments.

- A modal is opened with ``views.open`` on the request's ``trigger_id`` (valid 3 s) after one short
  read (the projects the user owns and the policy) and before any argon2 work.
- A submission is validated again from scratch (the project list and the user's roles are read again):
  what the user can fix is shown inline (``response_action: errors``). The new secret is shown by
  updating the submitted modal (``response_action: update``), the only place it ever goes. argon2 at
  OWASP cost takes ~22 ms, so the ack normally carries it; if the work outlasts ``ack_budget``, the
  modal is updated to "working…" at once and then, through ``views.update``, to the outcome.
- The Home is published on ``app_home_opened``, after a change the viewer makes from a modal or a
  Home button, and after others' changes that concern the viewer, by ``HomePublisher``
  (bot/slack/home_refresh.py: coalesced per user, budgeted per workspace).
"""

import asyncio
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.errors import (
    ConfirmationRefused,
    Conflict,
    InvalidInput,
    KeybotError,
    NotFound,
    NotSetUp,
    PermissionDenied,
)
from bot.domain.model import Actor
from bot.services import Keybot
from bot.slack import home, modals
from bot.slack.codec import ActionId, decode_nudge
from bot.slack.home_refresh import HomePublisher
from bot.slack.installs import context_org_key
from bot.slack.modals import EXPIRY, GRACE, NAME, NOTE, PROJECT, View

log = logging.getLogger("keybot.slack")


def _actor(context: AsyncBoltContext) -> Actor | None:
    user_id, team_id, enterprise_id = context.user_id, context_org_key(context), context.enterprise_id
    if not isinstance(user_id, str) or not isinstance(team_id, str) or not user_id or not team_id:
        return None
    return Actor(team_id=team_id, user_id=user_id, enterprise_id=enterprise_id if isinstance(enterprise_id, str) else None)


def _unexpected() -> str:
    ref = secrets.token_hex(3).upper()
    log.exception("unexpected error (ref %s)", ref)
    return f"Something went wrong (ref {ref}). Try again, and give the ref to your keybot operator if it keeps happening."


def _field(values: dict[str, Any], block: str) -> dict[str, Any]:
    entry = values.get(block)
    inner = entry.get(block) if isinstance(entry, dict) else None
    return inner if isinstance(inner, dict) else {}


def _typed(values: dict[str, Any], block: str) -> str | None:
    value = _field(values, block).get("value")
    return value if isinstance(value, str) else None


def _chosen(values: dict[str, Any], block: str) -> str | None:
    option = _field(values, block).get("selected_option")
    value = option.get("value") if isinstance(option, dict) else None
    return value if isinstance(value, str) else None


def _state(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The submitted view and its input values (``{}`` when the payload has none)."""
    view = body.get("view")
    view = view if isinstance(view, dict) else {}
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    return view, values if isinstance(values, dict) else {}


def opens_create_modal(text: str) -> bool:
    """``/apikeys create`` with no arguments: the command opens the create modal."""
    return text.strip().lower() == "create"


async def open_create(keybot: Keybot, client: AsyncWebClient, actor: Actor, trigger_id: str, *, origin: str) -> str | None:
    """Open the create modal; the refusal text instead when the user may not create keys."""
    try:
        form = await keybot.home.create_form(actor)
    except KeybotError as err:
        return str(err)
    await client.views_open(trigger_id=trigger_id, view=modals.create_modal(form, origin=origin))
    return None


async def open_create_command(keybot: Keybot, client: AsyncWebClient, body: dict[str, Any], context: AsyncBoltContext) -> str | None:
    """``/apikeys create`` with no arguments (``opens_create_modal``), called by the ``/apikeys``
    listener of bot/slack/app.py: the modal opens, or the private refusal text to ack with."""
    actor, trigger = _actor(context), body.get("trigger_id")
    if actor is None or not isinstance(trigger, str):
        return "This request did not say who sent it."
    try:
        return await open_create(keybot, client, actor, trigger, origin="command")
    except Exception:
        return _unexpected()


def register_views(app: AsyncApp, *, keybot: Keybot, publisher: HomePublisher, ack_budget: float = 2.0) -> None:
    """Add the Home, modal and shortcut listeners to ``app``. Call it before the catch-all listeners of
    bot/slack/app.py so these match first (``/apikeys create`` with no arguments is served by the
    ``/apikeys`` listener itself, through ``open_create_command``, so that every command meets one
    listener's matcher, not eleven)."""

    async def open_from_button(client: AsyncWebClient, body: dict[str, Any], context: AsyncBoltContext, origin: str) -> None:
        actor, trigger = _actor(context), body.get("trigger_id")
        if actor is None or not isinstance(trigger, str):
            return
        try:
            refusal = await open_create(keybot, client, actor, trigger, origin=origin)
            if refusal:
                await client.views_open(trigger_id=trigger, view=modals.message_view("Create API key", refusal))
        except Exception:
            _unexpected()

    @app.shortcut(modals.CREATE_CALLBACK)
    async def create_shortcut(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        await ack()
        await open_from_button(client, body, context, "shortcut")

    @app.action(home.HOME_CREATE)
    async def home_create(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        await ack()
        await open_from_button(client, body, context, "home")

    @app.options(PROJECT)
    async def project_suggestions(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        actor, query = _actor(context), body.get("value")
        try:
            projects = [] if actor is None else (await keybot.home.create_form(actor)).projects
        except KeybotError:
            projects = []
        await ack(options=modals.project_options(projects, query if isinstance(query, str) else ""))

    @app.view(modals.CREATE_CALLBACK)
    async def create_submitted(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        actor = _actor(context)
        view, values = _state(body)
        if actor is None:
            await ack(response_action="errors", errors={NAME: "This request did not say who sent it."})
            return
        project, name, expiry, note = _chosen(values, PROJECT), _typed(values, NAME), _chosen(values, EXPIRY), _typed(values, NOTE)
        name = None if name is None else name.strip()  # a pasted name often brings a space along
        note = note if note and note.strip() else None  # an optional field left blank
        errors = await _check_create(keybot, actor, project=project, name=name, expiry=expiry, note=note)
        if errors:
            await ack(response_action="errors", errors=errors)
            return

        async def work() -> View:
            assert project is not None and name is not None
            created = await keybot.keys.create(actor, project=project, name=name, expires=expiry, note=note or None)
            return modals.created_view(created)

        if await _finish(ack, client, view, work(), errors_at=_create_error_field, title="Create API key", budget=ack_budget):
            from_home = modals.read_metadata(view.get("private_metadata")).get("origin") == "home"
            publisher.changed(client, actor, notice=f"Created key `{name}` in `{project}`.", seen=from_home)

    @app.action(home.HOME_ROLL)
    async def home_roll(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        await ack()
        actions = body.get("actions")
        key = home.read_key_value(actions[0].get("value")) if isinstance(actions, list) and actions else None
        trigger = body.get("trigger_id")
        if key is None or not isinstance(trigger, str):
            return
        try:
            await client.views_open(trigger_id=trigger, view=modals.roll_modal(project=key[0], name=key[1], origin="home"))
        except Exception:
            _unexpected()

    @app.action(ActionId.NUDGE_ROLL)
    async def nudge_roll(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        await ack()
        actor, trigger, actions = _actor(context), body.get("trigger_id"), body.get("actions")
        value = actions[0].get("value") if isinstance(actions, list) and actions and isinstance(actions[0], dict) else None
        if actor is None or not isinstance(trigger, str) or not isinstance(value, str):
            return
        try:
            try:
                project, name, masked = await keybot.nudges.about(actor, decode_nudge(value))
            except KeybotError as err:
                await client.views_open(trigger_id=trigger, view=modals.message_view("Roll API key", f":warning: {err}"))
                return
            view = modals.roll_modal(project=project, name=name, masked=masked, origin="nudge", nudge=value)
            await client.views_open(trigger_id=trigger, view=view)
        except Exception:
            _unexpected()

    @app.view(modals.ROLL_CALLBACK)
    async def roll_submitted(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        actor = _actor(context)
        view, values = _state(body)
        about = modals.read_metadata(view.get("private_metadata"))
        project, name, grace = about.get("project"), about.get("name"), _chosen(values, GRACE)
        if actor is None or project is None or name is None:
            await ack(response_action="errors", errors={GRACE: "This form is not valid any more; open it again."})
            return

        nudge = about.get("nudge")

        async def work() -> View:
            if nudge is not None:  # from a reminder DM: the roll answers the reminder (re-checked now)
                return modals.rolled_view(await keybot.nudges.roll(actor, decode_nudge(nudge), grace=grace))
            return modals.rolled_view(await keybot.lifecycle.roll(actor, project=project, name=name, grace=grace))

        if await _finish(ack, client, view, work(), errors_at=lambda _: GRACE, title="Roll API key", budget=ack_budget):
            publisher.changed(client, actor, notice=f"Rolled key `{name}` in `{project}`.", seen=about.get("origin") == "home")

    @app.view_closed(re.compile(f"^({modals.CREATE_CALLBACK}|{modals.ROLL_CALLBACK})"))
    async def closed(ack: AsyncAck) -> None:
        await ack()  # nothing to keep: a shown secret is discarded with its view

    async def home_change(body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient, verb: str) -> None:
        """A Home button that changes a key (the clicker's role checked by the service), then the Home
        refreshed with what happened."""
        actor = _actor(context)
        actions = body.get("actions")
        key = home.read_key_value(actions[0].get("value")) if isinstance(actions, list) and actions else None
        if actor is None or key is None:
            return
        try:
            if key[2] is not None and (await keybot.lifecycle.show(actor, project=key[0], name=key[1])).key.id != key[2]:
                raise ConfirmationRefused(  # deleted and created again under the same name since the Home showed it
                    f"`{key[1]}` in `{key[0]}` is another key now: the one your Home showed was deleted and a new "
                    "one made with its name. Nothing changed; your Home now shows the keys as they are."
                )
            if verb == "disable":
                change = await keybot.lifecycle.disable(actor, project=key[0], name=key[1])
                notice = f":white_check_mark: Key `{change.name}` in `{change.project}` is disabled."
            else:
                change = await keybot.lifecycle.extend(actor, project=key[0], name=key[1])
                when = f"{change.expires_at:%Y-%m-%d %H:%M} UTC" if change.expires_at else "never"
                notice = f":white_check_mark: Key `{change.name}` in `{change.project}` now expires {when}."
        except KeybotError as err:
            notice = f":warning: {err}"
        except Exception:
            notice = f":warning: {_unexpected()}"
        publisher.changed(client, actor, notice=notice, seen=True)

    @app.action(home.HOME_EXTEND)
    async def home_extend(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        await ack()
        await home_change(body, context, client, "extend")

    @app.action(home.HOME_DISABLE)
    async def home_disable(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        await ack()
        await home_change(body, context, client, "disable")

    @app.event("app_home_opened")
    async def home_opened(ack: AsyncAck, event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        await ack()
        actor = _actor(context)
        if actor is not None and event.get("tab", "home") == "home":
            publisher.opened(client, actor)


async def _check_create(
    keybot: Keybot, actor: Actor, *, project: str | None, name: str | None, expiry: str | None, note: str | None
) -> dict[str, str]:
    """The inline errors of a create submission, read afresh (roles, projects, policy); ``{}`` if none."""
    errors: dict[str, str] = {}
    try:
        form = await keybot.home.create_form(actor)
    except (PermissionDenied, NotFound, NotSetUp) as err:
        return {PROJECT: str(err)}
    if project is None:
        errors[PROJECT] = "Choose a project."
    elif project not in form.projects:
        errors[PROJECT] = f"You are no longer an owner of `{project}`, so you cannot create keys in it."
    try:
        keybot.keys.checked_name((name or "").strip(), kind="key")
    except InvalidInput as err:
        errors[NAME] = str(err)
    if expiry is None or expiry not in form.expiries:
        errors[EXPIRY] = "Choose one of the expiries offered; your organization's policy may have changed."
    if note:
        try:
            keybot.keys.checked_note(note)
        except InvalidInput as err:
            errors[NOTE] = str(err)
    return errors


def _create_error_field(err: KeybotError) -> str:
    if isinstance(err, Conflict):
        return NAME
    if isinstance(err, PermissionDenied | NotFound | NotSetUp):
        return PROJECT
    if isinstance(err, InvalidInput):
        return EXPIRY
    return NAME


async def _finish(
    ack: AsyncAck,
    client: AsyncWebClient,
    view: dict[str, Any],
    work: Awaitable[View],
    *,
    errors_at: Callable[[KeybotError], str],
    title: str,
    budget: float,
) -> bool:
    """Ack a submission with the outcome of ``work``: the view showing the secret, or an inline error.
    Work still running after ``budget`` seconds: ack with "working…", then ``views.update`` the outcome.
    True when the work was done (the key created or rolled), False when it was refused or failed."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=budget)
    if task not in done:
        await ack(response_action="update", view=modals.working_view(title))
    try:
        outcome = await task
    except KeybotError as err:  # what the user can fix (or retry), next to the field it concerns
        if task in done:
            await ack(response_action="errors", errors={errors_at(err): str(err)})
            return False
        outcome, succeeded = modals.message_view(title, f":warning: {err}"), False
    except Exception:
        outcome, succeeded = modals.message_view(title, f":warning: {_unexpected()}"), False
    else:
        succeeded = True
    if task in done:
        await ack(response_action="update", view=outcome)
        return succeeded
    view_id = view.get("id")
    try:
        if isinstance(view_id, str):
            await client.views_update(view_id=view_id, view=outcome)
    except Exception as err:
        log.warning("could not update a modal: %s", type(err).__name__)
    return succeeded

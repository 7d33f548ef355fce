"""The ``Shell``: one session of ``keybot shell``, a line at a time (``start``, ``handle``, ``prompt``).

It runs the real keybot (``bot.runtime.build_runtime``) on a free port of 127.0.0.1 and drives it only
as Slack would, through ``SlackDriver``; ``FakeSlack`` stands in for the Slack Web API and the
``response_url`` endpoints. Data is reached only through the services (``runtime.keybot``). The
package docstring (bot/shell/__init__.py) describes what a session looks like.
"""

import contextlib
import html
import re
import secrets
import time
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any, Self

import aiohttp
from aiohttp import web

from bot.domain.errors import Unavailable
from bot.domain.notices import SHELL_ORIGIN
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from bot.shell.database import SHELL_TEAM_ID, database_banner, guard, workspace
from bot.shell.driver import SlackDriver
from bot.shell.fakeslack import Call, FakeSlack, Response
from bot.shell.render import message_buttons, mrkdwn, render_message
from bot.shell.session_parts import SHELL_HELP, Question, Shown, indent, plain, yes_no
from bot.shell.surfaces import Surfaces
from bot.shell.users import USER_ID_RE, login_name, user_id_for

SHELL_ORG_NAME = "keybot shell"
GENERAL = "C0GENERAL"  # the channel /say posts in
_DRAIN_ROUNDS = 50  # batches of DMs sent after one command, at most

_AT_RE = re.compile(r"(?<![\w@])@([A-Za-z0-9](?:[\w.-]*[A-Za-z0-9])?)")
_SPECIAL_MENTIONS = frozenset({"here", "channel", "everyone"})


class Shell(Surfaces):
    """One shell session: the real keybot on a local port, a FakeSlack, and the user you act as."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        slack: FakeSlack,
        driver: SlackDriver,
        team_id: str,
        user: str,
        stack: AsyncExitStack,
        real_workspaces: list[str] | None = None,
    ) -> None:
        self.runtime = runtime
        self.real_workspaces = real_workspaces or []
        self.slack = slack
        self.driver = driver
        self.team_id = team_id
        self.names: dict[str, str] = {}
        self.user = self._register(user)
        self.finished = False
        # every DM sent: (recipient, its message as it is now, where it is: (channel, ts))
        self.dms: list[tuple[str, dict[str, Any], tuple[str, str]]] = []
        self._stack = stack
        self._messages: list[Shown] = []
        self._buttons: list[tuple[dict[str, Any], Shown]] = []
        self._fresh_output = True
        self._question: Question | None = None
        self._form = None  # the modal being filled in (bot/shell/surfaces.py)
        self._homes = {}
        self._calls_seen = 0
        self._responses_seen = 0
        self._said = 0

    @classmethod
    async def open(cls, settings: Settings, *, user: str | None = None, production: bool = False) -> Self:
        """Start keybot on 127.0.0.1 (a free port) against a new FakeSlack; close with ``aclose``.

        ``StartupError`` (before anything is migrated or written) when the database holds a real
        workspace's organization, unless ``production``. Every change is stamped ``SHELL_ORIGIN``, and
        the outbox worker sends only the DMs this shell queued (``_collect`` drains it)."""
        real = await guard(settings, production=production)
        async with AsyncExitStack() as stack:
            slack = await stack.enter_async_context(FakeSlack(team_id=SHELL_TEAM_ID))
            session = await stack.enter_async_context(aiohttp.ClientSession())
            signing_secret = secrets.token_hex(16)
            runtime = await build_runtime(
                replace(
                    settings,
                    slack_bot_token="xoxb-keybot-shell",
                    slack_signing_secret=signing_secret,
                    slack_app_token=None,
                    slack_api_url=slack.api_url,
                    dm_merge_seconds=0,  # the shell shows each command's DMs right after its reply
                ),
                origin=SHELL_ORIGIN,
            )
            stack.push_async_callback(runtime.aclose)
            runner = web.AppRunner(runtime.web_app, access_log=None)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            port = runner.addresses[0][1]
            team_id = workspace(await runtime.keybot.operators.org_teams())
            slack.team_id = team_id
            driver = SlackDriver(
                events_url=f"http://127.0.0.1:{port}/slack/events",
                signing_secret=signing_secret,
                slack=slack,
                team_id=team_id,
                session=session,
            )
            shell = cls(
                runtime=runtime,
                slack=slack,
                driver=driver,
                team_id=team_id,
                user=user or login_name(),
                stack=stack.pop_all(),
                real_workspaces=real,
            )
        return shell

    async def aclose(self) -> None:
        """Send the DMs still queued, stop keybot, then the FakeSlack."""
        with contextlib.suppress(Unavailable):
            await self._drain()
        await self._stack.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def prompt(self) -> str:
        if self._question is not None:
            return self._question.prompt
        if self._form is not None:
            return self._form.prompt
        return f"@{self._name(self.user)}> "

    async def start(self) -> str:
        """The greeting; asks to bootstrap when the workspace has no organization."""
        database = database_banner(self.runtime.settings, real=self.real_workspaces)
        lines = [
            "keybot shell — the real keybot, driven exactly as Slack drives it, against a stand-in Slack.",
            f"Workspace {self.team_id}, {database}.",
            f"You are @{self._name(self.user)} ({self.user}). /help lists the shell commands.",
        ]
        teams = await self.runtime.keybot.operators.org_teams()
        if self.team_id not in teams:
            missing = (
                "No organization yet." if not teams else f"Workspace {self.team_id} has no organization."
            )
            self._question = Question(
                f"{missing} Create one with you as its owner? [Y/n] ", True, self._bootstrap
            )
            return "\n".join(lines)
        owners = await self.runtime.keybot.operators.org_owners(self.team_id)
        if not owners:  # its last owner was deactivated (or revoked): nobody can grant a role any more
            how = f"`keybot bootstrap --team-id {self.team_id} --owner <user id>` names one"
            if self.real_workspaces:
                lines.append(f"This organization has no owner: {how}.")
                return "\n".join(lines)
            self._question = Question(
                f"This organization has no owner any more. Make you (@{self._name(self.user)}) its owner? [Y/n] ",
                True,
                self._new_owner,
            )
            return "\n".join(lines)
        if self.user not in owners:
            shown = ", ".join(f"@{self._name(owner)}" for owner in owners)
            lines.append(f"Owners of this organization: {shown}. Type /as {owners[0]} to act as one.")
        return "\n".join(lines)

    async def handle(self, line: str) -> str:
        """Run one typed line; return what to print (may be empty)."""
        self._fresh_output = True
        if self._question is not None:
            question = self._question
            answer = yes_no(line, question.default)
            if answer is None:
                return "Please answer y or n."
            self._question = None
            return await question.answer(answer)
        if self._form is not None:
            return await self._fill(line)
        line = line.strip()
        if not line:
            return ""
        verb, _, rest = line.partition(" ")
        rest = rest.strip()
        if verb == "/apikeys" or verb == "apikeys":
            return await self._command(rest)
        if not verb.startswith("/"):
            return await self._command(line)
        match verb.lower():
            case "/as":
                return self._switch(rest)
            case "/click":
                return await self._click(rest)
            case "/dms":
                return await self._show_dms(rest)
            case "/say":
                return await self._say(rest)
            case "/deactivate":
                return await self._deactivate(rest)
            case "/home":
                return await self._open_home()
            case "/shortcut":
                return await self._shortcut(rest)
            case "/help" | "/?":
                return SHELL_HELP
            case "/quit" | "/exit" | "/q":
                self.finished = True
                return "Bye."
        return f"{verb} is not a valid command (Slack would say the same).\n\n{SHELL_HELP}"

    # -- commands --------------------------------------------------------------------------

    async def _bootstrap(self, yes: bool) -> str:
        if not yes:
            return (
                "No organization created: keybot will answer that it is not set up. Restart the shell to be "
                f"asked again, or run `keybot bootstrap --team-id {self.team_id} --owner <user id>`."
            )
        await self.runtime.keybot.operators.bootstrap(
            team_id=self.team_id, owner=self.user, org_name=SHELL_ORG_NAME
        )
        return (
            f"Created the organization of workspace {self.team_id}; you (@{self._name(self.user)}) are its "
            "owner.\nTry: /apikeys project create payments"
        )

    async def _new_owner(self, yes: bool) -> str:
        if not yes:
            return (
                "Nobody was made an owner. Restart the shell to be asked again, or run "
                f"`keybot bootstrap --team-id {self.team_id} --owner <user id>`."
            )
        await self.runtime.keybot.operators.bootstrap(team_id=self.team_id, owner=self.user, org_name=SHELL_ORG_NAME)
        return f"You (@{self._name(self.user)}) are now an owner of this organization. /apikeys members lists who else is in it."

    async def _command(self, text: str) -> str:
        reply = await self.driver.command(self.user, self.slack_text(text))
        lines: list[str] = []
        if reply.status != 200:
            lines.append(f'Slack would show "/apikeys failed" (keybot answered HTTP {reply.status}).')
        elif reply.message:
            lines.append(self._show(reply.message, url=reply.response_url, viewer=self.user))
        lines += await self._collect()
        return "\n".join(lines) or "(no reply)"

    def _switch(self, who: str) -> str:
        if not who:
            return f"You are @{self._name(self.user)} ({self.user}). Usage: /as <name> or /as <user id>."
        try:
            self.user = self._register(who.removeprefix("@"))
        except ValueError:
            return f"`{who}` is not a name or a user id. Usage: /as ana or /as U123ABC."
        return f"You are now @{self._name(self.user)} ({self.user})."

    async def _click(self, arg: str) -> str:
        if not arg.isdigit():
            return "Usage: /click N — press button [N] of the latest message with buttons."
        if not self._buttons:
            return "There are no buttons to press yet."
        number = int(arg)
        if not 1 <= number <= len(self._buttons):
            return f"There is no button [{number}]; the latest buttons are [1]–[{len(self._buttons)}]."
        button, shown = self._buttons[number - 1]
        if shown.replaced:
            what = "its DM was updated" if shown.dm else f"message #{shown.number} was replaced"
            what = "the Home was refreshed since" if shown.view_id else what
            return f"Button [{number}] is gone: {what}."
        if shown.viewer != self.user:
            viewer = self._name(shown.viewer)
            where = f"a DM to @{viewer}" if shown.dm else f"message #{shown.number}, which only @{viewer} sees"
            where = f"the Home of @{viewer}" if shown.view_id else where
            return f"Button [{number}] is on {where}. Use /as {viewer}."
        confirm = button.get("confirm")
        if not isinstance(confirm, dict):
            return await self._press(button, shown)
        yes = mrkdwn(plain(confirm.get("confirm")) or "Yes", names=self.names)
        no = mrkdwn(plain(confirm.get("deny")) or "Cancel", names=self.names)

        async def answer(ok: bool) -> str:
            return await self._press(button, shown) if ok else f"{no}: nothing was sent."

        self._question = Question(f"{yes} (y) or {no} (n)? [y/N] ", False, answer)
        title = mrkdwn(plain(confirm.get("title")), names=self.names)
        return f"Slack asks: {title}\n{indent(mrkdwn(plain(confirm.get('text')), names=self.names))}"

    async def _press(self, button: dict[str, Any], shown: Shown) -> str:
        reply = await self.driver.click(self.user, button, response_url=shown.url, dm=shown.dm, view_id=shown.view_id)
        lines = (
            []
            if reply.status == 200
            else [f"Slack would show an error (keybot answered HTTP {reply.status})."]
        )
        lines += await self._collect()
        return "\n".join(lines) or "(no reply)"

    async def _say(self, text: str) -> str:
        if not text:
            return "Usage: /say <text> — post a message in #general as you."
        self._said += 1
        ts = f"{int(time.time())}.{self._said:06d}"
        event = {"type": "message", "channel": GENERAL, "channel_type": "channel", "user": self.user,
                 "text": self.slack_text(text), "ts": ts}
        return await self._event(event, done=f"You posted in #general: {text}")

    async def _deactivate(self, who: str) -> str:
        if len(who.split()) != 1:
            return "Usage: /deactivate @name — deactivate that user in Slack."
        try:
            user = self._register(who.removeprefix("@"))
        except ValueError:
            return f"`{who}` is not a name or a user id. Usage: /deactivate @ana."
        event = {"type": "user_change", "user": {"id": user, "team_id": self.team_id, "name": self._name(user), "deleted": True}}
        return await self._event(event, done=f"Slack deactivated @{self._name(user)}.")

    async def _event(self, event: dict[str, Any], *, done: str) -> str:
        status = await self.driver.event(event)
        if status != 200:
            return f"Slack would retry this event (keybot answered HTTP {status})."
        if self.runtime.watch is not None:
            await self.runtime.watch.idle()
        return "\n".join([done, *await self._collect()])

    async def _show_dms(self, who: str) -> str:
        lines = await self._collect()
        if len(who.split()) > 1:
            return "\n".join([*lines, "/dms takes one name: /dms (every DM) or /dms @name (that person's DMs)."])
        try:
            user = self._register(who.removeprefix("@")) if who else None
        except ValueError:
            return "\n".join([*lines, "Usage: /dms or /dms @name."])
        dms = [(to, message, at) for to, message, at in self.dms if user is None or to == user]
        if not dms:
            lines.append("No DMs yet." if user is None else f"No DMs to @{self._name(user)} yet.")
        for to, message, at in dms:  # as they are now (updates applied); their live buttons clickable
            shown = Shown(number=0, viewer=to, url=self.slack.response_url(f"dm{at[1]}"), dm=(at[0], {**message, "ts": at[1]}))
            lines.append(self._dm_text(to, message, first_button=self._number_buttons(message, shown)))
        return "\n".join(lines)

    # -- what Slack got ---------------------------------------------------------------------

    async def _drain(self) -> None:
        """Send the DMs this shell queued (never a server's: the worker claims shell rows only)."""
        for _ in range(_DRAIN_ROUNDS):
            if not await self.runtime.worker.drain_once():
                return

    async def _collect(self) -> list[str]:
        """Messages posted to response_urls and DMs sent or updated since the last look; first runs due jobs
        (unless a server owns the database) and sends queued DMs."""
        for _ in range(_DRAIN_ROUNDS if not self.real_workspaces else 0):
            if not await self.runtime.jobs.run_once():
                break
        await self._drain()
        await self.runtime.home.settle()  # Home refreshes asked for by the change or by its DMs
        lines: list[str] = []
        responses, self._responses_seen = (
            self.slack.responses[self._responses_seen :],
            len(self.slack.responses),
        )
        for response in responses:
            lines += self._on_response(response)
        calls, self._calls_seen = self.slack.calls[self._calls_seen :], len(self.slack.calls)
        for call in calls:
            if call.method in ("chat.postMessage", "chat.update") and call.delivered:
                lines.append(self._on_dm(call))
            elif call.method == "chat.postEphemeral" and call.delivered:
                viewer = str(call.args.get("user", ""))
                body = render_message({"text": call.args.get("text", "")}, names=self.names)
                lines.append(f"In #general, only @{self._name(viewer)} sees:\n{indent(body)}")
            elif call.method in ("views.publish", "views.open", "views.update") and call.delivered:
                lines.append(self._on_view_call(call))
        return lines

    def _on_response(self, response: Response) -> list[str]:
        url = self.slack.response_url(response.name)
        earlier = [shown for shown in self._messages if shown.url == url and not shown.replaced]
        target = earlier[-1] if earlier else None
        body = response.body
        if target is not None and body.get("delete_original"):
            target.replaced = True
            return [f"(message #{target.number} was deleted)"]
        if target is not None and body.get("replace_original"):
            target.replaced = True
            return [self._show(body, url=url, viewer=target.viewer, replaces=target)]
        return [self._show(body, url=url, viewer=target.viewer if target else self.user)]

    def _on_dm(self, call: Call) -> str:
        """A DM sent (its buttons, if any, become clickable) or updated (the buttons of the old one go)."""
        channel = str(call.args.get("channel", ""))
        to = channel[1:] if channel.startswith("D") and USER_ID_RE.fullmatch(channel[1:]) else channel
        message: dict[str, Any] = {key: call.args[key] for key in ("text", "blocks") if key in call.args}
        at = (str(call.answer.get("channel", channel)), str(call.answer.get("ts", "")))
        for _, shown in self._buttons:
            if shown.dm is not None and (shown.dm[0], shown.dm[1].get("ts")) == at:
                shown.replaced = True
        if call.method == "chat.update":
            self.dms = [(who, message if where == at else was, where) for who, was, where in self.dms]
            return self._dm_text(to, message, updated=True)
        self.dms.append((to, message, at))
        shown = Shown(number=0, viewer=to, url=self.slack.response_url(f"dm{at[1]}"), dm=(at[0], {**message, "ts": at[1]}))
        return self._dm_text(to, message, first_button=self._number_buttons(message, shown))

    def _dm_text(self, to: str, message: dict[str, Any], *, first_button: int = 1, updated: bool = False) -> str:
        body = render_message(message, names=self.names, first_button=first_button)
        return f"DM to @{self._name(to)}{' (updated)' if updated else ''}:\n{indent(body)}"

    def _number_buttons(self, message: dict[str, Any], shown: Shown) -> int:
        """Number the message's buttons for /click (after others of the same output); the first's number."""
        buttons = message_buttons(message)
        if buttons and self._fresh_output:
            self._buttons, self._fresh_output = [], False
        first = len(self._buttons) + 1
        self._buttons += [(button, shown) for button in buttons]
        return first

    def _show(self, message: dict[str, Any], *, url: str, viewer: str, replaces: Shown | None = None) -> str:
        shown = Shown(number=len(self._messages) + 1, viewer=viewer, url=url)
        self._messages.append(shown)
        first = self._number_buttons(message, shown)
        if message.get("response_type") == "in_channel":
            audience = "everyone in the channel sees"
        else:
            audience = f"only you (@{self._name(viewer)}) see"
        head = f"#{shown.number} {audience}"
        if replaces is not None:
            head += f" (replaces message #{replaces.number})"
        body = render_message(message, names=self.names, first_button=first)
        return f"{head}:\n{indent(body)}"

    # -- users ------------------------------------------------------------------------------

    def _register(self, who: str) -> str:
        user_id = user_id_for(who)
        if user_id != who:
            self.names[user_id] = who
            self.slack.users[user_id] = who
        return user_id

    def _name(self, user_id: str) -> str:
        return self.names.get(user_id, user_id)

    def slack_text(self, typed: str) -> str:
        """What Slack sends for a typed line: ``&<>`` escaped, ``@ana`` as ``<@UANA|ana>``."""
        text = html.escape(typed, quote=False)

        def mention(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.lower() in _SPECIAL_MENTIONS:
                return f"<!{name.lower()}>"
            user_id = self._register(name)
            return f"<@{user_id}>" if user_id == name else f"<@{user_id}|{name}>"

        return _AT_RE.sub(mention, text)


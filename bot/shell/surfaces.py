"""The App Home and modals in ``keybot shell`` (mixed into ``Shell``), driven as Slack drives them.

- ``/home`` sends an ``app_home_opened`` event; the ``views.publish`` keybot makes is shown as
  "Home of @ana", its buttons numbered like any message's (a click carries the Home's view id, and
  no ``response_url``, as Slack's does). A later publish (after a change, yours or someone else's)
  shows as "Home of @ana (refreshed)" and retires the old Home's buttons.
- ``/shortcut create`` runs the global shortcut "Create API key"; ``/apikeys create`` with nothing
  after it and the Home's buttons open modals the same way: keybot calls ``views.open``.
- A modal with inputs becomes a form (bot/shell/forms.py) filled field by field; on the last field it
  is submitted as a ``view_submission``. ``response_action: errors`` asks again the fields named, with
  their errors; ``response_action: update`` shows the new view (the new secret, once); ``/cancel``
  closes the modal (``view_closed``).
"""

from typing import TYPE_CHECKING, Any

from bot.shell.driver import SlackDriver
from bot.shell.fakeslack import Call, FakeSlack
from bot.shell.forms import Form, is_form, modal_text
from bot.shell.render import render_message
from bot.shell.session_parts import Shown, indent
from bot.slack.modals import CREATE_CALLBACK

SHORTCUTS = {"create": CREATE_CALLBACK}  # the global shortcuts of manifest.yaml, by a word to type
WORKING_WAIT = 30.0  # seconds to wait for the outcome of a submission acked with "working…"


class Surfaces:
    """The Home and modal part of a shell session."""

    driver: SlackDriver
    slack: FakeSlack
    user: str
    names: dict[str, str]
    _form: Form | None
    _homes: dict[str, Shown]

    if TYPE_CHECKING:

        async def _collect(self) -> list[str]: ...

        def _number_buttons(self, message: dict[str, Any], shown: Shown) -> int: ...

        def _name(self, user_id: str) -> str: ...

    async def _open_home(self) -> str:
        status = await self.driver.home_opened(self.user)
        lines = [] if status == 200 else [f"Slack would show an empty Home (keybot answered HTTP {status})."]
        lines += await self._collect()
        return "\n".join(lines) or "(keybot published no Home)"

    async def _shortcut(self, word: str) -> str:
        callback = SHORTCUTS.get(word.strip().lower())
        if callback is None:
            return "Usage: /shortcut create — the global shortcut “Create API key”."
        status = await self.driver.shortcut(self.user, callback)
        lines = [] if status == 200 else [f"Slack would show an error (keybot answered HTTP {status})."]
        lines += await self._collect()
        return "\n".join(lines) or "(no modal opened)"

    def _on_view_call(self, call: Call) -> str:
        """A ``views.publish`` (a Home), ``views.open`` or ``views.update`` (a modal) keybot made."""
        answered = call.answer.get("view")
        view = {**(answered if isinstance(answered, dict) else {}), **call.args.get("view", {})}
        if isinstance(answered, dict) and "id" in answered:
            view["id"] = answered["id"]
        if call.method == "views.publish":
            return self._show_home(str(call.args.get("user_id", "")), view)
        return self._show_modal(view, updated=call.method == "views.update")

    def _show_home(self, user: str, view: dict[str, Any]) -> str:
        earlier = self._homes.get(user)
        if earlier is not None:
            earlier.replaced = True
        shown = Shown(number=0, viewer=user, url="", view_id=str(view.get("id", "")))
        self._homes[user] = shown
        first = self._number_buttons(view, shown)
        head = f"Home of @{self._name(user)}{' (refreshed)' if earlier is not None else ''}:"
        return f"{head}\n{indent(render_message(view, names=self.names, first_button=first))}"

    def _show_modal(self, view: dict[str, Any], *, updated: bool = False) -> str:
        """A modal keybot opened (or updated) for you; one with inputs becomes the form being filled."""
        head = f"Modal for @{self._name(self.user)}{' (updated)' if updated else ''}:"
        text = f"{head}\n{indent(modal_text(view, names=self.names))}"
        if not is_form(view):
            if "_done" in str(view.get("callback_id", "")):
                text += "\n  (closing it discards what it shows)"
            return text
        self._form = Form(view)
        return f"{text}\n  Fill it in field by field; /cancel closes it.\n{self._form.question()}"

    async def _fill(self, line: str) -> str:
        """One typed line for the open form; after its last field, the submission and its outcome."""
        form = self._form
        assert form is not None
        if line.strip().lower() == "/cancel":
            self._form = None
            status = await self.driver.close(self.user, form.view)
            return "Closed the modal; nothing was submitted." + ("" if status == 200 else f" (HTTP {status})")
        if form.needs_suggestions(line) and form.current is not None:
            now = form.current
            form.suggested(
                await self.driver.suggestions(self.user, action_id=now.action_id, block_id=now.block_id, typed=line.strip())
            )
        problem = form.answer(line)
        if problem is not None:
            return f"  ⚠️ {problem}\n{form.question()}"
        if form.current is not None:
            return form.question()
        return await self._submit(form)

    async def _submit(self, form: Form) -> str:
        before = len(self.slack.calls_to("views.update"))
        status, answer = await self.driver.submit(self.user, form.view, form.state())
        if status != 200:
            self._form = None
            return f"Slack would show “We had some trouble connecting” (keybot answered HTTP {status})."
        action = answer.get("response_action")
        errors = answer.get("errors")
        if action == "errors" and isinstance(errors, dict):
            form.reask(errors)
            if form.current is not None:
                return f"Slack shows what to fix, next to the field:\n{form.question()}"
            self._form = None
            return "keybot refused the form: " + "; ".join(str(e) for e in errors.values())
        self._form = None
        lines: list[str] = []
        new = answer.get("view")
        if action == "update" and isinstance(new, dict):
            lines.append(self._show_modal({**new, "id": form.view.get("id")}, updated=True))
            if str(new.get("callback_id", "")).endswith("_working"):
                await self.slack.wait_for(lambda s: len(s.calls_to("views.update")) > before, timeout=WORKING_WAIT)
        elif action is None:
            lines.append("(the modal closed)")
        lines += await self._collect()
        return "\n".join(lines)

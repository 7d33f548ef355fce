"""A Slack modal as a terminal form, for ``keybot shell``: its input blocks asked one at a time.

Pure: a ``Form`` holds the view keybot opened, the values typed so far and the fields still to ask;
``answer`` takes one typed line for the current field. ``state`` is what Slack would send back in a
``view_submission`` (``view.state.values``); ``reask`` puts the fields named in a
``response_action: errors`` answer back in the queue, with their errors shown next to them::

    form = Form(view)
    form.question()          # "Project: [1] payments  [2] search" …
    form.answer("1")         # None: accepted, on to the next field; else why not, and asked again
    form.state()             # {"project": {"project": {"type": "static_select", "selected_option": …}}, …}

A menu offers its options by number (or name); Enter keeps a menu's preset choice and leaves an
optional field empty. An ``external_select``'s options come from keybot (a ``block_suggestion``):
``needs_suggestions`` says so, and ``suggested`` gives them to the form.
"""

from dataclasses import dataclass, field
from typing import Any

from bot.shell.render import render_message

PROMPT_MARK = " > "  # every form prompt is "✎ <label> > ": "✎ Key name > "
SELECTS = ("static_select", "external_select")


@dataclass
class Field:
    block_id: str
    action_id: str
    kind: str
    label: str
    optional: bool = False
    hint: str = ""
    options: list[tuple[str, str]] = field(default_factory=list)  # (value, label)
    chosen: tuple[str, str] | None = None
    typed: str | None = None
    error: str = ""


def _plain(obj: Any) -> str:
    return str(obj.get("text", "")) if isinstance(obj, dict) else ""


def _option(raw: Any) -> tuple[str, str] | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("value"), str):
        return None
    return raw["value"], _plain(raw.get("text")) or raw["value"]


def _field(block: dict[str, Any]) -> Field | None:
    element = block.get("element")
    if not isinstance(element, dict) or not isinstance(block.get("block_id"), str):
        return None
    options = [o for o in (_option(raw) for raw in element.get("options") or []) if o is not None]
    return Field(
        block_id=block["block_id"],
        action_id=str(element.get("action_id", "")),
        kind=str(element.get("type", "")),
        label=_plain(block.get("label")) or block["block_id"],
        optional=bool(block.get("optional")),
        hint=_plain(block.get("hint")),
        options=options,
        chosen=_option(element.get("initial_option")),
    )


def is_form(view: dict[str, Any]) -> bool:
    """Whether a modal asks for something (it has a submit button and an input block)."""
    return bool(view.get("submit")) and any(b.get("type") == "input" for b in view.get("blocks") or [])


def modal_text(view: dict[str, Any], *, names: dict[str, str] | None = None) -> str:
    """A modal's title and its blocks other than inputs, as terminal text."""
    shown = {"blocks": [b for b in view.get("blocks") or [] if isinstance(b, dict) and b.get("type") != "input"]}
    body = render_message(shown, names=names or {}) if shown["blocks"] else ""
    return "\n".join(part for part in (f"┌ {_plain(view.get('title')) or 'Modal'}", body) if part)


class Form:
    """One open modal being filled in, field by field."""

    def __init__(self, view: dict[str, Any]) -> None:
        self.view = view
        self.fields = [f for f in (_field(b) for b in view.get("blocks") or [] if b.get("type") == "input") if f]
        self.queue = list(range(len(self.fields)))

    @property
    def current(self) -> Field | None:
        return self.fields[self.queue[0]] if self.queue else None

    @property
    def prompt(self) -> str:
        now = self.current
        if now is None:
            return "✎" + PROMPT_MARK
        keep = f" [{now.chosen[1]}]" if now.chosen is not None and now.kind in SELECTS else ""
        return f"✎ {now.label}{' (optional)' if now.optional else ''}{keep}{PROMPT_MARK}"

    def question(self) -> str:
        """What to show before asking the current field: its error, hint and choices."""
        now = self.current
        if now is None:
            return ""
        lines = [f"  ⚠️ {now.error}"] if now.error else []
        if now.hint:
            lines.append(f"  ({now.hint})")
        if now.kind == "external_select" and not now.options:
            lines.append("  (type part of a name; keybot suggests the matches)")
        elif now.kind in SELECTS:
            lines.append("  " + "  ".join(f"[{n}] {label}" for n, (_, label) in enumerate(now.options, 1)))
        elif now.kind != "plain_text_input":
            lines.append(f"  (a {now.kind}: type its value)")
        return "\n".join(lines)

    def needs_suggestions(self, line: str) -> bool:
        """Whether ``line`` is a search for an external menu (not the number or name of an option shown)."""
        now = self.current
        return now is not None and now.kind == "external_select" and self._pick(now, line) is None and bool(line.strip())

    def suggested(self, options: list[dict[str, Any]]) -> None:
        now = self.current
        if now is not None:
            now.options = [o for o in (_option(raw) for raw in options) if o is not None]

    def answer(self, line: str) -> str | None:
        """Take ``line`` for the current field: None when accepted (the next field, if any, is current),
        else what is wrong (the same field is asked again)."""
        now = self.current
        if now is None:
            return None
        typed = line.strip()
        if now.kind in SELECTS:
            if not typed and now.chosen is not None:
                return self._next(now)
            if not typed:
                return self._next(now) if now.optional else "Choose one of the options by its number."
            picked = self._pick(now, typed)
            if picked is None:
                if now.kind == "external_select" and len(now.options) == 1:
                    picked = now.options[0]
                elif now.kind == "external_select" and not now.options:
                    return f"Nothing matches “{typed}”; type another part of the name."
                else:
                    return "Choose one of the options by its number or its name."
            now.chosen = picked
            return self._next(now)
        if not typed and not now.optional:
            return f"{now.label} is required."
        now.typed = line.rstrip("\n") if typed else None
        return self._next(now)

    def _pick(self, now: Field, typed: str) -> tuple[str, str] | None:
        if typed.isdigit() and 1 <= int(typed) <= len(now.options):
            return now.options[int(typed) - 1]
        return next((o for o in now.options if typed.lower() in (o[0].lower(), o[1].lower())), None)

    def _next(self, now: Field) -> str | None:
        """On to the next field (None: the answer was accepted)."""
        now.error = ""
        self.queue.pop(0)
        return None

    def reask(self, errors: dict[str, Any]) -> None:
        """Ask again the fields ``errors`` names (by block id), each with its error."""
        self.queue = []
        for n, fld in enumerate(self.fields):
            if fld.block_id in errors:
                fld.error = str(errors[fld.block_id])
                self.queue.append(n)

    def state(self) -> dict[str, dict[str, Any]]:
        """``view.state.values`` as Slack would send them on submit."""
        values: dict[str, dict[str, Any]] = {}
        for fld in self.fields:
            entry: dict[str, Any] = {"type": fld.kind}
            if fld.kind in SELECTS:
                entry["selected_option"] = (
                    None
                    if fld.chosen is None
                    else {"text": {"type": "plain_text", "text": fld.chosen[1]}, "value": fld.chosen[0]}
                )
            else:
                entry["value"] = fld.typed
            values[fld.block_id] = {fld.action_id: entry}
        return values

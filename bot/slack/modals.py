"""Block Kit for keybot's modals: create a key, roll a key, and the one view that shows a new secret.

Modals hold at most 100 blocks. ``private_metadata`` carries only non-secret context (which key a
roll is about, where the modal was opened from); the project list is read again at submit.
"""

import json
from typing import Any

from bot.domain.lifecycle import NOTE_MAX
from bot.services.home import CreateForm
from bot.services.lifecycle import RolledKey
from bot.services.results import CreatedKey

View = dict[str, Any]
Block = dict[str, Any]

CREATE_CALLBACK = "create_key"  # the modal's callback_id, and the global shortcut's
ROLL_CALLBACK = "roll_key"
PROJECT, NAME, EXPIRY, NOTE, GRACE = "project", "name", "expiry", "note", "grace"  # block id = action id
MAX_STATIC_OPTIONS = 100  # Slack's limit for a static_select; beyond it the menu is external
GRACES = (("24h", "24 hours (default)"), ("1h", "1 hour"), ("7d", "7 days"), ("0", "none: stop the old secret now"))
COPY_NOW = "Copy it now — *it will not be shown again*."


def _text(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:75] or " ", "emoji": True}


def _option(value: str, label: str | None = None) -> Block:
    return {"text": _text(label or value), "value": value}


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}


def _input(block_id: str, label: str, element: Block, *, optional: bool = False, hint: str | None = None) -> Block:
    block: Block = {"type": "input", "block_id": block_id, "label": _text(label), "element": element}
    if optional:
        block["optional"] = True
    if hint:
        block["hint"] = _text(hint)
    return block


def _modal(callback_id: str, title: str, blocks: list[Block], *, submit: str | None, metadata: str = "") -> View:
    view: View = {
        "type": "modal",
        "callback_id": callback_id,
        "title": _text(title[:24]),
        "close": _text("Cancel" if submit else "Close"),
        "blocks": blocks[:100],
        "private_metadata": metadata,
    }
    if submit:
        view["submit"] = _text(submit)
    return view


def metadata(**fields: str) -> str:
    return json.dumps(fields, separators=(",", ":"))


def read_metadata(raw: object) -> dict[str, str]:
    """The fields of ``private_metadata`` (``{}`` when absent or not ours)."""
    try:
        data = json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def project_options(projects: list[str], query: str = "") -> list[Block]:
    """Options for the project menu: those containing ``query`` (case-insensitive), at most 100."""
    wanted = query.strip().lower()
    return [_option(p) for p in projects if wanted in p.lower()][:MAX_STATIC_OPTIONS]


def create_modal(form: CreateForm, *, origin: str = "") -> View:
    """Project (a static menu of the projects the user owns, an external one beyond 100), name, expiry, note."""
    if len(form.projects) <= MAX_STATIC_OPTIONS:
        project: Block = {
            "type": "static_select",
            "action_id": PROJECT,
            "placeholder": _text("Choose a project"),
            "options": project_options(form.projects),
        }
        if len(form.projects) == 1:
            project["initial_option"] = _option(form.projects[0])
    else:
        project = {
            "type": "external_select",
            "action_id": PROJECT,
            "placeholder": _text("Type part of a project name"),
            "min_query_length": 0,
        }
    expiry = {
        "type": "static_select",
        "action_id": EXPIRY,
        "options": [_option(e, "never expires" if e == "never" else f"in {e}") for e in form.expiries],
        "initial_option": _option(
            form.default_expiry, "never expires" if form.default_expiry == "never" else f"in {form.default_expiry}"
        ),
    }
    blocks = [
        _input(PROJECT, "Project", project),
        _input(
            NAME,
            "Key name",
            {"type": "plain_text_input", "action_id": NAME, "max_length": 64, "placeholder": _text("e.g. ci-deploy")},
            hint="Letters, digits, '-', '_' and '.'; unique in the project.",
        ),
        _input(EXPIRY, "Expires", expiry, hint="Choices allowed by your organization's key policy."),
        _input(
            NOTE,
            "Note",
            {"type": "plain_text_input", "action_id": NOTE, "multiline": True, "max_length": NOTE_MAX},
            optional=True,
        ),
    ]
    return _modal(CREATE_CALLBACK, "Create API key", blocks, submit="Create", metadata=metadata(origin=origin))


def roll_modal(*, project: str, name: str, masked: str = "", origin: str = "", nudge: str = "") -> View:
    """Choose the grace of the old secret, then Roll. ``nudge``: the reminder's button value, when opened
    from a reminder DM (the roll then answers that reminder and renews the key's lifetime)."""
    grace = {
        "type": "static_select",
        "action_id": GRACE,
        "options": [_option(value, label) for value, label in GRACES],
        "initial_option": _option(*GRACES[0]),
    }
    shown = f" (`{masked}`)" if masked else ""
    renews = " It also gets a fresh lifetime." if nudge else ""
    blocks = [
        _section(f"Give key `{name}`{shown} in `{project}` a new secret.{renews} The new secret is shown once, here."),
        _input(GRACE, "The old secret keeps working for", grace),
    ]
    return _modal(
        ROLL_CALLBACK,
        "Roll API key",
        blocks,
        submit="Roll",
        metadata=metadata(project=project, name=name, origin=origin, **({"nudge": nudge} if nudge else {})),
    )


def _secret_blocks(intro: str, plaintext: str, after: str) -> list[Block]:
    return [
        _section(intro),
        {"type": "rich_text", "elements": [{"type": "rich_text_preformatted", "elements": [{"type": "text", "text": plaintext}]}]},
        _context(after),
    ]


def created_view(created: CreatedKey) -> View:
    """The one view that shows a new key's secret: it replaces the submitted modal; closing it discards it."""
    expiry = f" It expires on {created.expires_at:%Y-%m-%d %H:%M} UTC." if created.expires_at else ""
    view = _modal(
        CREATE_CALLBACK + "_done",
        "New API key",
        _secret_blocks(
            f":key: New key `{created.name}` in `{created.project}`. {COPY_NOW}",
            created.plaintext,
            f"Only you can see this. keybot keeps only a hash; from now on the key shows as `{created.masked}`."
            f"{expiry} If you lose it, roll it.",
        ),
        submit=None,
    )
    view["clear_on_close"] = True
    return view


def rolled_view(rolled: RolledKey) -> View:
    if rolled.retiring_at > rolled.now:
        old = f"The old secret (`{rolled.old_masked}`) keeps working until {rolled.retiring_at:%Y-%m-%d %H:%M} UTC."
    else:
        old = f"The old secret (`{rolled.old_masked}`) stopped working now."
    renewed = f" It now expires on {rolled.expires_at:%Y-%m-%d %H:%M} UTC." if rolled.expires_at else ""
    view = _modal(
        ROLL_CALLBACK + "_done",
        "Rolled API key",
        _secret_blocks(
            f":arrows_counterclockwise: Rolled key `{rolled.name}` in `{rolled.project}`. {COPY_NOW}",
            rolled.plaintext,
            f"{old} From now on the key shows as `{rolled.masked}`.{renewed} Only you can see this.",
        ),
        submit=None,
    )
    view["clear_on_close"] = True
    return view


def working_view(title: str) -> View:
    return _modal(CREATE_CALLBACK + "_working", title, [_section(":hourglass_flowing_sand: Working on it…")], submit=None)


def message_view(title: str, text: str) -> View:
    """A modal that only says something (a refusal, an outcome); nothing to submit."""
    return _modal(CREATE_CALLBACK + "_message", title, [_section(text)], submit=None)

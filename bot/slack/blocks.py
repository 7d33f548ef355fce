"""Block Kit for every reply, as pure functions of service results. Every message is ephemeral.

A message is the dict Slack expects in an ack body or a ``response_url`` post: ``text`` (the
notification fallback), ``blocks`` and ``response_type: ephemeral``.

Blocks are plain dicts built by the four helpers below: slack-sdk's model classes validate every
attribute on construction and cost ~4 ms for a 20-key page, more than the whole bare Bolt request.
tests/unit/test_blocks.py parses every message here with ``slack_sdk.models.blocks.Block.parse``
and checks it round-trips, so the shapes stay what slack-sdk (and Slack) accept.
"""

from typing import Any

from bot.domain.model import AuditEvent, KeyRecord, Project, RoleGrant
from bot.domain.notices import SHELL_ORIGIN
from bot.services.results import (
    AuditPage,
    CreatedKey,
    DeletedKey,
    DeleteRequest,
    KeyPage,
    Members,
    RoleChange,
    Whoami,
)
from bot.slack.codec import ActionId, PageCursor, encode_page
from bot.slack.dates import slack_date
from bot.slack.help import HELP_LINES, roles_text

Message = dict[str, Any]
Block = dict[str, Any]




def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


DIVIDER: Block = {"type": "divider"}


def _button(
    text: str, *, action_id: ActionId, value: str, style: str | None = None, confirm: Block | None = None
) -> Block:
    button: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": text, "emoji": True},
        "action_id": action_id.value,
        "value": value,
    }
    if style:
        button["style"] = style
    if confirm:
        button["confirm"] = confirm
    return button


def _actions(*buttons: Block) -> Block:
    return {"type": "actions", "elements": list(buttons)}


def _confirm(*, title: str, text: str, confirm: str, deny: str) -> Block:
    plain = {"type": "plain_text", "emoji": True}
    return {
        "title": {**plain, "text": title},
        "text": {**plain, "text": text},
        "confirm": {**plain, "text": confirm},
        "deny": {**plain, "text": deny},
        "style": "danger",
    }


def message(text: str, blocks: list[Block] | None = None) -> Message:
    """An ephemeral message: ``text`` alone, or ``text`` as fallback for ``blocks``."""
    body: Message = {"response_type": "ephemeral", "text": text}
    if blocks:
        body["blocks"] = blocks
    return body


def help_message(*, intro: str | None = None) -> Message:
    lines = "\n".join(f"`/apikeys {usage}` — {what}" for usage, what in HELP_LINES)
    head = (intro + "\n\n") if intro else ""
    text = f"{head}*keybot manages your projects' API keys.*\n{lines}"
    roles = (
        "Roles — organization: `owner`, `billing-admin`, `member`; project: `owner`, `admin`, "
        "`read-write`, `read-only`. Only organization owners and project owners can see or change keys. "
        "`/apikeys help roles` explains each."
    )
    return message(text, [_section(text), _context(roles)])


def roles_help() -> Message:
    text = roles_text()
    return message(text, [_section(text)])


def working_message() -> Message:
    text = ":hourglass_flowing_sand: Working on it — the answer will appear here in a moment, only to you."
    return message(text, [_section(text)])


def error_message(text: str) -> Message:
    return message(f":warning: {text}")


def created_key(created: CreatedKey) -> Message:
    intro = (
        f":key: New key `{created.name}` in `{created.project}`. Copy it now — *it will not be shown again*:"
    )
    return message(
        f"New key {created.name} in {created.project} (shown once, only to you)",
        [
            _section(intro),
            _section(f"```{created.plaintext}```"),
            _context(
                f"Only you can see this message. keybot keeps only a hash; from now on the key shows as "
                f"`{created.masked}`. If you lose it, create a new key and delete this one."
            ),
        ],
    )


def _key_line(key: KeyRecord) -> str:
    used = slack_date(key.last_used_at) if key.last_used_at else "never"
    return (
        f"*{key.name}*   `{key.masked}`\n"
        f"created by <@{key.created_by}> {slack_date(key.created_at)} · last used {used}"
    )


def key_page(page: KeyPage, *, number: int) -> Message:
    if not page.keys:
        text = f"No keys in `{page.project}`" + (
            " on this page."
            if number > 1
            else f". Create one with `/apikeys create {page.project} <key-name>`."
        )
        return message(text, [_section(text)])
    title = f"*Keys in `{page.project}`* — page {number}, newest first"
    blocks: list[Block] = [_section(title), DIVIDER]
    blocks += [_section(_key_line(key)) for key in page.keys]
    buttons = []
    if page.has_newer:
        value = encode_page(PageCursor(page.project, page.keys[0].id, number - 1))
        buttons.append(_button("◀ Newer", action_id=ActionId.KEYS_NEWER, value=value))
    if page.has_older:
        value = encode_page(PageCursor(page.project, page.keys[-1].id, number + 1))
        buttons.append(_button("Older ▶", action_id=ActionId.KEYS_OLDER, value=value))
    if buttons:
        blocks.append(_actions(*buttons))
    return message(f"Keys in {page.project}, page {number}", blocks)


def confirm_delete(request: DeleteRequest) -> Message:
    text = (
        f"Delete key `{request.name}` (`{request.masked}`) from `{request.project}`? "
        "Services using it will be refused at once. This cannot be undone."
    )
    dialog = _confirm(
        title="Delete this key?",
        text=f"{request.name} ({request.masked}) stops working immediately.",
        confirm="Delete",
        deny="Keep it",
    )
    return message(
        f"Confirm: delete key {request.name} from {request.project}?",
        [
            _section(text),
            _actions(
                _button(
                    "Delete", action_id=ActionId.DELETE_CONFIRM, value=request.token, style="danger", confirm=dialog
                ),
                _button("Cancel", action_id=ActionId.DELETE_CANCEL, value=request.token),
            ),
            _context(f"This confirmation is yours alone and expires {slack_date(request.expires_at)}."),
        ],
    )


def deleted(key: DeletedKey) -> Message:
    text = f":wastebasket: Deleted key `{key.name}` (`{key.masked}`) from `{key.project}`. It no longer verifies."
    return message(text, [_section(text)])


def cancelled(key: DeletedKey) -> Message:
    text = f"Cancelled. Key `{key.name}` in `{key.project}` was not deleted."
    return message(text, [_section(text)])


def _grant_line(grant: RoleGrant) -> str:
    where = f" of `{grant.project}`" if grant.project else " of the organization"
    return f"<@{grant.user_id}> — *{grant.role}*{where}"


def whoami(info: Whoami) -> Message:
    if not info.grants:
        text = (
            f"You are <@{info.user_id}> in *{info.org}*, with no role yet. Ask an organization owner for one."
        )
    else:
        text = f"You are <@{info.user_id}> in *{info.org}*:\n" + "\n".join(
            f"• *{g.role}*" + (f" of `{g.project}`" if g.project else " of the organization")
            for g in info.grants
        )
    return message(text, [_section(text)])


def projects(items: list[Project]) -> Message:
    if not items:
        text = (
            "You can't see any project yet. Org owners create them with `/apikeys project create <project>`."
        )
    else:
        text = "*Projects you can see:*\n" + "\n".join(f"• `{p.name}`" for p in items)
    return message(text, [_section(text)])


def members(info: Members) -> Message:
    if not info.grants:
        text = f"Nobody holds a role in `{info.scope}` yet."
    else:
        text = f"*Members of `{info.scope}`:*\n" + "\n".join(_grant_line(g) for g in info.grants)
    return message(text, [_section(text)])


def role_changed(change: RoleChange) -> Message:
    where = f"project `{change.project}`" if change.project else "the organization"
    if change.role is None:
        text = f"Removed <@{change.user_id}>'s role in {where}. They got a DM."
    else:
        text = f"<@{change.user_id}> is now *{change.role}* of {where}. They got a DM."
    return message(text, [_section(text)])


def _audit_line(event: AuditEvent) -> str:
    what = event.action
    if event.key_name:
        what += f" `{event.key_name}` (`{event.key_masked}`)"
    if event.target_user:
        what += f" for <@{event.target_user}>" + (f" as *{event.role}*" if event.role else "")
    actor = f"<@{event.actor}>" if event.actor.startswith(("U", "W")) else event.actor
    where = " (in keybot shell)" if event.origin == SHELL_ORIGIN else ""
    return f"{slack_date(event.at)} — {actor} {what}{where}"


def audit_page(page: AuditPage, *, number: int) -> Message:
    if not page.events:
        text = f"No audit events in `{page.project}`" + (" on this page." if number > 1 else " yet.")
        return message(text, [_section(text)])
    blocks: list[Block] = [
        _section(f"*Audit log of `{page.project}`* — page {number}, newest first"),
        DIVIDER,
    ]
    lines = [_audit_line(e) for e in page.events]
    for start in range(0, len(lines), 10):
        blocks.append(_section("\n".join(lines[start : start + 10])))
    if page.has_older and page.events[-1].id is not None:
        value = encode_page(PageCursor(page.project, page.events[-1].id, number + 1))
        blocks.append(_actions(_button("Older ▶", action_id=ActionId.AUDIT_OLDER, value=value)))
    return message(f"Audit log of {page.project}, page {number}", blocks)

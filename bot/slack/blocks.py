"""Block Kit for every reply, as pure functions of service results. Every message is ephemeral.

A message is the dict Slack expects in an ack body or a ``response_url`` post: ``text`` (the
notification fallback), ``blocks`` and ``response_type: ephemeral``.

Blocks are plain dicts built by the four helpers below: slack-sdk's model classes validate every
attribute on construction and cost ~4 ms for a 20-key page, more than the whole bare Bolt request.
tests/unit/test_blocks.py parses every message here with ``slack_sdk.models.blocks.Block.parse``
and checks it round-trips, so the shapes stay what slack-sdk (and Slack) accept.
"""

from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import Any

import orjson

from bot.domain.model import AuditEvent, KeyRecord, RoleGrant
from bot.domain.names import shown
from bot.domain.notices import SHELL_ORIGIN
from bot.services.results import (
    AuditPage,
    CreatedKey,
    DeletedKey,
    DeleteRequest,
    KeyPage,
    Members,
    RoleChange,
    VisibleProjects,
    Whoami,
)
from bot.slack.codec import ActionId, KeyChoice, MenuChoice, PageCursor, encode_choice, encode_page
from bot.slack.dates import slack_date
from bot.slack.help import HELP_LINES, role_allows, role_phrase, roles_text
from bot.slack.status import key_status, moment, old_secret

Message = dict[str, Any]
Block = dict[str, Any]


class SharedMessage(dict[str, Any]):
    """A message built once and then shared by every reply that shows the same thing (never changed
    after it is built), with its JSON written once too (``json``, for ``bot.slack.app.acked``)."""

    @cached_property
    def json(self) -> str:
        return orjson.dumps(self).decode()




def escaped(text: str) -> str:
    """Text someone typed, shown in mrkdwn as typed: never a mention, a link or a channel alert."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


DIVIDER: Block = {"type": "divider"}


def button(
    text: str, *, action_id: ActionId, value: str, style: str | None = None, confirm: Block | None = None
) -> Block:
    found: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": text, "emoji": True},
        "action_id": action_id.value,
        "value": value,
    }
    if style:
        found["style"] = style
    if confirm:
        found["confirm"] = confirm
    return found


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
    return message(text, [section(text), context(roles)])


def roles_help() -> Message:
    text = roles_text()
    return message(text, [section(text)])


def working_message() -> Message:
    text = ":hourglass_flowing_sand: Working on it — the answer will appear here in a moment, only to you."
    return message(text, [section(text)])


def error_message(text: str) -> Message:
    return message(f":warning: {text}")


def created_key(created: CreatedKey, *, new_project: bool = False, requested: bool = False) -> Message:
    """The one reply that shows a secret. ``new_project``: the key is a new project's ``default``;
    ``requested``: revealed from an access request (its requester cannot roll it)."""
    if new_project:
        intro = (
            f":sparkles: Created project `{created.project}`; its `{created.name}` key is below. "
            "Copy it now — *it will not be shown again*:"
        )
        fallback = f"Created project {created.project}; its {created.name} key is shown once, only to you"
    else:
        intro = (
            f":key: New key `{created.name}` in `{created.project}`. Copy it now — *it will not be shown again*:"
        )
        fallback = f"New key {created.name} in {created.project} (shown once, only to you)"
    return message(
        fallback,
        [
            section(intro),
            section(f"```{created.plaintext}```"),
            context(
                f"Only you can see this message. keybot keeps only a hash; from now on the key shows as "
                f"`{created.masked}`. "
                + (
                    f"If you lose it, ask an owner of `{created.project}` to roll it."
                    if requested
                    else f"If you lose it, roll it (`/apikeys roll {created.project} {created.name}`)."
                )
                + (f" It expires {slack_date(created.expires_at)}." if created.expires_at else "")
            ),
        ],
    )


def _key_line(key: KeyRecord, status: str) -> str:
    """A key of a list: name, masked key, creator, last use, and ``status`` (``key_status``)."""
    used = slack_date(key.last_used_at) if key.last_used_at else "never"
    return (
        f"*{key.name}*   `{key.masked}`\n"
        f"created by <@{key.created_by}> {slack_date(key.created_at)} · last used {used}\n"
        f"{status}"
    )


def _option(text: str, value: str) -> Block:
    return {"text": {"type": "plain_text", "text": text, "emoji": True}, "value": value}


@lru_cache(maxsize=4096)
def _key_menu(project: str, key_name: str, disabled: bool) -> Block:
    """The overflow menu of what an owner can do to a key. Built once per key and state, then shared by
    every list that shows it (never changed after it is built): its 5 button values were most of a
    page's rendering time."""
    switch = (MenuChoice.ENABLE, "Enable") if disabled else (MenuChoice.DISABLE, "Disable")
    choices = [
        (MenuChoice.SHOW, "Show details"),
        (MenuChoice.ROLL, "Roll (new secret)"),
        switch,
        (MenuChoice.DELETE, "Delete…"),
        (MenuChoice.AUDIT, "Audit log"),
    ]
    return {
        "type": "overflow",
        "action_id": ActionId.KEY_MENU.value,
        "options": [_option(label, encode_choice(KeyChoice(c, project, key_name))) for c, label in choices],
    }


@lru_cache(maxsize=2048)
def _key_section(project: str, key: KeyRecord, status: str) -> Block:
    """One key of a list, with its menu of what an owner can do to it: a function of the key as read
    and its status at the time (``key_status`` at the page's ``now``), built once and then
    shared by every list that shows that key in that state (never changed after it is built). The
    rows of a page that nothing changed in were most of its rendering time."""
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": _key_line(key, status)},
        "accessory": _key_menu(project, key.name, key.disabled_at is not None),
    }


def key_page(page: KeyPage) -> Message:
    if not page.keys:
        text = f"No keys in `{page.project}`. Create one with `/apikeys create {page.project} <key-name>`."
        return message(text, [section(text)])
    now = page.now or datetime.now(UTC)
    statuses = tuple(key_status(key, now) for key in page.keys)
    return _key_page(page.project, tuple(page.keys), statuses, total=page.total, first=page.first)


@lru_cache(maxsize=128)
def _key_page(project: str, keys: tuple[KeyRecord, ...], statuses: tuple[str, ...], *, total: int, first: int) -> Message:
    """A page of keys: a function of its keys as read, their statuses at the time and where the page
    stands, built once and then shared (``SharedMessage``) by every list that shows the same page."""
    page = KeyPage(project=project, keys=list(keys), total=total, first=first)
    last = first + len(keys) - 1
    span = f"{first}" if last == first else f"{first}–{last}"
    where = f"{span} of {total}" if total > len(keys) else f"all {total}"
    title = f"*Keys in `{project}`* — {where}, newest first"
    blocks: list[Block] = [section(title), DIVIDER]
    blocks += [_key_section(project, key, status) for key, status in zip(keys, statuses, strict=True)]
    buttons = []
    if page.has_newer:
        value = encode_page(PageCursor(project, keys[0].id, first))
        buttons.append(button("◀ Newer", action_id=ActionId.KEYS_NEWER, value=value))
    if page.has_older:
        value = encode_page(PageCursor(project, keys[-1].id, last + 1))
        buttons.append(button("Older ▶", action_id=ActionId.KEYS_OLDER, value=value))
    if buttons:
        blocks.append(_actions(*buttons))
    return SharedMessage(message(f"Keys in {project}, {where}", blocks))


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
            section(text),
            _actions(
                button(
                    "Delete", action_id=ActionId.DELETE_CONFIRM, value=request.token, style="danger", confirm=dialog
                ),
                button("Cancel", action_id=ActionId.DELETE_CANCEL, value=request.token),
            ),
            context(f"This confirmation is yours alone and expires {slack_date(request.expires_at)}."),
        ],
    )


def deleted(key: DeletedKey) -> Message:
    text = f":wastebasket: Deleted key `{key.name}` (`{key.masked}`) from `{key.project}`. It no longer verifies."
    return message(text, [section(text)])


def cancelled(key: DeletedKey) -> Message:
    text = f"Cancelled. Key `{key.name}` in `{key.project}` was not deleted."
    return message(text, [section(text)])


def _grant_line(grant: RoleGrant, *, project: str | None = None) -> str:
    if grant.project is None and project is not None:  # an org owner, in a project's member list
        return f"<@{grant.user_id}> — *owner* of the organization (controls this project's keys)"
    where = f" in `{grant.project}`" if grant.project else " of the organization"
    return f"<@{grant.user_id}> — *{grant.role}*{where}"


def _mentions(user_ids: list[str]) -> str:
    return ", ".join(f"<@{u}>" for u in user_ids) or "nobody yet"


def whoami(info: Whoami) -> Message:
    if not info.grants:
        text = (
            f"You are <@{info.user_id}> in *{info.org}*, with no role yet, so you can see no project or key. "
            f"Ask an organization owner for one: {_mentions(info.org_owners)}."
        )
    else:
        lines = [
            f"• {role_phrase(g.role, project=g.project)} — you may "
            f"{role_allows(g.role, project=g.project is not None)}"
            for g in info.grants
        ]
        text = f"You are <@{info.user_id}> in *{info.org}*:\n" + "\n".join(lines)
    return message(text, [section(text)])


def projects(visible: VisibleProjects) -> Message:
    if visible.projects:
        text = "*Projects you can see:*\n" + "\n".join(f"• `{p.name}`" for p in visible.projects)
    elif visible.org_role == "owner":
        text = "There is no project yet. Create one with `/apikeys project create <project>`."
    else:
        held = f"Your organization role, *{visible.org_role}*, lets you see" if visible.org_role else "You see"
        text = (
            f"You can't see any project yet. {held} only the projects where you hold a project role. "
            f"An organization owner can give you one: {_mentions(visible.org_owners)}."
        )
    return message(text, [section(text)])


def members(info: Members) -> Message:
    if not info.grants:
        text = f"Nobody holds a role in `{info.scope}` yet."
    else:
        text = f"*Members of `{info.scope}`:*\n" + "\n".join(
            _grant_line(g, project=info.project) for g in info.grants
        )
    return message(text, [section(text)])


def role_changed(change: RoleChange, *, actor: str) -> Message:
    """The reply to a grant or revoke: the role in words, what it allows, what it was before."""
    who = "You" if change.user_id == actor else f"<@{change.user_id}>"
    told = "" if change.user_id == actor else " They got a DM."
    if change.role is None:
        where = f"`{change.project}`" if change.project else "the organization"
        verb = "are" if who == "You" else "is"
        text = f"{who} {verb} no longer *{change.previous}* in {where}.{told}"
    elif change.previous == change.role:
        verb = "are" if who == "You" else "is"
        text = f"{who} {verb} already {role_phrase(change.role, project=change.project)}. Nothing changed."
    else:
        verb = "are" if who == "You" else "is"
        was = f" (was {change.previous})" if change.previous else ""
        allows = role_allows(change.role, project=change.project is not None)
        text = (
            f"{who} {verb} now {role_phrase(change.role, project=change.project)}{was}. "
            f"That lets {'you' if who == 'You' else 'them'} {allows}.{told}"
        )
    return message(text, [section(text)])


def _audit_sentence(event: AuditEvent, project: str) -> str:
    """What happened, as a sentence after the actor: "made @ana owner of `web`"."""
    key = f"`{event.key_name}` (`{event.key_masked}`)"
    target = f"<@{event.target_user}>" if event.target_user else "someone"
    match event.action:
        case "key created":
            return f"created key {key}" + (f", expiring {moment(event.detail)}" if event.detail else "")
        case "key deleted":
            return f"deleted key {key}"
        case "key disabled" if event.detail and event.detail.startswith("leaked"):  # leak-action disable
            return f"disabled key {key}: {shown(event.detail, limit=300)}"
        case "key disabled":
            return f"disabled key {key}"
        case "key leaked":  # leak-action alert: nothing changed on the key
            where = shown(event.detail.removesuffix(" (alerted)"), limit=300) if event.detail else "leaked"
            return f"found key {key} {where}; it still works (leak-action `alert`)"
        case "key enabled":
            return f"enabled key {key} again"
        case "key rolled":
            return f"rolled key {key}; {old_secret(event.detail, rolled_at=event.at)}"
        case "expiry changed" if event.detail == "never":
            return f"removed the expiry of key {key}"
        case "expiry changed":
            return f"set key {key} to expire {moment(event.detail)}"
        case "policy changed":
            return f"changed the key policy: `{event.detail}`"
        case "expiry accepted":  # a reminder's *Let it expire*
            return f"chose to let key {key} expire {moment(event.detail)}"
        case "stale key kept":  # a reminder's *Keep*
            return f"kept key {key}, unused since {moment(event.detail)}"
        case "access requested":
            return "asked for a key" + (f" for: _{shown(event.detail, limit=200)}_" if event.detail else "")
        case "access approved":
            return f"approved {target}'s request for a key"
        case "access denied":
            return f"denied {target}'s request for a key"
        case "access request expired":
            return f"expired {target}'s request for a key: no owner answered within 72 hours"
        case "reveal expired":
            return f"closed {target}'s approved request: the key was not revealed within 24 hours"
        case "access revealed":
            return f"revealed key {key}, asked for and approved by {target}"
        case "access request void":
            return f"withdrew {target}'s open request for a key"
        case "project created":
            return f"created the project `{project}`"
        case "role granted":
            return f"made {target} *{event.role}* in `{project}`"
        case "role revoked":
            removed = f" *{event.role}*" if event.role else ""
            why = f" ({event.detail})" if event.detail else ""
            return f"removed {target}'s role{removed} in `{project}`{why}"
    what = event.action + (f" {key}" if event.key_name else "")
    return what + (f" for {target}" if event.target_user else "")


def _audit_line(event: AuditEvent, project: str) -> str:
    actor = f"<@{event.actor}>" if event.actor.startswith(("U", "W")) else event.actor
    where = " (in keybot shell)" if event.origin == SHELL_ORIGIN else ""
    return f"{slack_date(event.at)} — {actor} {_audit_sentence(event, project)}{where}"


def audit_page(page: AuditPage, *, number: int) -> Message:
    if not page.events:
        text = f"No audit events in `{page.project}`" + (" on this page." if number > 1 else " yet.")
        return message(text, [section(text)])
    blocks: list[Block] = [
        section(f"*Audit log of `{page.project}`* — page {number}, newest first"),
        DIVIDER,
    ]
    lines = [_audit_line(e, page.project) for e in page.events]
    for start in range(0, len(lines), 10):
        blocks.append(section("\n".join(lines[start : start + 10])))
    buttons = []
    if page.has_newer and page.events[0].id is not None:
        value = encode_page(PageCursor(page.project, page.events[0].id, max(number - 1, 1)))
        buttons.append(button("◀ Newer", action_id=ActionId.AUDIT_NEWER, value=value))
    if page.has_older and page.events[-1].id is not None:
        value = encode_page(PageCursor(page.project, page.events[-1].id, number + 1))
        buttons.append(button("Older ▶", action_id=ActionId.AUDIT_OLDER, value=value))
    if buttons:
        blocks.append(_actions(*buttons))
    return message(f"Audit log of {page.project}, page {number}", blocks)

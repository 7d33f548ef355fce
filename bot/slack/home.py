"""Block Kit for the App Home tab: roles, owned projects with key counts, keys expiring within 14 days
(with Roll and Extend buttons), keys unused for the org's stale period (with a Disable… button) and a
Create key button, and the access requests waiting for the viewer's decision (Approve / Deny). Never a
secret; at most 100 blocks: the lists are capped by the service and summarised beyond (at most 80)."""

import json
from typing import Any

from bot.domain.durations import format_span
from bot.services.home import HomeData
from bot.slack.dates import slack_date
from bot.slack.requests import awaiting_blocks

View = dict[str, Any]
Block = dict[str, Any]

HOME_CREATE, HOME_ROLL, HOME_EXTEND, HOME_DISABLE = "home_create", "home_roll", "home_extend", "home_disable"
MAX_BLOCKS = 100


def key_value(project: str, name: str, row_id: int | None = None) -> str:
    """A Home button's value: the key by project and name, and (``row_id``) which key the Home showed."""
    return json.dumps([project, name] if row_id is None else [project, name, row_id], separators=(",", ":"))


def read_key_value(raw: object) -> tuple[str, str, int | None] | None:
    """``(project, name, row id or None)`` from a Home button's value; None if it is not one."""
    try:
        data = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    if not isinstance(data, list) or len(data) not in (2, 3) or not all(isinstance(x, str) for x in data[:2]):
        return None
    row_id = data[2] if len(data) == 3 else None
    if row_id is not None and (not isinstance(row_id, int) or isinstance(row_id, bool)):
        return None
    return data[0], data[1], row_id


def _section(text: str, accessory: Block | None = None) -> Block:
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}
    if accessory is not None:
        block["accessory"] = accessory
    return block


def _button(text: str, action_id: str, value: str = "-", *, style: str | None = None) -> Block:
    button: Block = {"type": "button", "text": {"type": "plain_text", "text": text}, "action_id": action_id, "value": value}
    if style:
        button["style"] = style
    return button


def _disable_button(project: str, name: str, row_id: int) -> Block:
    button = _button("Disable…", HOME_DISABLE, key_value(project, name, row_id), style="danger")
    button["confirm"] = {
        "title": {"type": "plain_text", "text": "Disable this key?"},
        "text": {
            "type": "mrkdwn",
            "text": f"Services still using `{name}` in `{project}` will be refused. "
            f"`/apikeys enable {project} {name}` switches it on again."[:300],
        },
        "confirm": {"type": "plain_text", "text": "Disable"},
        "deny": {"type": "plain_text", "text": "Cancel"},
        "style": "danger",
    }
    return button


def _stale_blocks(data: HomeData) -> list[Block]:
    period = format_span(data.stale_after)
    if not data.stale:
        return [_section(f"*Keys unused for {period} or more:* none.")]
    blocks = [_section(f"*Keys unused for {period} or more* ({data.stale_total})")]
    for item in data.stale:
        key = item.key
        used = "never used" if key.last_used_at is None else "last used"
        blocks.append(
            _section(
                f"`{key.name}` in `{item.project}` (`{key.masked}`): {used} since {slack_date(item.since)}",
                _disable_button(item.project, key.name, key.id),
            )
        )
    more = data.stale_total - len(data.stale)
    if more > 0:
        blocks.append(_section(f"…and {more} more. `/apikeys list <project>` shows when each key was last used."))
    return blocks


def home_view(data: HomeData, *, notice: str | None = None) -> View:
    blocks: list[Block] = [{"type": "header", "text": {"type": "plain_text", "text": f"keybot — {data.org}"[:150]}}]
    if notice:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": notice[:3000]}]})
    roles = [f"{g.role} of `{g.project}`" if g.project else f"organization {g.role}" for g in data.grants]
    blocks.append(_section("*Your roles:* " + (", ".join(roles) if roles else "none yet — ask an organization owner.")))
    if data.owned_total:
        blocks.append(
            {"type": "actions", "block_id": "home_actions", "elements": [_button("Create key", HOME_CREATE, style="primary")]}
        )
    blocks.append({"type": "divider"})
    if data.awaiting:
        blocks.append(_section(f"*Requests waiting for your decision* ({data.awaiting_total})"))
        blocks += awaiting_blocks(data.awaiting)
        more = data.awaiting_total - len(data.awaiting)
        if more > 0:
            blocks.append(_section(f"…and {more} more. `/apikeys requests` lists them all."))
        blocks.append({"type": "divider"})
    if data.owned:
        lines = [f"• `{p.name}` — {p.keys} key{'' if p.keys == 1 else 's'}" for p in data.owned]
        more = data.owned_total - len(data.owned)
        if more > 0:
            lines.append(f"…and {more} more. `/apikeys projects` lists them all.")
        blocks.append(_section("*Projects you own*\n" + "\n".join(lines)))
    else:
        blocks.append(_section("*Projects you own:* none."))
    blocks.append({"type": "divider"})
    if not data.expiring:
        blocks.append(_section("*Keys expiring within 14 days:* none."))
    else:
        blocks.append(_section(f"*Keys expiring within 14 days* ({data.expiring_total})"))
        for item in data.expiring:
            key, value = item.key, key_value(item.project, item.key.name, item.key.id)
            when = slack_date(key.expires_at) if key.expires_at else "never"
            blocks.append(_section(f"`{key.name}` in `{item.project}` (`{key.masked}`) expires {when}"))
            blocks.append(
                {
                    "type": "actions",
                    "elements": [_button("Roll", HOME_ROLL, value), _button("Extend 30 days", HOME_EXTEND, value)],
                }
            )
        more = data.expiring_total - len(data.expiring)
        if more > 0:
            blocks.append(_section(f"…and {more} more. `/apikeys list <project>` shows every key's status."))
    blocks.append({"type": "divider"})
    blocks += _stale_blocks(data)
    return {"type": "home", "blocks": blocks[:MAX_BLOCKS]}

"""Block Kit and Slack mrkdwn rendered as readable terminal text, for ``keybot shell``.

Pure functions of a message dict (what keybot puts in an ack body, a ``response_url`` post or
``chat.postMessage``)::

    render_message(message, names={"UANA": "ana"})   # sections, fields, context, dividers, buttons
    mrkdwn("<@UANA> made you *owner* on <!date^1700000000^{date_short_pretty}|…>", names=...)

Mentions become ``@name``, ``<!date^…>`` becomes a date in the local time zone, links become
``label (url)``, ``*bold*`` / ``_italic_`` / ``~strike~`` lose their markers, code keeps its backticks.
Buttons are numbered in document order, ``[1] Delete (danger)  [2] Cancel``; ``message_buttons`` lists
them in that same order so a caller can press the N-th one.
"""

import html
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Any

Names = Mapping[str, str]

DIVIDER = "─" * 40
EMOJI = {
    "key": "🔑",
    "warning": "⚠️",
    "wastebasket": "🗑️",
    "bust_in_silhouette": "👤",
    "white_check_mark": "✅",
    "x": "❌",
    "lock": "🔒",
    "tada": "🎉",
    "sparkles": "✨",
    "rotating_light": "🚨",
    "arrows_counterclockwise": "🔄",
    "hourglass": "⌛",
    "hourglass_flowing_sand": "⏳",
    "no_entry": "⛔",
    "scroll": "📜",
    "zzz": "💤",
    "ok_hand": "👌",
    "no_entry_sign": "🚫",
    "outbox_tray": "📤",
    "raising_hand": "🙋",
}

_CODE_RE = re.compile(r"```[\s\S]*?```|`[^`\n]+`")
_ANGLE_RE = re.compile(r"<([^<>]*)>")
_DATE_RE = re.compile(r"!date\^(\d+)\^([^^|]*)(?:\^([^|]*))?(?:\|(.*))?", re.DOTALL)
_EMOJI_RE = re.compile(r":([a-z0-9_+-]+):")
_STYLE_RES = [
    re.compile(rf"(?<![\w{mark}])\{mark}(?=\S)([^{mark}\n]*?\S)\{mark}(?![\w{mark}])") for mark in "*_~"
]
_TOKEN_RE = re.compile(r"\{(\w+)\}")
_HELD_RE = re.compile("\x00(\\d+)\x00")


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _ago(moment: datetime, now: datetime) -> str:
    seconds = int((now - moment).total_seconds())
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 60:
        return "just now"
    units = (("day", 86400), ("hour", 3600), ("minute", 60))
    unit, size = next((unit, size) for unit, size in units if seconds >= size)
    count = seconds // size
    amount = f"{count} {unit}{'s' if count != 1 else ''}"
    return f"in {amount}" if future else f"{amount} ago"


def format_date(timestamp: int, template: str, *, now: datetime, tz: tzinfo) -> str:
    """Fill a Slack date template (``{date_short_pretty} at {time}``) for ``timestamp`` in ``tz``."""
    moment = datetime.fromtimestamp(timestamp, tz)
    today = now.astimezone(tz).date()
    relative = {today: "today", today - timedelta(days=1): "yesterday", today + timedelta(days=1): "tomorrow"}
    long_day = f"{moment:%B} {_ordinal(moment.day)}, {moment.year}"
    plain = {
        "date_num": f"{moment:%Y-%m-%d}",
        "date": long_day,
        "date_short": f"{moment:%b} {moment.day}, {moment.year}",
        "date_long": f"{moment:%A}, {long_day}",
    }
    values = {
        **plain,
        **{f"{name}_pretty": relative.get(moment.date(), value) for name, value in plain.items()},
        "time": f"{moment:%H:%M}",
        "time_secs": f"{moment:%H:%M:%S}",
        "ago": _ago(moment, now),
    }
    return _TOKEN_RE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def _angle(inner: str, names: Names, now: datetime, tz: tzinfo) -> str:
    """One ``<…>`` token: mention, channel, special mention, date or link."""
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        user = target[1:]
        return "@" + (names.get(user) or label or user)
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!date^"):
        match = _DATE_RE.fullmatch(inner)
        if match is None:
            return label or inner
        timestamp, template, link, fallback = match.groups()
        try:
            shown = format_date(int(timestamp), template, now=now, tz=tz)
        except (OverflowError, OSError, ValueError):
            return fallback or inner
        return f"{shown} ({link})" if link else shown
    if target.startswith("!subteam^"):
        return label or "@group"
    if target.startswith("!"):
        return "@" + (label or target[1:])
    if label:
        return f"{label} ({target})"
    return target.removeprefix("mailto:")


def _emoji(text: str) -> str:
    return _EMOJI_RE.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)


def mrkdwn(
    text: str, *, names: Names | None = None, now: datetime | None = None, tz: tzinfo | None = None
) -> str:
    """Slack mrkdwn as plain text; code spans and blocks keep their backticks and their content."""
    zone = tz or datetime.now().astimezone().tzinfo
    assert zone is not None
    moment = now or datetime.now(zone)
    codes: list[str] = []

    def hold(match: re.Match[str]) -> str:
        codes.append(html.unescape(match.group(0)))
        return f"\x00{len(codes) - 1}\x00"

    prose = _emoji(_CODE_RE.sub(hold, text))
    prose = _ANGLE_RE.sub(lambda m: _angle(m.group(1), names or {}, moment, zone), prose)
    for style in _STYLE_RES:
        prose = style.sub(r"\1", prose)
    return _HELD_RE.sub(lambda m: codes[int(m.group(1))], html.unescape(prose))


def _text(obj: Any, names: Names, now: datetime | None, tz: tzinfo | None) -> str:
    """A Block Kit text object (or a bare string) as plain text."""
    if isinstance(obj, str):
        return obj
    if not isinstance(obj, dict):
        return ""
    raw = str(obj.get("text", ""))
    if obj.get("type") == "mrkdwn":
        return mrkdwn(raw, names=names, now=now, tz=tz)
    return _emoji(raw)


def _is_button(element: Any) -> bool:
    return isinstance(element, dict) and element.get("type") == "button"


def message_buttons(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every button of a message (actions blocks and section accessories), in document order."""
    found: list[dict[str, Any]] = []
    for block in message.get("blocks") or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "actions":
            found += [e for e in block.get("elements") or [] if _is_button(e)]
        elif _is_button(block.get("accessory")):
            found.append(block["accessory"])
        else:
            found += _menu_choices(block.get("accessory"))
    return found


def _menu_choices(element: Any) -> list[dict[str, Any]]:
    """An overflow menu's options, each as a button the shell can number and click."""
    if not (isinstance(element, dict) and element.get("type") == "overflow"):
        return []
    return [
        {"type": "button", "text": option.get("text"), "action_id": element.get("action_id"), "selected_option": option}
        for option in element.get("options") or []
        if isinstance(option, dict)
    ]


def button_label(button: Mapping[str, Any], number: int) -> str:
    """``[1] Delete (danger)``; a link button says where it goes."""
    label = f"[{number}] {_text(button.get('text'), {}, None, None)}"
    if button.get("style") in ("danger", "primary"):
        label += f" ({button['style']})"
    if button.get("url"):
        label += f" (opens {button['url']})"
    return label


def _element(element: Any, names: Names, now: datetime | None, tz: tzinfo | None) -> str:
    if not isinstance(element, dict):
        return ""
    if element.get("type") == "image":
        return f"[image: {element.get('alt_text', '')}]"
    if element.get("type") in ("mrkdwn", "plain_text"):
        return _text(element, names, now, tz)
    placeholder = _text(element.get("placeholder"), names, now, tz)
    return f"[{element.get('type', 'element')}{': ' + placeholder if placeholder else ''}]"


def _rich_text(part: dict[str, Any]) -> str:
    """One element of a rich_text block: its text runs joined; a preformatted one between ``` fences."""
    runs = [e.get("text", "") for e in part.get("elements") or [] if isinstance(e, dict) and isinstance(e.get("text"), str)]
    text = "".join(runs)
    return f"```{text}```" if part.get("type") == "rich_text_preformatted" else text


def render_message(
    message: Mapping[str, Any],
    *,
    names: Names | None = None,
    first_button: int = 1,
    now: datetime | None = None,
    tz: tzinfo | None = None,
) -> str:
    """A message as lines of text: its blocks when it has some, else its ``text``.

    Buttons are numbered from ``first_button`` in the order ``message_buttons`` returns them.
    """
    names = names or {}
    blocks = [b for b in message.get("blocks") or [] if isinstance(b, dict)]
    if not blocks:
        return mrkdwn(str(message.get("text", "")), names=names, now=now, tz=tz)
    number = first_button
    lines: list[str] = []

    def buttons(elements: list[Any]) -> str:
        nonlocal number
        shown = []
        for element in elements:
            if _is_button(element):
                shown.append(button_label(element, number))
                number += 1
            else:
                shown.append(_element(element, names, now, tz))
        return "  ".join(shown)

    for block in blocks:
        kind = block.get("type")
        if kind == "section":
            if block.get("text"):
                lines.append(_text(block["text"], names, now, tz))
            lines += [_text(field, names, now, tz) for field in block.get("fields") or []]
            accessory = block.get("accessory")
            if accessory:
                lines.append(buttons(_menu_choices(accessory) or [accessory]))
        elif kind == "header":
            lines.append(_text(block.get("text"), names, now, tz).upper())
        elif kind == "context":
            lines.append("  ".join(_element(e, names, now, tz) for e in block.get("elements") or []))
        elif kind == "divider":
            lines.append(DIVIDER)
        elif kind == "actions":
            lines.append(buttons(list(block.get("elements") or [])))
        elif kind == "image":
            lines.append(f"[image: {block.get('alt_text', '')}]")
        elif kind == "rich_text":
            lines += [_rich_text(part) for part in block.get("elements") or [] if isinstance(part, dict)]
        else:
            lines.append(f"[{kind} block]")
    return "\n".join(lines)

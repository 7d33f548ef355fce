"""Small pieces of ``keybot shell``'s session: what was shown, a pending y/n question, text helpers."""

import textwrap
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

SHELL_HELP = """\
Type keybot commands as in Slack: /apikeys help, /apikeys create payments checkout, …
(the /apikeys prefix is optional; @name mentions are sent the way Slack sends them).
Shell commands:
  /as <name or U…>  act as another Slack user (/as alone: who you are)
  /click N          press button [N] of the latest message with buttons
  /dms [@name]      every DM keybot sent in this session (or only those to @name)
  /home             open your App Home tab (its buttons work with /click N)
  /shortcut create  the global shortcut "Create API key" (a form: /cancel closes it)
  /say <text>       post a message in #general as you (keybot checks messages for leaked keys)
  /deactivate @name deactivate a user in Slack (keybot ends their access and tells the owners)
  /help             this help
  /quit             leave (or Ctrl-D)"""


@dataclass
class Shown:
    """A message shown in this session: its number, who sees it, and where replies to it go."""

    number: int
    viewer: str
    url: str
    replaced: bool = False
    dm: tuple[str, dict[str, Any]] | None = None  # a DM's channel and message (with its ts), for clicks on it
    view_id: str | None = None  # a Home view's id, for clicks on it


@dataclass(frozen=True)
class Question:
    prompt: str
    default: bool
    answer: Callable[[bool], Awaitable[str]]


def yes_no(line: str, default: bool) -> bool | None:
    word = line.strip().lower()
    if not word:
        return default
    if word in ("y", "yes"):
        return True
    if word in ("n", "no"):
        return False
    return None


def indent(text: str) -> str:
    return textwrap.indent(text, "  ")


def plain(obj: Any) -> str:
    if isinstance(obj, dict):
        return str(obj.get("text", ""))
    return str(obj) if obj else ""

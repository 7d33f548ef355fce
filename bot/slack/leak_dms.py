"""The DMs of leaks and offboarding (bot/services/leaks.py, bot/services/offboarding.py), with their
buttons, and the private warning to someone who posted a key.

A leak DM offers *Roll*, *Enable again* (when keybot disabled the key) and *Delete…*; a deactivation DM
*Roll* and *Delete…* for each key the deactivated user created. Each button carries ``encode_choice``
(bot/slack/codec.py) and runs what the key's overflow menu runs, so the clicker's role is checked again
at click time. Each of these DMs goes alone (never merged), so its buttons stay its own. Never a secret:
keys appear by name and masked form.
"""

import math
from typing import Any

from bot.domain.leaks import LeakOutcome
from bot.domain.notices import Notice, NoticeKind
from bot.slack.blocks import escaped, section
from bot.slack.codec import ActionId, KeyChoice, MenuChoice, encode_choice
from bot.slack.dates import mention, slack_date
from bot.slack.nudges import CHECKED_AT_CLICK

MAX_LISTED_KEYS = 20  # keys of one deactivation DM with buttons (50 blocks at most per message)


def _button(text: str, *, action_id: ActionId, choice: MenuChoice, notice: Notice, key: str) -> dict[str, Any]:
    """A DM's button on one key, pinned to when the DM was written: once the key is deleted and another
    made under its name, the button refuses instead of acting on that other key."""
    assert notice.project is not None
    made_by = math.ceil(notice.at.timestamp())
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text, "emoji": True},
        "action_id": action_id.value,
        "value": encode_choice(KeyChoice(choice=choice, project=notice.project, key=key, made_by=made_by)),
    }
    if choice is MenuChoice.DELETE:
        button["style"] = "danger"
    elif choice is MenuChoice.ROLL:
        button["style"] = "primary"
    return button


def conversation(channel: str) -> str:
    """A Slack conversation as a DM names it."""
    return "a direct message" if channel.startswith("D") else f"<#{channel}>"


def leak_text(notice: Notice) -> str:
    """A leaked key's DM: where it was found (GitHub, or a Slack message), and what keybot did."""
    key = f"key `{notice.key_name}` (`{notice.key_masked}`) in project `{notice.project}`"
    when = slack_date(notice.at)
    roll = f"`/apikeys roll {notice.project} {notice.key_name} grace 0`"
    if notice.channel is None:
        found = f":rotating_light: GitHub found {key} in public at {escaped(notice.url or 'an unknown place')}, {when}."
        remove, still = "Remove it from there and", ": remove it from there and"
    else:
        link = f" (<{escaped(notice.url)}|the message>)" if notice.url else ""
        poster = mention(notice.poster) if notice.poster else "someone"
        found = f":rotating_light: {poster} posted {key} in {conversation(notice.channel)}{link}, {when}."
        remove, still = "They were asked to delete the message;", ". They were asked to delete the message;"
    match notice.value:
        case LeakOutcome.DISABLED:
            return (
                f"{found} keybot disabled it (your organization's `leak-action`): it is refused until an owner "
                f"enables it again. {remove} give its users a new key."
            )
        case LeakOutcome.ALREADY_DISABLED:
            return f"{found} It was already disabled: do not enable it again; give its users a new key."
        case _:  # LeakOutcome.ALERTED
            return (
                f"{found} It still works (your organization's `leak-action` is `alert`){still} "
                f"roll it now with {roll} (no grace: the leaked secret stops at once, and so does any "
                "older one still in a grace)."
            )


def deactivated_text(notice: Notice) -> str:
    names = ", ".join(f"`{name}` (`{masked}`)" for name, masked in notice.keys)
    return (
        f":bust_in_silhouette: {mention(notice.actor)} was deactivated in Slack, {slack_date(notice.at)}: "
        f"their roles in keybot ended. They created these keys in project `{notice.project}`: {names}. "
        "They may still hold the secrets: roll or delete what they could use."
    )


def ownerless_text(notice: Notice) -> str:
    return (
        f":warning: {mention(notice.actor)}, the last owner of keybot's organization `{notice.org}` in this "
        f"workspace, was deactivated in Slack, {slack_date(notice.at)}: nobody can manage its API keys now. "
        f"To name a new owner, ask your keybot operator to run `keybot bootstrap --team-id {notice.team_id} "
        "--owner <user id>` (their Slack member id, from their profile's ⋮ menu)."
    )


def button_dm(notice: Notice) -> dict[str, Any]:
    """What ``chat.postMessage`` sends for a leak or a deactivation: its text and its buttons."""
    if notice.kind is NoticeKind.USER_DEACTIVATED:
        return _deactivated_dm(notice)
    text = leak_text(notice)
    name = notice.key_name or ""
    buttons = [_button("Roll", action_id=ActionId.LEAK_ROLL, choice=MenuChoice.ROLL, notice=notice, key=name)]
    if notice.value == LeakOutcome.DISABLED:
        buttons.append(
            _button("Enable again", action_id=ActionId.LEAK_ENABLE, choice=MenuChoice.ENABLE, notice=notice, key=name)
        )
    buttons.append(_button("Delete…", action_id=ActionId.LEAK_DELETE, choice=MenuChoice.DELETE, notice=notice, key=name))
    return {"text": text, "blocks": [section(text), {"type": "actions", "elements": buttons}, _context()]}


def _context() -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": CHECKED_AT_CLICK}]}


def _deactivated_dm(notice: Notice) -> dict[str, Any]:
    text = deactivated_text(notice)
    head = (
        f":bust_in_silhouette: {mention(notice.actor)} was deactivated in Slack, {slack_date(notice.at)}: their roles "
        f"in keybot ended. They created these keys in project `{notice.project}`, and may still hold the secrets:"
    )
    blocks = [section(head)]
    for name, masked in notice.keys[:MAX_LISTED_KEYS]:
        blocks.append(section(f"`{name}` (`{masked}`)"))
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    _button("Roll", action_id=ActionId.LEAK_ROLL, choice=MenuChoice.ROLL, notice=notice, key=name),
                    _button("Delete…", action_id=ActionId.LEAK_DELETE, choice=MenuChoice.DELETE, notice=notice, key=name),
                ],
            }
        )
    if len(notice.keys) > MAX_LISTED_KEYS:
        more = len(notice.keys) - MAX_LISTED_KEYS
        blocks.append(section(f"…and {more} more: `/apikeys list {notice.project}` shows every key."))
    blocks.append(_context())
    return {"text": text, "blocks": blocks}


def poster_warning(masked: list[str]) -> str:
    """The private warning to whoever posted a live key (``chat.postEphemeral`` in that conversation)."""
    keys = ", ".join(f"`{m}`" for m in masked)
    one = len(masked) == 1
    return (
        f":rotating_light: Your message holds {'a live API key' if one else 'live API keys'} ({keys}). "
        "Please delete the message now (⋮ → Delete message): anyone in this conversation can read it. "
        "The key's owners were told."
    )

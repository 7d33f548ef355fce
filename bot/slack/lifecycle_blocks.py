"""Block Kit for the key lifecycle's replies (``show``, ``disable``/``enable``, ``expiry``, ``roll``,
``policy``), as pure functions of service results. Every message is ephemeral; the one that carries a
rolled key's new secret is built like a created key's (bot/slack/blocks.py ``created_key``)."""

from bot.domain.durations import format_span
from bot.domain.lifecycle import PolicyField, policy_text
from bot.domain.names import shown
from bot.domain.notices import NoticeKind
from bot.services.lifecycle import KeyChange, KeyDetails, PolicyView, RolledKey
from bot.slack.blocks import Message, context, message, section
from bot.slack.dates import slack_date
from bot.slack.status import key_status


def rolled_key(rolled: RolledKey) -> Message:
    """The one reply that shows a rolled key's new secret, like a new key's."""
    if rolled.retiring_at > rolled.now:
        old = (
            f"The old secret (`{rolled.old_masked}`) keeps working until {slack_date(rolled.retiring_at)} "
            f"({format_span(rolled.retiring_at - rolled.now)}): move your services to the new one "
            "before then."
        )
    else:
        old = f"The old secret (`{rolled.old_masked}`) stopped working now."
    intro = (
        f":arrows_counterclockwise: Rolled key `{rolled.name}` in `{rolled.project}`. "
        "Its new secret is below. "
        "Copy it now — *it will not be shown again*:"
    )
    expiry = f" It still expires {slack_date(rolled.expires_at)}." if rolled.expires_at else ""
    return message(
        f"Rolled key {rolled.name} in {rolled.project} (new secret shown once, only to you)",
        [
            section(intro),
            section(f"```{rolled.plaintext}```"),
            section(old),
            context(
                f"Only you can see this message. keybot keeps only a hash; from now on the key shows as "
                f"`{rolled.masked}`.{expiry}"
            ),
        ],
    )


def key_details(details: KeyDetails) -> Message:
    """``show``: the key masked, its status, note, creator, last use, expiry and last change."""
    key, now = details.key, details.now
    lines = [
        f"*Key `{key.name}` in `{details.project}`*   `{key.masked}`",
        f"*Status:* {key_status(key, now)}",
    ]
    if key.note:
        lines.append(f"*Note:* {shown(key.note, limit=200)}")
    lines.append(f"*Created* by <@{key.created_by}> {slack_date(key.created_at)}")
    if details.approved_by is not None:
        lines.append(f"*Requested* by <@{key.created_by}>, approved by <@{details.approved_by}>")
    lines.append(f"*Last used:* {slack_date(key.last_used_at) if key.last_used_at else 'never'}")
    lines.append(f"*Expires:* {slack_date(key.expires_at) if key.expires_at else 'never'}")
    if key.changed_at is not None and key.changed_by is not None:
        lines.append(f"*Last change* by <@{key.changed_by}> {slack_date(key.changed_at)}")
    text = "\n".join(lines)
    return message(
        f"Key {key.name} in {details.project}",
        [section(text), context(f"`/apikeys audit {details.project}` shows every change to its keys.")],
    )


def key_changed(change: KeyChange) -> Message:
    """The reply to ``disable``, ``enable`` or ``expiry``."""
    key = f"`{change.name}` (`{change.masked}`) in `{change.project}`"
    match change.kind:
        case NoticeKind.KEY_DISABLED if change.changed:
            text = (
                f":no_entry: Disabled key {key}. Services using it are refused now; "
                f"`/apikeys enable {change.project} {change.name}` turns it back on."
            )
        case NoticeKind.KEY_DISABLED:
            text = f"Key {key} is already disabled. Nothing changed."
        case NoticeKind.KEY_ENABLED if change.changed:
            text = f":white_check_mark: Enabled key {key} again. It verifies again now."
        case NoticeKind.KEY_ENABLED:
            text = f"Key {key} is not disabled. Nothing changed."
        case _:
            until = f"expires {slack_date(change.expires_at)}" if change.expires_at else "never expires"
            text = f":hourglass: Key {key} now {until}."
    told = " The project's other owners get a DM." if change.changed else ""
    return message(text + told, [section(text + told)])


_SETTING_HELP = {
    PolicyField.MAX_LIFETIME: "the longest a key may live (`none`: no limit)",
    PolicyField.DEFAULT_LIFETIME: "the expiry of a key created without `expires` (`none`: never)",
    PolicyField.STALE_AFTER: "when an unused key counts as stale",
    PolicyField.LEAK_ACTION: "what a leaked key gets: `disable` or `alert`",
    PolicyField.REQUESTS: "whether members may ask for keys with `/apikeys request`: `on` or `off`",
}


def policy_view(view: PolicyView) -> Message:
    """``policy``: every setting, its value and what it means; after a change, which one changed."""
    lines = [
        f"• `{field.value}` *{policy_text(view.policy, field)}* — {_SETTING_HELP[field]}"
        for field in PolicyField
    ]
    if view.changed is None:
        head = f"*Key policy of `{view.org}`*"
    elif view.already:
        value = policy_text(view.policy, view.changed)
        head = f"`{view.changed.value}` already is `{value}`. Nothing changed."
    else:
        head = (
            f":scroll: Changed `{view.changed.value}` in the key policy of `{view.org}`. "
            "The other organization owners get a DM."
        )
    how = (
        "Change a setting with `/apikeys policy <setting> <value>`, e.g. `/apikeys policy max-lifetime 90d`. "
        "Keys already made keep their expiry."
        if view.may_change
        else "Only organization owners can change it."
    )
    text = head + "\n" + "\n".join(lines)
    return message(f"Key policy of {view.org}", [section(text), context(how)])

"""Reminder DMs (bot/domain/jobs.py): their text, their Block Kit with buttons, the message each copy
becomes once someone decided (``chat.update``), and the private replies to their buttons.

An expiry reminder offers *Roll* (which opens the roll modal: grace, then the secret once), *Extend 30 days* and *Let it expire*; a
stale-key reminder *Delete…* (which leads to the usual confirmation) and *Keep*. Each button carries
``encode_nudge`` (bot/slack/codec.py). A reminder is never merged with other DMs: it goes alone, so its
buttons stay its own. Never a secret: keys appear by name and masked form.
"""

from typing import Any

from bot.domain.durations import format_span
from bot.domain.jobs import Decision, NudgeRef
from bot.domain.notices import Notice, NoticeKind
from bot.services.nudges import NudgeOutcome
from bot.slack.blocks import Message, button, context, message, section
from bot.slack.codec import ActionId, encode_nudge
from bot.slack.dates import mention, slack_date

CHECKED_AT_CLICK = "Each button checks again, when you click it, that you are still an owner of this project."


def _key(notice: Notice) -> str:
    return f"key `{notice.key_name}` (`{notice.key_masked}`) in project `{notice.project}`"


def reminder_text(notice: Notice) -> str:
    """The words of a reminder, of a grace end, or of a decided reminder (bot/slack/notices.py)."""
    match notice.kind:
        case NoticeKind.EXPIRY_NUDGE:
            until = notice.until or notice.at
            return (
                f":hourglass_flowing_sand: K{_key(notice)[1:]} expires {slack_date(until)}, in "
                f"{format_span(until - notice.at)}. Roll it (a new secret and a fresh lifetime), extend it by "
                "30 days, or let it expire."
            )
        case NoticeKind.STALE_NUDGE:
            since = notice.since or notice.at
            return (
                f":zzz: K{_key(notice)[1:]} has not been used since {slack_date(since)} "
                f"({format_span(notice.at - since)}). A key nobody uses is only a risk: delete it, or keep it "
                "if something still needs it."
            )
        case NoticeKind.GRACE_ENDED:
            until = notice.until or notice.at
            return (
                f":lock: The old secret of key `{notice.key_name}` (`{notice.key_masked}`) in project "
                f"`{notice.project}` stopped working {slack_date(until)}: the grace period after "
                f"{mention(notice.actor)}'s roll is over. Services still using it are refused."
            )
        case _:
            return _decided_text(notice)


def _decided_text(notice: Notice) -> str:
    who, when, key = mention(notice.actor), slack_date(notice.at), _key(notice)
    until = slack_date(notice.until) if notice.until is not None else "never"
    match notice.decision:
        case Decision.ROLLED:
            return (
                f":arrows_counterclockwise: {who} rolled {key}, {when}: it has a new secret and expires {until}; "
                "its old secret works until the grace period chosen ends."
            )
        case Decision.EXTENDED:
            return f":hourglass: {who} extended {key} by 30 days, {when}: it now expires {until}."
        case Decision.LET_EXPIRE:
            return f":hourglass: {who} chose to let {key} expire ({until}), {when}."
        case Decision.KEPT:
            return f":ok_hand: {who} kept {key}, {when}. keybot asks again if it stays unused."
        case Decision.DELETED:
            return f":wastebasket: {who} deleted {key}, {when}. It no longer verifies."
    return f"{who} answered the reminder about {key}, {when}."


def nudge_dm(notice: Notice) -> dict[str, Any]:
    """What ``chat.postMessage`` sends for a reminder: its text and, for a nudge, its buttons."""
    text = reminder_text(notice)
    if notice.nudge is None or notice.token is None or notice.kind not in (NoticeKind.EXPIRY_NUDGE, NoticeKind.STALE_NUDGE):
        return {"text": text, "blocks": [section(text)]}
    value = encode_nudge(NudgeRef(job_id=notice.nudge, token=notice.token))
    if notice.kind is NoticeKind.EXPIRY_NUDGE:
        buttons = [
            button("Roll", action_id=ActionId.NUDGE_ROLL, value=value, style="primary"),  # opens the roll modal
            button("Extend 30 days", action_id=ActionId.NUDGE_EXTEND, value=value),
            button("Let it expire", action_id=ActionId.NUDGE_LET_EXPIRE, value=value),
        ]
    else:
        buttons = [
            button("Delete…", action_id=ActionId.NUDGE_DELETE, value=value, style="danger"),
            button("Keep", action_id=ActionId.NUDGE_KEEP, value=value),
        ]
    return {
        "text": text,
        "blocks": [section(text), {"type": "actions", "elements": buttons}, context(CHECKED_AT_CLICK)],
    }


def decided_dm(notice: Notice) -> dict[str, Any]:
    """What a reminder becomes (``chat.update``) once someone decided: who did what; no buttons."""
    text = _decided_text(notice)
    return {"text": text, "blocks": [section(text), context("This reminder is closed.")]}


def answered(outcome: NudgeOutcome) -> Message:
    """The private reply to *Let it expire* or *Keep*."""
    key = f"`{outcome.name}` (`{outcome.masked}`) in `{outcome.project}`"
    if outcome.decision is Decision.LET_EXPIRE:
        until = slack_date(outcome.expires_at) if outcome.expires_at else "never"
        text = (
            f":hourglass: OK: key {key} will expire {until}; no more reminders about it. "
            f"`/apikeys expiry {outcome.project} {outcome.name} <when>` changes your mind."
        )
    else:
        text = f":ok_hand: Kept key {key}. keybot reminds its owners again if it stays unused."
    told = " Every owner's copy of the reminder now says so."
    return message(text + told, [section(text + told)])

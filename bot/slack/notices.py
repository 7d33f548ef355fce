"""DM text for each kind of notice the services queue (the outbox worker sends it), and the one DM
that several notices to one person within a few seconds are merged into."""

from bot.domain.notices import Notice, NoticeKind
from bot.slack.dates import mention, slack_date
from bot.slack.help import role_allows, role_phrase
from bot.slack.leak_dms import deactivated_text, leak_text, ownerless_text
from bot.slack.nudges import reminder_text
from bot.slack.requests import request_text


def dm_text(notice: Notice) -> str:
    """The DM for one notice. Never a secret: keys appear by name and masked form."""
    who, when = mention(notice.actor), slack_date(notice.at)
    match notice.kind:
        case NoticeKind.KEY_CREATED:
            return (
                f":key: {who} created key `{notice.key_name}` (`{notice.key_masked}`) in project "
                f"`{notice.project}`, {when}."
            )
        case NoticeKind.KEY_DELETED:
            return (
                f":wastebasket: {who} deleted key `{notice.key_name}` (`{notice.key_masked}`) in project "
                f"`{notice.project}`, {when}. It no longer verifies."
            )
        case NoticeKind.ROLE_GRANTED:
            assert notice.role is not None
            held = role_phrase(notice.role, project=notice.project)
            was = f" (you were {notice.previous_role})" if notice.previous_role else ""
            where = "" if notice.project else f" `{notice.org}`"
            text = f":bust_in_silhouette: {who} made you {held}{where}{was}, {when}."
            try:
                return f"{text} That lets you {role_allows(notice.role, project=notice.project is not None)}."
            except ValueError:  # a role this version does not know (a row queued by another version)
                return text
        case NoticeKind.ROLE_REVOKED:
            removed = f" *{notice.previous_role}*" if notice.previous_role else ""
            where = f"`{notice.project}`" if notice.project else f"the organization `{notice.org}`"
            return f":bust_in_silhouette: {who} removed your role{removed} in {where}, {when}."
        case _:
            return _lifecycle_dm(notice, who=who, when=when)


def _lifecycle_dm(notice: Notice, *, who: str, when: str) -> str:
    key = f"key `{notice.key_name}` (`{notice.key_masked}`) in project `{notice.project}`"
    match notice.kind:
        case NoticeKind.KEY_DISABLED:
            return f":no_entry: {who} disabled {key}, {when}. It is refused until an owner enables it again."
        case NoticeKind.KEY_ENABLED:
            return f":white_check_mark: {who} enabled {key} again, {when}. It verifies again."
        case NoticeKind.KEY_ROLLED:
            old = (
                f"the old secret works until {slack_date(notice.until)}"
                if notice.until is not None and notice.until > notice.at
                else "the old secret stopped working at once"
            )
            return (
                f":arrows_counterclockwise: {who} rolled key `{notice.key_name}` in project `{notice.project}`, "
                f"{when}: it now shows as `{notice.key_masked}`, and {old}."
            )
        case NoticeKind.EXPIRY_CHANGED:
            until = f"expires {slack_date(notice.until)}" if notice.until is not None else "never expires"
            return f":hourglass: {who} changed the expiry of {key}, {when}: it now {until}."
        case NoticeKind.KEY_LEAKED:
            return leak_text(notice)
        case NoticeKind.USER_DEACTIVATED:
            return deactivated_text(notice)
        case NoticeKind.ORG_OWNERLESS:
            return ownerless_text(notice)
        case NoticeKind.EXPIRY_NUDGE | NoticeKind.STALE_NUDGE | NoticeKind.GRACE_ENDED | NoticeKind.NUDGE_DECIDED:
            return reminder_text(notice)
        case (
            NoticeKind.ACCESS_REQUESTED
            | NoticeKind.REQUEST_APPROVED
            | NoticeKind.REQUEST_DECIDED
            | NoticeKind.REVEAL_CLOSED
            | NoticeKind.REQUEST_ENDED
        ):
            return request_text(notice)
        case _:  # NoticeKind.POLICY_CHANGED
            return (
                f":scroll: {who} changed the key policy of the organization `{notice.org}`, {when}: "
                f"`{notice.setting}` is now `{notice.value}`."
            )


def merged_dm_text(notices: list[Notice]) -> str:
    """One DM for several notices to the same person, oldest first."""
    if len(notices) == 1:
        return dm_text(notices[0])
    lines = "\n".join(f"• {dm_text(notice)}" for notice in notices)
    return f"{len(notices)} changes in keybot:\n{lines}"

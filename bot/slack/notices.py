"""DM text for each kind of notice the services queue (the outbox worker sends it)."""

from bot.domain.notices import Notice, NoticeKind
from bot.slack.dates import mention, slack_date


def _where(notice: Notice) -> str:
    if notice.project is not None:
        return f"project `{notice.project}`"
    return f"the organization `{notice.org}`"


def dm_text(notice: Notice) -> str:
    """The DM for one notice. Never a secret: keys appear by name and masked form."""
    who, when = mention(notice.actor), slack_date(notice.at)
    match notice.kind:
        case NoticeKind.KEY_CREATED:
            return (
                f":key: {who} created key `{notice.key_name}` (`{notice.key_masked}`) in project "
                f"`{notice.project}` on {when}."
            )
        case NoticeKind.KEY_DELETED:
            return (
                f":wastebasket: {who} deleted key `{notice.key_name}` (`{notice.key_masked}`) in project "
                f"`{notice.project}` on {when}. It no longer verifies."
            )
        case NoticeKind.ROLE_GRANTED:
            return f":bust_in_silhouette: {who} made you *{notice.role}* of {_where(notice)} on {when}."
        case NoticeKind.ROLE_REVOKED:
            return f":bust_in_silhouette: {who} removed your role in {_where(notice)} on {when}."

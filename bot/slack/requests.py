"""Access requests in Slack (bot/services/requests.py): the DMs (an approver's, with *Approve* and *Deny*;
the requester's, with *Reveal key*), what each becomes once decided (``chat.update``), the requester's
DM when a request is denied or expires, and the replies to ``request``, ``requests`` and the buttons.

Every button carries ``encode_request`` (bot/slack/codec.py) and is checked again at click time. A
reason is the requester's text: it is shown escaped, never as mentions or links. Never a secret: the
key is shown only in the reply to *Reveal key* (``blocks.created_key``).
"""

from datetime import datetime
from typing import Any

from bot.domain.durations import format_span
from bot.domain.notices import Notice, NoticeKind
from bot.domain.requests import AccessRequest, RequestRef, RequestState
from bot.services.requests import RequestDecided, RequestList, RequestSent
from bot.slack.blocks import Block, Message, button, context, escaped, message, section
from bot.slack.codec import ActionId, encode_request
from bot.slack.dates import mention, slack_date

CHECKED_AT_CLICK = "Each button checks again, when you click it, that you may still use it."


def _reason(reason: str | None) -> str:
    return f" for: _{escaped(reason)}_" if reason else " (no reason given)"


def _lifetime(expires: str | None) -> str:
    if expires is None:
        return "the organization's default lifetime"
    return "no expiry" if expires == "never" else f"expiry `{expires}`"


def _decision_buttons(request_id: int, token: str) -> Block:
    value = encode_request(RequestRef(request_id=request_id, token=token))
    return {
        "type": "actions",
        "elements": [
            button("Approve", action_id=ActionId.REQUEST_APPROVE, value=value, style="primary"),
            button("Deny", action_id=ActionId.REQUEST_DENY, value=value, style="danger"),
        ],
    }


def _reveal_button(request_id: int, token: str) -> Block:
    value = encode_request(RequestRef(request_id=request_id, token=token))
    return {
        "type": "actions",
        "elements": [button("Reveal key", action_id=ActionId.REQUEST_REVEAL, value=value, style="primary")],
    }


def request_text(notice: Notice) -> str:
    """The words of an access request's DM, or of what it became."""
    requester = mention(notice.requester or notice.actor)
    project = f"`{notice.project}`"
    who = "keybot" if notice.actor == "keybot" else mention(notice.actor)
    match notice.kind:
        case NoticeKind.ACCESS_REQUESTED:
            until = notice.until or notice.at
            return (
                f":raising_hand: {requester} asks for a key of project {project}{_reason(notice.value)}, "
                f"with {_lifetime(notice.setting)}. Approve it and they can reveal a new key once; "
                f"the request expires {slack_date(until)} if nobody answers."
            )
        case NoticeKind.REQUEST_APPROVED:
            until = notice.until or notice.at
            return (
                f":white_check_mark: {who} approved your request for a key of project {project}. Reveal it "
                f"before {slack_date(until)} (within {format_span(until - notice.at)}): the key is created when "
                "you click, and shown once, only to you."
            )
        case NoticeKind.REQUEST_DECIDED:
            return _decided(notice, requester=requester, project=project, who=who)
        case NoticeKind.REVEAL_CLOSED:
            match notice.decision:
                case RequestState.REVEALED:
                    return (
                        f":key: You revealed your key of project {project}, {slack_date(notice.at)}: it is "
                        f"`{notice.key_name}` (`{notice.key_masked}`). keybot keeps only a hash."
                    )
                case RequestState.VOID:
                    return f":no_entry: Your approved request for a key of project {project} was withdrawn."
            return (
                f":hourglass: Your approved request for a key of project {project} expired unrevealed, "
                f"{slack_date(notice.at)}. `/apikeys request {notice.project}` asks again."
            )
        case _:  # NoticeKind.REQUEST_ENDED
            if notice.decision == RequestState.DENIED:
                return (
                    f":no_entry_sign: {who} denied your request for a key of project {project}, "
                    f"{slack_date(notice.at)}. Ask them why, or another owner."
                )
            return (
                f":hourglass: Your request for a key of project {project} expired: no owner answered within "
                f"72 hours. `/apikeys request {notice.project}` asks again."
            )


def _decided(notice: Notice, *, requester: str, project: str, who: str) -> str:
    when = slack_date(notice.at)
    match notice.decision:
        case RequestState.APPROVED:
            return f":white_check_mark: {who} approved {requester}'s request for a key of project {project}, {when}."
        case RequestState.DENIED:
            return f":no_entry_sign: {who} denied {requester}'s request for a key of project {project}, {when}."
        case RequestState.VOID:
            return f":no_entry: {requester}'s request for a key of project {project} was withdrawn, {when}."
    return f":hourglass: {requester}'s request for a key of project {project} expired unanswered, {when}."


def request_dm(notice: Notice) -> dict[str, Any]:
    """What ``chat.postMessage`` sends for a request DM with buttons (to an approver, or the requester)."""
    text = request_text(notice)
    blocks: list[Block] = [section(text)]
    if notice.access_request is not None and notice.token is not None:
        if notice.kind is NoticeKind.ACCESS_REQUESTED:
            blocks.append(_decision_buttons(notice.access_request, notice.token))
        else:
            blocks.append(_reveal_button(notice.access_request, notice.token))
        blocks.append(context(CHECKED_AT_CLICK))
    return {"text": text, "blocks": blocks}


def request_closed_dm(notice: Notice) -> dict[str, Any]:
    """What a request DM becomes (``chat.update``) once decided, expired or revealed: no buttons."""
    text = request_text(notice)
    return {"text": text, "blocks": [section(text), context("This request is closed.")]}


# -- replies ------------------------------------------------------------------------------------


def request_sent(sent: RequestSent) -> Message:
    """The reply to ``request``."""
    request = sent.request
    approvers = ", ".join(mention(u) for u in request.approvers)
    due = slack_date(request.due_at) if request.due_at else "in 72 hours"
    text = (
        f":outbox_tray: Asked for a key of `{request.project}`{_reason(request.reason)}, with "
        f"{_lifetime(request.expires)}. {approvers} got a DM with Approve and Deny; you get a DM when one of "
        f"them decides. The request expires {due} if nobody answers. `/apikeys requests` shows it."
    )
    return message(text, [section(text)])


def request_decided(decided: RequestDecided) -> Message:
    """The private reply to *Approve* or *Deny*."""
    request = decided.request
    who = mention(request.requester)
    if decided.state is RequestState.APPROVED:
        until = slack_date(request.reveal_until) if request.reveal_until else "within 24 hours"
        text = (
            f":white_check_mark: Approved {who}'s request for a key of `{request.project}`. They get a DM with a "
            f"Reveal key button that works once, until {until}."
        )
    else:
        text = f":no_entry_sign: Denied {who}'s request for a key of `{request.project}`. They get a DM."
    told = " Every approver's copy of the request now says so."
    return message(text + told, [section(text + told)])


def _state(request: AccessRequest, now: datetime) -> str:
    match request.state:
        case RequestState.PENDING:
            return "waiting for an owner" + (f", expires {slack_date(request.due_at)}" if request.due_at else "")
        case RequestState.APPROVED if request.reveal_until is not None and now >= request.reveal_until:
            return f"approved by {mention(request.decided_by or '')}, not revealed in time"
        case RequestState.APPROVED:
            until = slack_date(request.reveal_until) if request.reveal_until else "soon"
            return f"approved by {mention(request.decided_by or '')}: reveal it before {until}"
        case RequestState.DENIED:
            return f"denied by {mention(request.decided_by or '')}"
        case RequestState.REVEALED:
            return f"revealed as key `{request.key_name}`, approved by {mention(request.decided_by or '')}"
        case RequestState.EXPIRED:
            return "expired"
    return "withdrawn"


def awaiting_blocks(awaiting: list[AccessRequest]) -> list[Block]:
    """Each request waiting for the viewer's decision, with Approve and Deny (``requests``, the Home)."""
    found: list[Block] = []
    for request in awaiting:
        when = slack_date(request.created_at) if request.created_at else ""
        found.append(
            section(
                f"{mention(request.requester)} asks for a key of `{request.project}`{_reason(request.reason)}, "
                f"with {_lifetime(request.expires)} ({when})."
            )
        )
        found.append(_decision_buttons(request.id, request.token))
    return found


def request_list(found: RequestList) -> Message:
    """``requests``: those you may decide on (with their buttons), then your own (with *Reveal key*)."""
    where = f" in `{found.project}`" if found.project else ""
    blocks: list[Block] = []
    if found.awaiting:
        blocks.append(section(f"*Requests waiting for your decision{where}*"))
        blocks += awaiting_blocks(found.awaiting)
    if found.own:
        blocks.append(section(f"*Your requests{where}*"))
        for request in found.own:
            blocks.append(section(f"`{request.project}`{_reason(request.reason)}: {_state(request, found.now)}"))
            open_ = request.state is RequestState.APPROVED and (
                request.reveal_until is None or found.now < request.reveal_until
            )
            if open_:
                blocks.append(_reveal_button(request.id, request.token))
    if not blocks:
        text = (
            f"No access requests{where} for you to decide, and none of yours. "
            "`/apikeys request <project> [expires <when>] [for <reason…>]` asks for a key."
        )
        return message(text, [section(text)])
    return message(f"Access requests{where}", blocks[:50])

"""Leaked keys (DESIGN.md §5.5, §5.7), reported by GitHub secret scanning or pasted in a Slack
conversation keybot is in: the report, the feedback GitHub gets back, where a key was posted in Slack,
what keybot did about a leaked key, and the audit text that makes a replay harmless.

A report and a message hold plaintexts: ``Leak.token`` and ``PostedMessage.candidates`` are hidden from
repr and never stored or logged; only a token's SHA-256 (the feedback's ``token_hash``) and the key's
masked form leave the request.
"""

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum

from bot.domain.names import unstorable_replaced

MAX_LEAKS = 1000  # tokens in one report; more is refused whole
MAX_URL = 500  # characters of a location kept; a longer one is cut (it is only shown, never followed)
LEAK_ACTOR = "GitHub"  # the actor of a leak's audit event and DM: nobody in Slack did it
SLACK_LEAK_ACTOR = "keybot"  # the actor of a Slack leak's audit event: keybot saw it, the poster did nothing
MAX_CANDIDATES = 20  # key-shaped strings of one message checked; more are ignored (each may cost argon2)


class Label(StrEnum):
    TRUE_POSITIVE = "true_positive"
    FALSE_POSITIVE = "false_positive"


class LeakOutcome(StrEnum):
    """What keybot did about a leaked key that still works (or could again): ``Notice.value``."""

    DISABLED = "disabled"  # leak-action disable: switched off at once
    ALERTED = "alerted"  # leak-action alert: left working, owners told
    ALREADY_DISABLED = "already disabled"  # it was off already: owners told not to switch it on again


@dataclass(frozen=True, slots=True)
class Leak:
    """One token GitHub found: ``url`` is where (a commit, an issue, a gist), ``source`` what kind of place."""

    token: str = field(repr=False)
    type: str
    url: str
    source: str = ""

    @property
    def token_hash(self) -> str:
        return hashlib.sha256(self.token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class Feedback:
    """GitHub's feedback entry for one token: its SHA-256, its type as reported, and the verdict."""

    token_hash: str
    token_type: str
    label: Label

    def as_json(self) -> dict[str, str]:
        return {"token_hash": self.token_hash, "token_type": self.token_type, "label": self.label.value}


def shown_url(url: str) -> str:
    """A reported location as keybot keeps it: one line, at most ``MAX_URL`` characters."""
    line = unstorable_replaced(" ".join(url.split()))  # NUL or a lone surrogate would fail the audit row
    return line if len(line) <= MAX_URL else line[: MAX_URL - 1] + "…"


def leak_detail(url: str, outcome: LeakOutcome) -> str:
    """The audit detail of a leak: where it was found and what was done. The same report gives the same
    text, which is how a replayed report is recognised (bot/services/leaks.py)."""
    base = f"leaked, found by GitHub at {shown_url(url)}"
    return base if outcome is LeakOutcome.DISABLED else f"{base} ({outcome.value})"


@dataclass(frozen=True, slots=True)
class PostedMessage:
    """A Slack message holding key-shaped strings: who posted it where (``ts`` is the message's own,
    also for an edit), and the strings, hidden from repr."""

    team_id: str
    channel: str
    ts: str
    poster: str
    candidates: tuple[str, ...] = field(repr=False)
    thread_ts: str | None = None


def slack_leak_detail(message: PostedMessage, outcome: LeakOutcome) -> str:
    """The audit detail of a key posted in Slack: the same message (an edit, an event Slack sent again)
    gives the same text, which is how it is recognised as handled already."""
    base = f"leaked in Slack by {message.poster} in {message.channel} (message {message.ts})"
    return base if outcome is LeakOutcome.DISABLED else f"{base} ({outcome.value})"

"""Leaked keys (DESIGN.md §5.5): found by GitHub in public (``POST /v1/leaks/github``: label each
reported token, and apply the org's ``leak-action`` to each live keybot key among them), or posted in a
Slack conversation keybot is in (``posted``: the same flow, for the live keys of that workspace's org).

A token is a ``true_positive`` when it is a well-formed key (prefix, length, checksum) whose key id
exists and whose secret matches its argon2 hash — a key's current secret or a rolled key's old one,
whatever its state; anything else is a ``false_positive``, and costs no write. The secret is checked in
the verifier's argon2 lane (bounded; a full lane is waited out briefly, then ``Busy``).

A matching secret that still works, or could work again (enabled, disabled or expired, but not an old
secret past its grace), is acted on in one transaction, like ``/apikeys disable``: with ``leak-action
disable`` (the default) the key is disabled at once and this instance's verifier told
(``on_key_changed``), with ``alert`` it is left working; either way the event is audited with where it
was found, and every owner of the project (org owners included) gets a DM with the masked key, the
project, the location and what was done. A key already disabled is left so and its owners are told.

Replays are harmless: GitHub may send the same report again. The transaction locks the org, then looks
for this key's leak event at this same location among the project's latest ``REPLAY_WINDOW`` audit
events; if it is there, nothing is written and nobody is DMed again. The plaintext is never stored or
logged: the audit event and the DM carry the masked form only.

A key posted in Slack is acted on the same way, when it is a live key of the org of the workspace it
was posted in (a key of another workspace is left alone); the DM names the conversation, the poster and
the message's permalink. The same message seen again (an edit, an event Slack sent twice, to two
instances) finds its own audit event and changes nothing.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from bot.domain.errors import Busy, InvalidInput
from bot.domain.hashing import Hasher
from bot.domain.keys import KeyFormat, ParsedKey
from bot.domain.leaks import (
    LEAK_ACTOR,
    MAX_CANDIDATES,
    SLACK_LEAK_ACTOR,
    Feedback,
    Label,
    Leak,
    LeakOutcome,
    PostedMessage,
    leak_detail,
    shown_url,
    slack_leak_detail,
)
from bot.domain.lifecycle import LeakAction
from bot.domain.model import AuditEvent, VerifyRecord
from bot.domain.notices import Notice, NoticeKind
from bot.ports import VerifyReads
from bot.services.base import Context, Service
from bot.services.verification import Verifier

REPLAY_WINDOW = 200  # the project's latest audit events searched for an earlier report of the same leak
BUSY_PAUSE = 0.05  # seconds between tries while the argon2 lane is full
BUSY_TRIES = 100  # then give up with Busy (the endpoint answers 503; GitHub retries, harmlessly)


class LeakService(Service):
    def __init__(
        self,
        context: Context,
        *,
        reads: VerifyReads,
        hasher: Hasher,
        key_format: KeyFormat,
        verifier: Verifier | None = None,
    ) -> None:
        """``verifier``: the verify API's, whose per-key-id failure budget also bounds what wrong secrets
        pasted in Slack cost argon2, and whose cache of valid secrets spares argon2 for keys in use."""
        super().__init__(context)
        self._reads = reads
        self._hasher = hasher
        self._format = key_format
        self._verifier = verifier

    async def report(self, leaks: Sequence[Leak]) -> list[Feedback]:
        """Handle one report from GitHub; its feedback, one entry per reported token, in order. A token
        reported twice in one report is checked once."""
        labels: dict[str, Label] = {}
        feedback = []
        for leak in leaks:
            digest = leak.token_hash
            if digest not in labels:
                labels[digest] = await self._handle(leak)
            feedback.append(Feedback(token_hash=digest, token_type=leak.type, label=labels[digest]))
        return feedback

    async def posted(self, message: PostedMessage, *, permalink: Callable[[], Awaitable[str | None]]) -> list[str]:
        """Act on the live keys of ``message.team_id``'s org among the key-shaped strings of a Slack
        message; the masked forms of those acted on now (not those handled before). ``permalink`` is
        asked once, only when a live key was found."""
        acted: list[str] = []
        link: str | None = None
        asked = False
        for token in list(dict.fromkeys(message.candidates))[:MAX_CANDIDATES]:
            found = await self._live(token)
            if found is None:
                continue
            record, parsed = found
            if not asked:
                link, asked = await permalink(), True
            masked = self._format.mask(parsed.plaintext)
            outcome = await self._act(
                record.id,
                masked=masked,
                detail=lambda outcome: slack_leak_detail(message, outcome),
                actor=SLACK_LEAK_ACTOR,
                team_id=message.team_id,
                url=link,
                channel=message.channel,
                poster=message.poster,
            )
            if outcome is not None:
                acted.append(masked)
        return acted

    async def _live(self, token: str) -> tuple[VerifyRecord, ParsedKey] | None:
        """The key ``token`` is a secret of, if it still works or could again; None otherwise."""
        try:
            parsed = self._format.parse(token)
        except InvalidInput:
            return None  # a near-miss (a typo, a bad checksum): no database query
        record = await self._reads.verify_record(parsed.key_id)
        if record is None or not await self._posted_secret_matches(token, parsed, record.secret_hash):
            return None
        if record.retiring_at is not None and self._clock() >= record.retiring_at:
            return None  # a rolled key's old secret past its grace: it can never work again
        return record, parsed

    async def _posted_secret_matches(self, token: str, parsed: ParsedKey, secret_hash: str) -> bool:
        """Whether a key-shaped string posted in Slack is the secret of its key id. Anyone in a channel
        can post strings, so as at the verify API wrong secrets for one key id cost argon2 at most the
        failure budget's (over it: not checked, as if wrong); a secret verified lately costs none."""
        if self._verifier is None:
            return await self._matches(secret_hash, parsed.plaintext)
        if self._verifier.knows_valid(token):
            return True
        matched = await self._verifier.budgeted_match(
            parsed.key_id, lambda: self._matches(secret_hash, parsed.plaintext)
        )
        return matched is True

    async def _handle(self, leak: Leak) -> Label:
        try:
            parsed = self._format.parse(leak.token)
        except InvalidInput:
            return Label.FALSE_POSITIVE  # not a keybot key (or mistyped): no database query
        record = await self._reads.verify_record(parsed.key_id)
        if record is None or not await self._matches(record.secret_hash, parsed.plaintext):
            return Label.FALSE_POSITIVE
        if record.retiring_at is not None and self._clock() >= record.retiring_at:
            return Label.TRUE_POSITIVE  # a rolled key's old secret past its grace: it can never work again
        url = leak.url
        await self._act(
            record.id,
            masked=self._format.mask(parsed.plaintext),
            detail=lambda outcome: leak_detail(url, outcome),
            actor=LEAK_ACTOR,
            url=shown_url(url),
        )
        return Label.TRUE_POSITIVE

    async def _matches(self, secret_hash: str, plaintext: str) -> bool:
        for _ in range(BUSY_TRIES - 1):
            try:
                return await self._hasher.verify(secret_hash, plaintext)
            except Busy:
                await asyncio.sleep(BUSY_PAUSE)
        return await self._hasher.verify(secret_hash, plaintext)

    async def _act(
        self,
        row_id: int,
        *,
        masked: str,
        detail: Callable[[LeakOutcome], str],
        actor: str,
        url: str | None,
        team_id: str | None = None,
        channel: str | None = None,
        poster: str | None = None,
    ) -> LeakOutcome | None:
        """Apply the org's leak-action to the key with ``row_id``, unless this leak was handled already
        (None), the key is gone (None) or it belongs to another workspace than ``team_id`` (None)."""
        outcome: LeakOutcome | None = None
        async with self._uow.transaction() as tx:
            found = await tx.key_by_row_id(row_id)
            project = None if found is None else await tx.project_by_id(found.project_id)
            org = None if project is None else await tx.org_by_id(project.org_id)
            if project is None or org is None or (team_id is not None and org.team_id != team_id):
                return None  # deleted meanwhile, or another workspace's key: nothing to do here
            await tx.lock_org(org.id)  # one report at a time per org, so a concurrent replay sees this one
            key = await tx.key_by_row_id(row_id)
            if key is None:
                return None
            details = {detail(each) for each in LeakOutcome}
            recent = await tx.audit_page(project_id=project.id, before_id=None, limit=REPLAY_WINDOW)
            if any(e.key_masked == masked and e.detail in details for e in recent):
                return None  # a replay: already disabled or alerted for this very location
            now = self._clock()
            if key.disabled_at is not None:
                outcome = LeakOutcome.ALREADY_DISABLED
            elif (await tx.org_policy(org.id)).leak_action is LeakAction.DISABLE:
                outcome = LeakOutcome.DISABLED
                await tx.set_key_disabled(key.id, disabled=True, at=now, by=actor)
            else:
                outcome = LeakOutcome.ALERTED
            action = NoticeKind.KEY_DISABLED if outcome is LeakOutcome.DISABLED else NoticeKind.KEY_LEAKED
            await tx.add_audit(
                AuditEvent(
                    org_id=org.id,
                    project_id=project.id,
                    actor=actor,
                    action=action.value,
                    at=now,
                    key_name=key.name,
                    key_masked=masked,
                    origin=self._origin,
                    detail=detail(outcome),
                )
            )
            for owner in await tx.project_owners(org_id=org.id, project_id=project.id):
                await tx.notify(
                    Notice(
                        kind=NoticeKind.KEY_LEAKED,
                        recipient=owner,
                        team_id=org.team_id,
                        actor=actor,
                        at=now,
                        project=project.name,
                        key_name=key.name,
                        key_masked=masked,
                        origin=self._origin,
                        value=outcome.value,
                        url=url,
                        channel=channel,
                        poster=poster,
                    )
                )
        if outcome is LeakOutcome.DISABLED:
            self._on_key_changed(row_id)  # refused on this instance at once; elsewhere within a second
        self._on_notify()
        return outcome

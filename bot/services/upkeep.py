"""Upkeep: the retention purge that keeps tables from growing for ever, and dead letters for operators.

- ``RetentionPolicy``: how long sent DMs, dead DMs and used or expired delete confirmations are kept
  (None: for ever). Audit events are never purged: they are the audit trail.
- ``Purger``: deletes what the policy no longer keeps, in bounded batches (each its own short
  statement, so several instances may purge at once); ``start()`` purges at once, then every
  ``interval`` seconds until ``stop()``.
- ``DeadLetterService``: what ``keybot outbox`` lists, and ``keybot outbox retry`` revives.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.errors import Unavailable
from bot.ports import DeadLetters, OutboxEntry, Retention

log = logging.getLogger("keybot.retention")

PURGE_BATCH = 500
PURGE_INTERVAL = 3600.0  # seconds
LIST_LIMIT = 50

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class RetentionPolicy:
    sent_dms: timedelta | None = timedelta(days=30)
    dead_dms: timedelta | None = timedelta(days=90)
    pending_deletions: timedelta | None = timedelta(days=1)  # after they expired or were used


@dataclass(frozen=True)
class Purged:
    sent_dms: int = 0
    dead_dms: int = 0
    pending_deletions: int = 0

    @property
    def total(self) -> int:
        return self.sent_dms + self.dead_dms + self.pending_deletions


class Purger:
    def __init__(
        self,
        store: Retention,
        *,
        clock: Clock,
        policy: RetentionPolicy,
        batch: int = PURGE_BATCH,
        interval: float = PURGE_INTERVAL,
    ) -> None:
        self._store = store
        self._clock = clock
        self._policy = policy
        self._batch = batch
        self._interval = interval
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def purge_once(self) -> Purged:
        """Delete everything the policy no longer keeps, as of now; how many rows of each kind."""
        now = self._clock()
        store, policy = self._store, self._policy

        async def drain(keep: timedelta | None, purge: Callable[[datetime, int], Awaitable[int]]) -> int:
            if keep is None:
                return 0
            total = 0
            while True:
                deleted = await purge(now - keep, self._batch)
                total += deleted
                if deleted < self._batch:
                    return total
                await asyncio.sleep(0)  # let requests in between batches

        return Purged(
            sent_dms=await drain(
                policy.sent_dms, lambda cut, n: store.purge_sent_notifications(sent_before=cut, limit=n)
            ),
            dead_dms=await drain(
                policy.dead_dms, lambda cut, n: store.purge_dead_notifications(dead_before=cut, limit=n)
            ),
            pending_deletions=await drain(
                policy.pending_deletions,
                lambda cut, n: store.purge_pending_deletions(ended_before=cut, limit=n),
            ),
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="keybot-retention")

    async def stop(self, *, within: float = 5.0) -> None:
        """Stop after the batch in progress (cancelled if it takes longer than ``within`` seconds)."""
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError):  # wait_for cancels it
                await asyncio.wait_for(self._task, timeout=within)

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                purged = await self.purge_once()
            except Unavailable:
                log.warning("retention: database unavailable; will purge again in %.0fs", self._interval)
            except Exception:
                log.exception("retention: unexpected error; will purge again in %.0fs", self._interval)
            else:
                if purged.total:
                    log.info(
                        "retention: deleted %d sent DMs, %d dead DMs, %d used or expired delete confirmations",
                        purged.sent_dms,
                        purged.dead_dms,
                        purged.pending_deletions,
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval)


@dataclass(frozen=True)
class OutboxOverview:
    pending: list[OutboxEntry]
    dead: list[OutboxEntry]
    pending_total: int
    dead_total: int


@dataclass(frozen=True)
class Revived:
    ids: list[int]
    not_dead: list[int]  # asked for, but no dead row has that id (unknown, pending or sent)


class DeadLetterService:
    def __init__(self, store: DeadLetters, *, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def overview(self, *, limit: int = LIST_LIMIT) -> OutboxOverview:
        """The oldest ``limit`` pending and dead DMs, and how many there are of each."""
        return OutboxOverview(
            pending=await self._store.unsent_notifications(dead=False, limit=limit),
            dead=await self._store.unsent_notifications(dead=True, limit=limit),
            pending_total=await self._store.pending_notifications(),
            dead_total=await self._store.dead_notifications(),
        )

    async def retry(self, ids: Sequence[int] | None) -> Revived:
        """Make the dead DMs ``ids`` (every dead DM when None) pending again, due now."""
        revived = await self._store.revive_notifications(ids, at=self._clock())
        missing = sorted(set(ids or ()) - set(revived))
        return Revived(ids=sorted(revived), not_dead=missing)


# -- what `keybot outbox` prints ------------------------------------------------------------------


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _table(title: str, rows: list[OutboxEntry], total: int, *, dead: bool) -> list[str]:
    if not rows:
        return [f"{title}: none"]
    header = f"{'dead since' if dead else 'next try':<20}"
    lines = [
        f"{title}: {total}",
        f"  {'id':>6}  {'to':<12} {'team':<12} {'what':<13} {'tries':>5}  {header}  last error",
    ]
    for r in rows:
        when = _when(r.dead_at if dead and r.dead_at is not None else r.next_attempt_at)
        lines.append(
            f"  {r.id:>6}  {r.user_id:<12} {r.team_id or '-':<12} {r.kind or 'text':<13} {r.attempts:>5}  "
            f"{when:<20}  {r.last_error or '-'}"
        )
    if total > len(rows):
        lines.append(f"  … and {total - len(rows)} more")
    return lines


def outbox_report(overview: OutboxOverview) -> str:
    """Pending and dead DMs, oldest first, one line each: never a DM's text."""
    lines = _table("Pending DMs", overview.pending, overview.pending_total, dead=False)
    lines += _table("Dead DMs", overview.dead, overview.dead_total, dead=True)
    if overview.dead_total:
        lines.append("Send dead DMs again with `keybot outbox retry <id> …` or `keybot outbox retry --all-dead`.")
    return "\n".join(lines)


def retry_report(revived: Revived, *, every_dead: bool) -> str:
    lines = []
    if revived.ids:
        lines.append(
            f"Queued again: DM {', '.join(map(str, revived.ids))}. A running `keybot serve` sends "
            f"{'them' if len(revived.ids) > 1 else 'it'} within seconds."
        )
    elif every_dead:
        lines.append("No dead DMs: nothing to retry.")
    if revived.not_dead:
        lines.append(
            f"No dead DM with id {', '.join(map(str, revived.not_dead))} (unknown, still pending, or "
            "already sent); `keybot outbox` lists the dead ones."
        )
    return "\n".join(lines)

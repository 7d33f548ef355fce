"""The loop of the outbox's workers (Slack DMs, the audit webhook): drain one batch, then wait for a
wake-up or the poll interval; a failing database or a bug costs one pass, never the loop."""

import asyncio
import contextlib
import logging

from bot.domain.errors import Unavailable


class Drainer:
    """A background loop around ``drain_once`` (each subclass's: claim and send one batch, return how
    many went). A full batch is followed by the next at once; ``stop()`` ends after a last drain."""

    def __init__(self, *, name: str, log: logging.Logger, poll_interval: float, batch: int) -> None:
        self._name = name
        self._log = log
        self._poll = poll_interval
        self._batch = batch
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    async def drain_once(self) -> int:
        raise NotImplementedError

    def wake(self) -> None:
        """Tell the worker new rows are waiting (called after a commit that queued some)."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"keybot-{self._name}")

    async def stop(self, *, drain_seconds: float = 5.0) -> None:
        """Finish in-flight sends, try one last drain, then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=drain_seconds)
            except TimeoutError:
                self._task.cancel()

    async def run(self) -> None:
        while True:
            try:
                sent = await self.drain_once()
            except Unavailable:
                sent = 0
                self._log.warning("%s: database unavailable; will retry", self._name)
            except Exception:
                sent = 0
                self._log.exception("%s: unexpected error; will retry", self._name)
            if self._stopping and sent == 0:
                return
            if sent == self._batch:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
            self._wake.clear()

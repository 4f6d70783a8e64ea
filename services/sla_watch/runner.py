"""The background loops of sla_watch: the deadline scheduler and the holding-mail sender.

Both run after the broker started (they publish) and stop before it stops.
A store outage is logged and retried on the next round; any other error is a
bug: the loop ends, the app is asked to exit and exits non-zero (a supervisor
restarts it, and the ledger makes the restart safe).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from services.common.lifecycle import CrashWatch
from services.common.logging import get_logger
from services.common.retry import OUTAGE
from services.sla_watch.errors import SlaWatchError

__all__ = ["LoopCrashed", "Loops", "run_periodically"]

log = get_logger(__name__)


class LoopCrashed(SlaWatchError):
    """A background loop ended on an unexpected error."""


async def _pause(stop: asyncio.Event, wake: asyncio.Event | None, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    _done, pending = await asyncio.wait(
        waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
    )
    for waiter in pending:
        waiter.cancel()
    if wake is not None:
        wake.clear()


async def run_periodically(
    name: str,
    step: Callable[[], Awaitable[int]],
    *,
    interval_s: float,
    stop: asyncio.Event,
    full_batch: int | None = None,
    wake: asyncio.Event | None = None,
) -> None:
    """Run ``step`` until ``stop``: again at once after a full batch, else after ``interval_s``
    (or when ``wake`` is set). Store and broker outages are logged and retried on the next
    round (the outbox sweep and the by-id publications talk to Kafka: a broker restart
    must not end the loop, and with it the app)."""
    while not stop.is_set():
        try:
            count = await step()
        except OUTAGE as error:
            log.warning("loop.round_failed", loop=name, error=type(error).__name__)
            count = 0
        if full_batch is None or count < full_batch:
            await _pause(stop, wake, interval_s)


class Loops:
    """Starts the loops, stops them gracefully, and remembers whether one crashed."""

    def __init__(self, on_crash: Callable[[], None]) -> None:
        self.stop_event = asyncio.Event()
        self._crashes = CrashWatch(on_crash)  # logs the traceback, asks the app to exit
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def crashed(self) -> bool:
        """Whether a loop ended on an unexpected error."""
        return self._crashes.crash is not None

    def start(self, name: str, job: Awaitable[None]) -> None:
        """Run ``job`` as a task; a crash is logged and asks the app to exit."""

        async def guarded() -> None:
            await job

        self._tasks.append(self._crashes.watch(asyncio.create_task(guarded(), name=name)))

    async def stop(self, grace_s: float) -> None:
        """Ask every loop to stop, wait up to ``grace_s``, then cancel what is left."""
        self.stop_event.set()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=grace_s)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)  # crashes were logged

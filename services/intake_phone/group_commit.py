"""Group commit: the payloads of concurrent requests are recorded together, in one transaction.

A webhook request (or a raw-topic message) hands its events to
:meth:`GroupCommit.submit` and waits. When no writer is idle, the submission
starts one (up to ``max_writers``); a writer takes everything queued (up to
``max_items``), records it with one call of ``write`` (one transaction), then
resolves each submitter's future with its own result, and goes on while more
arrived meanwhile. So under load one transaction carries many requests (the
store's round trips and its commit are shared), a second writer overlaps its
round trips with the first's, and with no load a lone request is written at
once: nothing waits on a timer. Each writer keeps one *session* (the service's
store connection) for all the batches it writes in a row, and closes it when
the queue is empty.

All or nothing: when ``write`` raises, nothing of the batch was stored. A
store outage (a transient error, past the writer's own retries) is handed to
every submitter of the batch (its webhook answers 503); any other error may
come from one payload, so each submission of the batch is written again
alone and only the one that fails again gets its error. A
submitter that stops waiting cancels only its own future: the batch goes on,
its events are recorded, and the platform's retry is then a duplicate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Generic, TypeVar

from services.common.retry import is_transient_store_error

__all__ = ["GroupCommit"]

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[S, T, R]):
    """Batches concurrent submissions and writes each batch with one ``write`` call."""

    def __init__(
        self,
        write: Callable[[S, Sequence[T]], Awaitable[Sequence[R]]],
        session: Callable[[], AbstractAsyncContextManager[S]],
        *,
        max_items: int = 256,
        max_writers: int = 1,
    ) -> None:
        self._write = write
        self._session = session
        self._max_items = max_items
        self._max_writers = max_writers
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers = 0  # writers that will still look at the queue
        self._busy = 0  # writers writing a batch right now

    @property
    def queued(self) -> int:
        """Submissions waiting for a batch (not counting those being written)."""
        return len(self._queue)

    async def submit(self, item: T) -> R:
        """Queue ``item`` for the next batch and return its result once that batch committed."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._busy == self._writers < self._max_writers:  # no writer idle: start one
            self._writers += 1
            task = asyncio.create_task(self._run_writer())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _run_writer(self) -> None:
        # The session's entry must not fail (it connects lazily, inside ``write``).
        leaving = False
        try:
            async with self._session() as session:
                while self._queue:
                    batch = self._queue[: self._max_items]
                    del self._queue[: self._max_items]
                    self._busy += 1
                    try:
                        await self._write_batch(session, batch)
                    finally:
                        self._busy -= 1
                # Nothing queued: from here on, a submission starts a new writer.
                leaving = True
                self._writers -= 1
        finally:
            if not leaving:
                self._writers -= 1

    async def _write_batch(self, session: S, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._write(session, [item for item, _ in batch])
        except asyncio.CancelledError:  # shutdown: its submitters are cancelled too
            for _, future in batch:
                future.cancel()
            raise
        except Exception as error:  # noqa: BLE001 (handed to the submitters, or isolated)
            if len(batch) > 1 and not is_transient_store_error(error):
                # Not an outage: one payload may be what the store refuses. Each is
                # written alone, so that only its own request fails.
                for entry in batch:
                    await self._write_batch(session, [entry])
                return
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

"""The inbox watcher: adopt, resume, claim and run batches, until told to stop (procedure 4.3).

Each pass first adopts the batches of dead instances, then resumes the
batches of this instance's working folder (a restart resumes half-done
batches), then claims complete batches from the inbox, oldest first. A batch
interrupted by an outage (Kafka, the store, the disk, a reader crash) stays in
the working folder and is resumed on a later pass, after a growing pause;
other errors are bugs and stop the service (the ack-after-archive order makes
that safe: a restart picks up where it stopped).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from services.common.logging import get_logger
from services.common.retry import OUTAGE
from services.common.store import Store
from services.intake_scan.batches import BatchRunner
from services.intake_scan.domain.batches import loggable_batch_id
from services.intake_scan.errors import ReaderCrashed
from services.intake_scan.inbox import Inbox

__all__ = ["RETRYABLE", "PassReport", "ScanService"]

log = get_logger(__name__)
RETRYABLE: tuple[type[Exception], ...] = (*OUTAGE, ReaderCrashed)
"""Errors that interrupt a batch without condemning it: it is resumed on a later pass."""
_MAX_PAUSE_S = 30.0


class PassReport:
    """What one pass over the inbox did: batch statuses and interruptions."""

    def __init__(self) -> None:
        self.statuses: dict[str, int] = {}
        self.interrupted = 0

    def count(self, status: str) -> None:
        """Count one batch that ended with ``status``."""
        self.statuses[status] = self.statuses.get(status, 0) + 1


def _batch_label(path: Path) -> str:
    name = path.name[:-4] if path.name.lower().endswith(".zip") else path.name
    return loggable_batch_id(name)


class ScanService:
    """Watches one inbox for one instance."""

    def __init__(
        self,
        *,
        inbox: Inbox,
        runner: BatchRunner,
        poll_interval_s: float,
        store: Store | None = None,
    ) -> None:
        self._inbox = inbox
        self._runner = runner
        self._poll_interval_s = poll_interval_s
        self.store = store
        """The progress store, for the readiness probe (None in some tests)."""

    async def poll_once(
        self, stop: asyncio.Event | None = None, *, adopt: bool = True
    ) -> PassReport:
        """One pass (4.3): adopt dead instances' batches, resume ours, claim and run new ones."""
        report = PassReport()

        def stopping() -> bool:
            return stop is not None and stop.is_set()

        if adopt:
            await asyncio.to_thread(self._inbox.adopt_orphans)
        for path in await asyncio.to_thread(self._pending):
            if stopping():
                return report
            if not await asyncio.to_thread(path.exists):
                # its zip, run just before, finished it (a crash had left both): running it
                # again would quarantine a batch that is already done, with a false letter
                continue
            await self._run(path, stop, report)
        for candidate in await asyncio.to_thread(self._inbox.ready_batches):
            if stopping():
                return report
            claimed = await asyncio.to_thread(self._inbox.claim, candidate)
            if claimed is None:
                continue
            batch = loggable_batch_id(candidate.name)
            log.info("batch.claimed", batch_id=batch, instance=self._inbox.instance_id)
            await self._run(claimed, stop, report)
        return report

    def _pending(self) -> list[Path]:
        # zips first: one whose folder already exists only needs disposing of
        return sorted(self._inbox.pending(), key=lambda path: (path.is_dir(), path.name))

    async def _run(self, path: Path, stop: asyncio.Event | None, report: PassReport) -> None:
        try:
            report.count(await self._runner.run(path, stop))
        except RETRYABLE as error:
            report.interrupted += 1
            log.warning(
                "batch.interrupted", batch_id=_batch_label(path), error=type(error).__name__
            )

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; pause longer after each interrupted pass."""
        failures = 0
        while not stop.is_set():
            try:
                report = await self.poll_once(stop)
                failures = failures + 1 if report.interrupted else 0
            except OSError as error:  # the inbox or work folder itself is unavailable
                failures += 1
                log.warning("inbox.unavailable", error=type(error).__name__)
            pause = min(
                self._poll_interval_s * 2**failures, max(_MAX_PAUSE_S, self._poll_interval_s)
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=pause)

"""The mailbox loop: connect, drain the mailbox batch by batch, wait (IDLE or poll), repeat.

Issue 4, "IMAP source": reconnect with backoff on any connection loss. Every
infrastructure failure (IMAP, Kafka, store, SMTP relay, disk) ends the pass:
the mails not yet moved stay in the mailbox and the next pass, after a
jittered exponential backoff, picks them up again. Bad input never ends a
pass: it is quarantined by ``MailIntake``.
"""

from __future__ import annotations

import asyncio
import random

from services.common.logging import get_logger
from services.intake_mail.batches import PassReport
from services.intake_mail.errors import TRANSIENT_ERRORS, IntakeMailError
from services.intake_mail.metrics import MailMetrics
from services.intake_mail.ports import FolderState, MailSource
from services.intake_mail.service import MailIntake

__all__ = ["MailboxLoop", "backoff_delay"]

log = get_logger(__name__)


def backoff_delay(attempt: int, maximum: float, base: float = 0.5) -> float:
    """Jittered exponential backoff: ``base * 2**(attempt-1)``, capped, ±20 %."""
    delay = min(base * 2.0 ** max(attempt - 1, 0), maximum)
    jitter: float = random.uniform(0.8, 1.2)
    return delay * jitter


class MailboxLoop:
    """Runs ``MailIntake`` over one mailbox until cancelled."""

    def __init__(
        self,
        source: MailSource,
        intake: MailIntake,
        *,
        batch_size: int = 100,
        poll_interval_s: float = 60.0,
        reconnect_max_s: float = 60.0,
        metrics: MailMetrics | None = None,
    ) -> None:
        self._source = source
        self._intake = intake
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._reconnect_max_s = reconnect_max_s
        self._metrics = metrics or MailMetrics()
        self.passes = 0

    async def run_forever(self) -> None:
        """Connect, drain, wait for news; on failure back off and reconnect (issue 4)."""
        failures = 0
        try:
            while True:
                try:
                    state = await self._source.open()
                    await self._intake.opened(self._source.account, state)
                    log.info("mailbox.opened", folder=state.folder, uidvalidity=state.uidvalidity)
                    while True:
                        await self.drain(state)
                        failures = 0
                        await self._source.wait_for_mail(self._poll_interval_s)
                except TRANSIENT_ERRORS as error:
                    failures += 1
                    delay = backoff_delay(failures, self._reconnect_max_s)
                    self._metrics.failed_passes.labels(type(error).__name__).inc()
                    log.warning(
                        "mailbox.pass_failed",
                        error=type(error).__name__,
                        detail=str(error)[:200] if isinstance(error, IntakeMailError) else None,
                        retry_in_s=round(delay, 2),
                    )
                    await self._source.close()
                    await asyncio.sleep(delay)
        finally:
            await self._source.close()

    async def drain(self, state: FolderState) -> int:
        """Process batches until the mailbox holds nothing new; return how many mails moved.

        Pipelined: batch N+1 is fetched, parsed and published while batch N is
        recorded, acknowledged and moved (at most two batches in flight; the
        IMAP commands themselves stay one at a time). A failure of either ends
        the drain once the other is over (cancelled, both stop at once). The
        drain ends on an empty search made after the last batch settled.
        """
        moved = 0
        settled: list[str] = []
        settling: tuple[list[str], asyncio.Task[PassReport], frozenset[str]] | None = None
        try:
            while True:
                in_flight = set(settling[0]) if settling else set()
                found = await self._source.pending(self._batch_size + len(in_flight))
                uids = [uid for uid in found if uid not in in_flight][: self._batch_size]
                if not uids and settling is not None:
                    # Search again once it settled: mail that arrived meanwhile was
                    # announced (EXISTS) to the MOVE, not to the IDLE that follows.
                    moved += (await settling[1]).moved
                    settled, settling = settling[0], None
                    continue
                if not uids:
                    break
                if uids == settled:
                    log.warning("mailbox.batch_not_moved", count=len(uids))
                    break
                batch = await self._intake.prepare(
                    self._source, state, uids, settling[2] if settling else frozenset()
                )
                if settling is not None:
                    moved += (await settling[1]).moved
                    settled = settling[0]
                task = asyncio.create_task(self._intake.settle(self._source, batch))
                settling = (uids, task, batch.item_ids)
                self.passes += 1
        except BaseException as error:
            if settling is not None:
                if isinstance(error, asyncio.CancelledError):
                    settling[1].cancel()
                await asyncio.gather(settling[1], return_exceptions=True)
            raise
        if settling is not None:
            moved += (await settling[1]).moved
        return moved

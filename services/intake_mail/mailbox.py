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
        """Process batches until the mailbox holds nothing new; return how many mails moved."""
        moved = 0
        previous: list[str] = []
        while True:
            uids = await self._source.pending(self._batch_size)
            if not uids:
                return moved
            if uids == previous:
                log.warning("mailbox.batch_not_moved", count=len(uids))
                return moved
            report = await self._intake.process(self._source, state, uids)
            self.passes += 1
            moved += report.moved
            previous = uids

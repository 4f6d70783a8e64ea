"""Sending the acknowledgements: one per accepted customer mail, even across crashes.

Procedure 4.12 NB ("accusé réception automatique de prise en charge") and
5.1.4 (an outbound contact is traced). A row in ``mail_acknowledgements``
exists once per item (primary key, written with the item's record). A batch
(the acknowledgements of one fetch batch, or of one sweep) is sent in three
steps: claim its rows at once (``pending`` → ``sending``, compare-and-set,
committed) once the relay answered; hand the messages to the relay over up to
``concurrency`` connections at once; then in one transaction mark each row
``sent`` (or back to ``pending``, or ``failed``) and put the ``OutboundContact``
of each sent one in the outbox. Two commits per batch, not one per message.
Once the batch is done, the outbox relay publishes those rows on
``contacts.outbound.v1`` by their ids (no scan of the queue); what a failure
leaves there is the app's periodic outbox sweep's.

Rows are claimed by chunks of two per connection (eight by default), so that
what a crash can leave in doubt is one chunk, not the whole batch.

Residual risk, accepted and counted: a crash after the claim and before the
marks leaves the chunk's rows ``sending``; once the lease expires they become
``uncertain`` and are never resent (at most one acknowledgement, never two).
So does a relay that took the message but never answered the end of DATA.
Its Message-ID is deterministic, so the relay's log tells whether it left.
Transient SMTP failures go back to ``pending`` with backoff; a 5xx refusal,
or too many attempts, ends ``failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from schemas import OutboundContact
from schemas.topics import OUTBOUND_CONTACTS
from services.common.logging import get_logger
from services.common.metrics import metrics
from services.common.outbox import OutboxMessage, OutboxRelay, add_to_outbox
from services.common.retry import retry_store
from services.common.store.engine import Store
from services.intake_mail.acknowledgement_mail import AcknowledgementRenderer
from services.intake_mail.adapters.repository import DueAcknowledgement, MailRepository
from services.intake_mail.errors import TRANSIENT_ERRORS, AcknowledgementNotSent
from services.intake_mail.metrics import MailMetrics
from services.intake_mail.ports import Mailer, MailSession

__all__ = ["Acknowledger", "SendResult", "contact_id_for"]

Clock = Callable[[], dt.datetime]
T = TypeVar("T")
log = get_logger(__name__)
_BACKOFF_BASE_S = 30.0
_BACKOFF_MAX_S = 3600.0


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def contact_id_for(item_id: str) -> str:
    """The deterministic id of an acknowledgement's ``OutboundContact`` (consumers dedupe on it)."""
    return f"acknowledgement:{item_id}"


@dataclass(frozen=True, slots=True)
class SendResult:
    """How one claimed acknowledgement ended: sent, retry later, or failed for good."""

    item_id: str
    status: str  # sent | pending | failed | uncertain
    at: dt.datetime
    error: str | None = None
    next_attempt_at: dt.datetime | None = None


class Acknowledger:
    """Sends due acknowledgements through the mailer, once each, and traces them."""

    def __init__(
        self,
        store: Store,
        mailer: Mailer,
        renderer: AcknowledgementRenderer,
        relay: OutboxRelay,
        *,
        envelope_from: str = "",
        lease_s: float = 300.0,
        max_attempts: int = 12,
        batch_size: int = 100,
        concurrency: int = 4,
        metrics: MailMetrics | None = None,
        clock: Clock = _utcnow,
        retry_max_s: float = 30.0,
    ) -> None:
        self._store = store
        self._mailer = mailer
        self._renderer = renderer
        self._relay = relay
        self._envelope_from = envelope_from
        self._lease = dt.timedelta(seconds=lease_s)
        self._max_attempts = max_attempts
        self._batch_size = batch_size
        self._concurrency = max(1, concurrency)
        self._metrics = metrics or MailMetrics()
        self._clock = clock
        self._retry_max_s = retry_max_s
        self._lock = asyncio.Lock()

    async def send_due(self, item_ids: Sequence[str] | None = None) -> list[SendResult]:
        """Send the acknowledgements that are due (of ``item_ids`` only, when given).

        Rule: procedure 4.12 NB, at most one per item (see module docstring).
        An unreachable relay is logged and leaves every row pending.
        """
        async with self._lock:
            now = self._clock()
            due = await self._transaction(lambda repo: self._due(repo, now, item_ids))
            if not due:
                return []
            try:
                results, written = await self._send_batch(due)
            except AcknowledgementNotSent as error:
                log.warning("acknowledgement.relay_unavailable", reason=error.reason)
                return []
        await self._relay.publish_committed(written)  # recorded: the pass goes on regardless
        return results

    async def run_forever(self, interval_s: float) -> None:
        """Sweep: retries, and rows a crash left pending; infrastructure errors are logged.

        Cancelled (shutdown), it closes the mailer's kept connections.
        """
        try:
            while True:
                await asyncio.sleep(interval_s)
                try:
                    await self.send_due()
                except TRANSIENT_ERRORS as error:
                    log.warning("acknowledgement.sweep_failed", error=type(error).__name__)
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the mailer's kept connections (at shutdown)."""
        await self._mailer.close()

    async def _due(
        self, repo: MailRepository, now: dt.datetime, item_ids: Sequence[str] | None
    ) -> list[DueAcknowledgement]:
        """Expire interrupted claims, then read what is due (one transaction)."""
        for item_id in await repo.expire_claims(now - self._lease, now):
            self._metrics.acknowledgements.labels("uncertain").inc()
            log.error("acknowledgement.uncertain", item_id=item_id)
        return await repo.due(now, self._batch_size, item_ids)

    async def _send_batch(
        self, due: Sequence[DueAcknowledgement]
    ) -> tuple[list[SendResult], list[int]]:
        """Open sessions (the relay answers), claim the batch, send concurrently, record;
        return the results and the outbox rows written, to publish by id."""
        results: list[SendResult] = []
        written: list[int] = []
        async with contextlib.AsyncExitStack() as stack:
            sessions = [await stack.enter_async_context(self._mailer.session())]
            for _ in range(min(self._concurrency, len(due)) - 1):
                try:
                    sessions.append(await stack.enter_async_context(self._mailer.session()))
                except AcknowledgementNotSent:
                    break  # fewer connections will do
            # Claimed by chunks of two rows per connection: a crash leaves at most one
            # chunk in doubt (never resent), not the whole batch; two commits a chunk.
            size = 2 * len(sessions)
            for start in range(0, len(due), size):
                done, rows = await self._send_chunk(sessions, due[start : start + size])
                results += done
                written += rows
        return results, written

    async def _send_chunk(
        self, sessions: Sequence[MailSession], chunk: Sequence[DueAcknowledgement]
    ) -> tuple[list[SendResult], list[int]]:
        """Claim the chunk, send it over the sessions, record every outcome; return the
        results and the outbox rows written."""
        ids = [row.item_id for row in chunk]
        claimed = await self._transaction(lambda repo: repo.claim_many(ids, self._clock()))
        rows = [row for row in chunk if row.item_id in claimed]
        queue, started, results = iter(rows), set[str](), list[SendResult]()
        written: list[int] = []
        try:
            async with asyncio.TaskGroup() as group:
                for session in sessions:
                    group.create_task(self._send_each(session, queue, started, results))
        except BaseExceptionGroup as failed:  # the first failure, as itself
            raise failed.exceptions[0] from None
        finally:
            # Interrupted (shutdown): rows never started go back to pending; a row
            # whose send was under way stays claimed, hence uncertain (at most one).
            unstarted = [row.item_id for row in rows if row.item_id not in started]
            if results or unstarted:
                written = await self._finish(results, unstarted)
        return results, written

    async def _send_each(
        self,
        session: MailSession,
        queue: Iterator[DueAcknowledgement],
        started: set[str],
        results: list[SendResult],
    ) -> None:
        """One connection's share of the batch: the next unsent row, until none is left."""
        for row in queue:
            started.add(row.item_id)
            results.append(await self._send(session, row))

    async def _send(self, session: MailSession, row: DueAcknowledgement) -> SendResult:
        now = self._clock()
        try:
            message = self._renderer.render(
                item_id=row.item_id,
                recipient=row.recipient,
                contact_date=row.contact_date,
                in_reply_to=row.in_reply_to,
                now=now,
            )
        except ValueError as error:  # a recipient no header may carry: never sendable
            return SendResult(row.item_id, "failed", now, str(error)[:200])
        try:
            await session.send(self._envelope_from, row.recipient, message.data)
        except AcknowledgementNotSent as error:
            attempts = row.attempts + 1
            if error.ambiguous:  # it may have left: at most one, so never again
                return SendResult(row.item_id, "uncertain", now, error.reason)
            if error.permanent or attempts >= self._max_attempts:
                return SendResult(row.item_id, "failed", now, error.reason)
            delay = min(_BACKOFF_BASE_S * 2.0 ** (attempts - 1), _BACKOFF_MAX_S)
            retry_at = now + dt.timedelta(seconds=delay)
            return SendResult(row.item_id, "pending", now, error.reason, retry_at)
        return SendResult(row.item_id, "sent", self._clock())

    async def _finish(
        self, results: Sequence[SendResult], unstarted: Sequence[str] = ()
    ) -> list[int]:
        """One transaction: close every claim of the batch, trace the sent ones (outbox);
        return the outbox row ids, published by id once the batch is done."""
        outcomes: list[dict[str, Any]] = [
            {
                "item_id": r.item_id, "status": r.status, "last_error": r.error,
                "sent_at": r.at if r.status == "sent" else None,
                "next_attempt_at": r.next_attempt_at,
            }
            for r in results
        ] + [
            {"item_id": item_id, "status": "pending", "last_error": None, "sent_at": None,
             "next_attempt_at": None}
            for item_id in unstarted
        ]  # fmt: skip
        sent = [r for r in results if r.status == "sent"]

        async def attempt() -> list[int]:
            async with self._store.transaction() as connection:
                repo = MailRepository(connection, postgres=self._store.is_postgres)
                await repo.finish_many(outcomes)
                if not sent:
                    return []
                return await add_to_outbox(connection, [_trace(r) for r in sent], sent[-1].at)

        written = await retry_store(attempt, max_seconds=self._retry_max_s)
        for result in results:
            self._report(result)
        return written

    async def _transaction(self, operation: Callable[[MailRepository], Awaitable[T]]) -> T:
        async def attempt() -> T:
            async with self._store.transaction() as connection:
                return await operation(MailRepository(connection, postgres=self._store.is_postgres))

        return await retry_store(attempt, max_seconds=self._retry_max_s)

    def _report(self, result: SendResult) -> None:
        status = "retry" if result.status == "pending" else result.status
        self._metrics.acknowledgements.labels(status).inc()
        if result.status == "sent":
            metrics.acknowledgements_sent.labels(channel="email").inc()
            log.info("acknowledgement.sent", item_id=result.item_id)
        else:
            log.warning(
                "acknowledgement.not_sent", item_id=result.item_id, status=status,
                error=result.error,
            )  # fmt: skip


def _trace(result: SendResult) -> OutboxMessage:
    contact = OutboundContact(
        contact_id=contact_id_for(result.item_id),
        purpose="acknowledgement",
        medium="email",
        sent_at=result.at,
        item_id=result.item_id,
    )
    return OutboxMessage(
        topic=OUTBOUND_CONTACTS, key=result.item_id, payload=contact.model_dump_json()
    )

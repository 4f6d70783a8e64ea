"""Sends the queued holding mails, each once, across instances and crashes (4.12).

The protocol, per batch of mails (rows of ``sla_actions``):

1. **Claim** (one committed transaction): up to ``batch_size`` queued rows
   whose ``available_at`` has come are selected ``FOR UPDATE SKIP LOCKED``
   (SQLite: under its single write lock), their dossiers loaded in one query
   and checked again (``mail_decision``: a reply, closure or pause folded in
   meanwhile cancels the mail), then set to ``sending`` in one statement,
   under one random claim token and a real-time lease in ``available_at``.
2. **Send** concurrently, at most ``concurrency`` at a time (one per SMTP
   connection of the mailer's pool), each with the Message-ID derived from
   its action id, and each only started while the lease left covers the whole
   SMTP dialogue (two SMTP timeouts and a margin).
3. **Record** the batch in one transaction once its sends are done — or
   what has finished so far, as soon as a finished send has waited
   ``record_within`` (100 ms by default), so a slow server does not keep sent
   mails unrecorded for a whole batch: the mails sent (or refused, 5xx: an
   outbound call instead) go to ``sent`` — only those the claim token still
   holds — with ``HoldingMailSent`` and ``OutboundContact`` through the
   outbox; the mails certainly not handed over (4xx, no connection) go back
   to the queue with a backoff, and those not started (stopping, lease too
   short) at once. A mail whose outcome is unknown (the connection broke
   during DATA) stays ``sending``.
4. **Publish** the outbox rows the claim and the records wrote, by their ids,
   once the batch is done (what a failure leaves is the periodic sweep's).

Several loops ("lanes") may call ``run_once`` side by side, so one claims or
records while another sends: each batch is claimed as another instance's
would be, and the lanes share the ``concurrency`` send slots.

Recovery rule: a ``sending`` row whose lease has lapsed was claimed by an
instance that died or lost its connection mid-send; it is claimed again and
sent again with the same Message-ID, its ``uncertain`` count raised. Past
``max_uncertain`` such sends, an outbound call replaces the mail, so a mail
that crashes its sender never loops.

Residual risk: a crash after the server accepted a message (its reply to
DATA) and before step 3 committed sends the same message (same Message-ID) a
second time after the lease. Per mail, that window is at most
``record_within`` (or the rest of its batch's sends, when shorter) plus one
commit: SMTP offers no way to make a hand-over and our record atomic, so it
can be narrowed, not closed. Under a steady flow some mails are always inside
it (throughput × window), so a crash mid-flow resends a few, identically.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Sequence, Set
from dataclasses import dataclass
from typing import Literal

from services.common.logging import get_logger
from services.common.metrics import metrics
from services.common.retry import retry_store
from services.common.store.engine import Store
from services.sla_watch.adapters.composer import MailComposer
from services.sla_watch.adapters.repository import QueuedMail, SlaRepository
from services.sla_watch.domain import (
    CancelMail,
    DeadlineState,
    DeferMail,
    SendMail,
    fold,
    mail_decision,
)
from services.sla_watch.errors import UNFOLDABLE, MailDeferred, MailRejected, MailUncertain
from services.sla_watch.ports import Mailer
from services.sla_watch.service import HoldingOutcome, SlaWatchService

__all__ = ["Claim", "HoldingMailSender", "SendResult", "SenderOptions"]

log = get_logger(__name__)

SENT_REASON = "courrier d'attente envoyé (4.12)"


@dataclass(frozen=True, slots=True)
class SenderOptions:
    """How the sender claims, sends and retries (validated by the settings)."""

    envelope_sender: str
    apology_types: Set[str]
    batch_size: int = 50
    concurrency: int = 4
    lease: dt.timedelta = dt.timedelta(minutes=3)
    smtp_timeout: dt.timedelta = dt.timedelta(seconds=30)
    max_uncertain: int = 2
    backoff_max: dt.timedelta = dt.timedelta(minutes=5)
    record_within: dt.timedelta = dt.timedelta(milliseconds=100)


@dataclass(frozen=True, slots=True)
class Claim:
    """A mail this instance holds the lease of, with what to send."""

    mail: QueuedMail
    decision: SendMail


@dataclass(frozen=True, slots=True)
class SendResult:
    """What became of one claimed mail's send."""

    claim: Claim
    outcome: Literal["sent", "rejected", "deferred", "uncertain", "not_started"]
    code: str | None = None


@dataclass(frozen=True, slots=True)
class _Batch:
    taken: int  # queued rows examined (claimed, cancelled, deferred or replaced by a call)
    token: str
    lease_until: dt.datetime
    claims: list[Claim]
    folds: dict[str, tuple[str, DeadlineState | None]]  # dossier id → (raw events, fold)
    written: list[int]  # outbox rows of the claim's transaction (outbound calls instead)


class HoldingMailSender:
    """Claims queued holding mails by batches, sends them concurrently, records each batch."""

    def __init__(
        self,
        store: Store,
        service: SlaWatchService,
        mailer: Mailer,
        composer: MailComposer,
        options: SenderOptions,
        *,
        wake: asyncio.Event | None = None,
    ) -> None:
        self._store = store
        self._service = service
        self._mailer = mailer
        self._composer = composer
        self._options = options
        self._guard = 2 * options.smtp_timeout + options.smtp_timeout / 2
        self._slots = asyncio.Semaphore(max(1, options.concurrency))
        self._stopping = False
        self.wake = wake or asyncio.Event()

    def stop(self) -> None:
        """Finish the sends in flight, record them, then stop claiming (graceful shutdown)."""
        self._stopping = True

    async def run_once(self) -> int:
        """Claim a batch of due mails, send them and record the outcome (4.12); return how
        many queued mails were taken (0: the queue is idle, or the sender is stopping)."""
        if self._stopping:
            return 0
        batch = await retry_store(self._claim, max_seconds=self._service.retry_max_s)
        sends = {asyncio.create_task(self._send(c, batch.lease_until)) for c in batch.claims}
        failures: list[BaseException] = []
        try:
            written = batch.written + await self._send_and_record(batch, sends, failures)
        finally:
            for send in sends:  # cancelled (shutdown timeout): outcome unknown, lease recovers
                send.cancel()
        await self._service.flush(written)
        if failures:  # a bug: its mail stays 'sending', the lease recovers it
            raise failures[0]
        return batch.taken

    async def _send_and_record(
        self, batch: _Batch, sends: set[asyncio.Task[SendResult]], failures: list[BaseException]
    ) -> list[int]:
        """Wait for the sends; record what finished in one transaction once every send is
        done, or sooner when a finished one has waited ``record_within`` (a slow server
        does not hold sent mails unrecorded for the whole batch). Return the outbox rows
        the records wrote."""
        loop = asyncio.get_running_loop()
        within = self._options.record_within.total_seconds()
        waiting: list[SendResult] = []
        written: list[int] = []
        since = 0.0
        while sends:
            timeout = max(0.0, since + within - loop.time()) if waiting else None
            finished, pending = await asyncio.wait(
                sends, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            sends.difference_update(finished)
            if finished and not waiting:
                since = loop.time()
            failures += [e for t in finished if (e := t.exception()) is not None]
            waiting += [t.result() for t in finished if t.exception() is None]
            if waiting and (not pending or loop.time() - since >= within):
                written += await self._record(batch, waiting)
                waiting = []
        return written

    async def _claim(self) -> _Batch:
        async with self._store.transaction() as connection:
            repo = self._service.repository(connection)
            now, wall = self._service.clock.now(), self._service.wall.now()
            mails = await repo.queued_mails(wall, self._options.batch_size)
            stored = await repo.load_many((m.dossier_id for m in mails), lock=False)
            folds: dict[str, tuple[str, DeadlineState | None]] = {}
            unreadable: set[str] = set()
            for dossier_id, found in stored.items():
                try:
                    folds[dossier_id] = (
                        found.raw_events,
                        fold(found.events(), self._service.policy),
                    )
                except UNFOLDABLE as error:  # events that no longer validate, or will not fold
                    unreadable.add(dossier_id)
                    await repo.park(dossier_id, type(error).__name__, now)
                    log.error("dossier.parked", dossier_id=dossier_id, error=type(error).__name__)
            token, lease_until = uuid.uuid4().hex, wall + self._options.lease
            claims: list[Claim] = []
            calls: list[HoldingOutcome] = []
            for mail in mails:
                if mail.dossier_id in unreadable:  # parked with its dossier, out of the queue
                    parked = {"status": "parked", "last_error": "unreadable_dossier"}
                    await repo.update_action(mail.action_id, parked)
                    continue
                state = folds[mail.dossier_id][1] if mail.dossier_id in folds else None
                decision = await self._decide(repo, mail, state, now, wall)
                if isinstance(decision, SendMail):
                    claims.append(Claim(mail, decision))
                elif decision is not None:
                    calls.append(decision)
            await repo.claim_mails([c.mail.action_id for c in claims], token, lease_until)
            written = await self._service.record_holdings(connection, calls, now, folded=folds)
        return _Batch(len(mails), token, lease_until, claims, folds, written)

    async def _decide(
        self,
        repo: SlaRepository,
        mail: QueuedMail,
        state: DeadlineState | None,
        now: dt.datetime,
        wall: dt.datetime,
    ) -> SendMail | HoldingOutcome | None:
        """Send, or settle the mail in the claim's transaction: cancelled (None), deferred
        (None), or past ``max_uncertain`` unknown outcomes replaced by a call (its outcome)."""
        decision = mail_decision(
            state, mail.deadline_id, now, self._service.policy, self._options.apology_types
        )
        deferred_only = mail.attempts > 0 and mail.uncertain == 0 and mail.status == "pending"
        if isinstance(decision, CancelMail) and decision.too_late and deferred_only:
            # (a mail whose send had an unknown outcome may have gone: no call on top of it)
            # The server kept deferring it (an outage, a refused login) until no mail can
            # reach the customer in time: 4.12 asks for a holding contact, so a call instead.
            done = {"status": "sent", "medium": "outbound_call", "done_at": now}
            await repo.update_action(mail.action_id, done | {"last_error": "deferred_too_late"})
            log.warning("holding_mail.replaced_by_call", action_id=mail.action_id, why="late")
            reason = f"courriel différé par le serveur {mail.attempts} fois, {decision.reason}"
            return HoldingOutcome(mail, "outbound_call", f"{reason} : appel sortant")
        if isinstance(decision, CancelMail):
            await repo.delete_action(mail.action_id)
            log.info("holding_mail.cancelled", action_id=mail.action_id, reason=decision.reason)
            return None
        if isinstance(decision, DeferMail):
            later = {"status": "pending", "available_at": wall + (decision.until - now)}
            await repo.update_action(mail.action_id, later)
            log.info("holding_mail.deferred", action_id=mail.action_id, reason=decision.reason)
            return None
        uncertain = mail.uncertain + (1 if mail.status == "sending" else 0)
        if mail.status == "sending":
            log.warning("holding_mail.reclaimed", action_id=mail.action_id, uncertain=uncertain)
        if uncertain > self._options.max_uncertain:
            done = {"status": "sent", "medium": "outbound_call", "done_at": now}
            await repo.update_action(mail.action_id, done | {"last_error": "uncertain_send"})
            log.warning("holding_mail.replaced_by_call", action_id=mail.action_id)
            reason = f"issue d'envoi inconnue {uncertain} fois : appel sortant"
            return HoldingOutcome(mail, "outbound_call", reason)
        return decision

    async def _send(self, claim: Claim, lease_until: dt.datetime) -> SendResult:
        async with self._slots:  # shared by the lanes: never more sends than connections
            if self._stopping or lease_until - self._service.wall.now() < self._guard:
                return SendResult(claim, "not_started")
            # From here on, a crash leaves the mail 'sending' (outcome unknown).
            mail, decision = claim.mail, claim.decision
            try:
                message = self._composer.encode(
                    decision.facts,
                    recipient=decision.recipient,
                    message_id=mail.message_id,
                    now=self._service.clock.now(),
                )
            except ValueError as error:  # an address no mail can carry (a line break in it)
                log.warning(
                    "holding_mail.unsendable", action_id=mail.action_id, error=type(error).__name__
                )
                return SendResult(claim, "rejected", "unsendable")
            try:
                await self._mailer.send(
                    message, sender=self._options.envelope_sender, recipient=decision.recipient
                )
            except MailRejected as error:
                return SendResult(claim, "rejected", error.code)
            except MailDeferred as error:
                return SendResult(claim, "deferred", error.code)
            except MailUncertain as error:
                log.warning(
                    "holding_mail.outcome_unknown", action_id=mail.action_id, code=error.code
                )
                return SendResult(claim, "uncertain", error.code)
            return SendResult(claim, "sent")

    async def _record(self, batch: _Batch, results: Sequence[SendResult]) -> list[int]:
        """Record a batch's outcomes in one transaction, while the claim token holds them;
        return the outbox rows written (published by id once the batch is done)."""
        finished = [r for r in results if r.outcome in ("sent", "rejected")]
        deferred = [r for r in results if r.outcome == "deferred"]
        unstarted = [r for r in results if r.outcome == "not_started"]
        if not (finished or deferred or unstarted):
            return []  # every outcome unknown: the rows stay 'sending', left to the lease

        async def attempt() -> tuple[set[str], list[int]]:
            async with self._store.transaction() as connection:
                repo = self._service.repository(connection)
                now, wall = self._service.clock.now(), self._service.wall.now()
                recorded: set[str] = set()
                for medium, code in {_medium(r) for r in finished}:
                    ids = [r.claim.mail.action_id for r in finished if _medium(r) == (medium, code)]
                    values = {"status": "sent", "medium": medium, "done_at": now}
                    recorded |= await repo.finish_mails(
                        ids, batch.token, values | {"last_error": code}
                    )
                outcomes = [
                    HoldingOutcome(r.claim.mail, *_trace(r))
                    for r in finished
                    if r.claim.mail.action_id in recorded
                ]
                written = await self._service.record_holdings(
                    connection, outcomes, now, folded=batch.folds
                )
                later = [
                    {
                        "action_id": r.claim.mail.action_id,
                        "available_at": wall + self._backoff(r),
                        "last_error": r.code,
                    }
                    for r in deferred
                ]
                await repo.release_mails(batch.token, later, with_error=True)
                again = [
                    {"action_id": r.claim.mail.action_id, "available_at": wall} for r in unstarted
                ]
                await repo.release_mails(batch.token, again, with_error=False)
                return recorded, written

        # Retry through a store outage for as long as the lease keeps the mails ours: past
        # it, another instance may send them again (the claim token then refuses this commit).
        left = (batch.lease_until - self._service.wall.now()).total_seconds()
        recorded, written = await retry_store(
            attempt, max_seconds=max(self._service.retry_max_s, left)
        )
        for result in finished:
            action_id, (medium, _code) = result.claim.mail.action_id, _medium(result)
            if action_id in recorded:
                metrics.holding_mails_sent.labels(medium=medium).inc()
                log.info("holding_mail.sent", action_id=action_id, medium=medium)
            else:
                log.error("holding_mail.claim_lost", action_id=action_id)
        for result in deferred:
            log.warning(
                "holding_mail.deferred_by_server",
                action_id=result.claim.mail.action_id,
                code=result.code,
            )
        return written

    def _backoff(self, result: SendResult) -> dt.timedelta:
        attempts = result.claim.mail.attempts + 1
        delay = dt.timedelta(seconds=5 * 2 ** min(attempts, 16))
        return min(self._options.backoff_max, delay)


def _medium(result: SendResult) -> tuple[str, str | None]:
    """(medium, last error) a finished send is recorded with."""
    if result.outcome == "rejected":
        return "outbound_call", result.code
    return "email", None


def _trace(result: SendResult) -> tuple[str, str]:
    """(medium, reason) of the traced outbound contact."""
    if result.outcome == "rejected":
        return "outbound_call", f"courriel refusé par le serveur ({result.code}) : appel sortant"
    return "email", SENT_REASON

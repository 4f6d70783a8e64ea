"""Sends the queued holding mails, each once, across instances and crashes (4.12).

The protocol, per mail (rows of ``sla_actions``):

1. **Claim** (one committed transaction): queued rows whose ``available_at``
   has come are selected ``FOR UPDATE SKIP LOCKED`` (SQLite: under its single
   write lock), checked again against the dossier (``mail_decision``: a reply,
   closure or pause folded in meanwhile cancels it), then set to ``sending``
   with a random claim token and a real-time lease in ``available_at``.
2. **Send** over SMTP with the Message-ID derived from the action id, only
   while the lease left covers the whole SMTP dialogue.
3. **Complete** (one transaction): the row goes to ``sent`` only if the claim
   token still holds it, with ``HoldingMailSent`` and ``OutboundContact``
   through the outbox. A refusal (5xx) orders an outbound call instead; a
   mail certainly not handed over (4xx, no connection) goes back to the queue
   with a backoff.

Recovery rule: a ``sending`` row whose lease has lapsed was claimed by an
instance that died or lost its connection mid-send; it is claimed again and
sent again with the same Message-ID, its ``uncertain`` count raised. Past
``max_uncertain`` such sends, an outbound call replaces the mail, so a mail
that crashes its sender never loops. Residual risk: a crash after the server
accepted the message (its reply to DATA) and before step 3 committed sends
the same message (same Message-ID) a second time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Mapping, Set
from dataclasses import dataclass

from services.common.logging import get_logger
from services.common.metrics import metrics
from services.common.retry import retry_store
from services.common.store.engine import Store
from services.sla_watch.adapters.composer import MailComposer
from services.sla_watch.adapters.repository import QueuedMail, SlaRepository
from services.sla_watch.domain import CancelMail, DeferMail, SendMail, fold, mail_decision
from services.sla_watch.errors import MailDeferred, MailRejected, MailUncertain
from services.sla_watch.ports import Mailer
from services.sla_watch.service import SlaWatchService

__all__ = ["Claim", "HoldingMailSender", "SenderOptions"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SenderOptions:
    """How the sender claims and retries (validated by the settings)."""

    envelope_sender: str
    apology_types: Set[str]
    batch_size: int = 10
    lease: dt.timedelta = dt.timedelta(minutes=3)
    smtp_timeout: dt.timedelta = dt.timedelta(seconds=30)
    max_uncertain: int = 2
    backoff_max: dt.timedelta = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Claim:
    """A mail this instance holds the lease of, with what to send."""

    mail: QueuedMail
    token: str
    lease_until: dt.datetime
    decision: SendMail


class HoldingMailSender:
    """Claims queued holding mails, sends them and records the outcome."""

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
        self._stopping = False
        self.wake = wake or asyncio.Event()

    def stop(self) -> None:
        """Finish the mail in flight, then stop claiming (graceful shutdown)."""
        self._stopping = True

    async def run_once(self) -> int:
        """Claim a batch of due mails and send them; return how many were claimed (4.12)."""
        claims = await retry_store(self._claim, max_seconds=self._service.retry_max_s)
        started = 0
        try:
            for claim in claims:
                guard = 2 * self._options.smtp_timeout + self._options.smtp_timeout / 2
                if self._stopping or claim.lease_until - self._wall() < guard:
                    break
                started += 1  # from here on, a crash leaves it 'sending' (outcome unknown)
                await self._deliver(claim)
        finally:
            if claims[started:]:
                await self._release(claims[started:])
        if claims:
            await self._service.flush()
        return len(claims)

    async def _claim(self) -> list[Claim]:
        claims: list[Claim] = []
        async with self._store.transaction() as connection:
            repo = self._service.repository(connection)
            now, wall = self._service.clock.now(), self._service.wall.now()
            for mail in await repo.queued_mails(wall, self._options.batch_size):
                claim = await self._claim_one(repo, mail, now, wall)
                if isinstance(claim, Claim):
                    claims.append(claim)
                elif claim == "fallback":
                    reason = f"issue d'envoi inconnue {mail.uncertain + 1} fois : appel sortant"
                    await self._service.record_holding(
                        connection, mail, medium="outbound_call", reason=reason, now=now
                    )
        return claims

    async def _claim_one(
        self, repo: SlaRepository, mail: QueuedMail, now: dt.datetime, wall: dt.datetime
    ) -> Claim | str:
        stored = await repo.load(mail.dossier_id, lock=False)
        state = fold(stored.events(), self._service.policy) if stored else None
        decision = mail_decision(
            state, mail.deadline_id, now, self._service.policy, self._options.apology_types
        )
        if isinstance(decision, CancelMail):
            await repo.delete_action(mail.action_id)
            log.info("holding_mail.cancelled", action_id=mail.action_id, reason=decision.reason)
            return "cancelled"
        if isinstance(decision, DeferMail):
            later = {"status": "pending", "available_at": wall + (decision.until - now)}
            await repo.update_action(mail.action_id, later)
            log.info("holding_mail.deferred", action_id=mail.action_id, reason=decision.reason)
            return "deferred"
        uncertain = mail.uncertain + (1 if mail.status == "sending" else 0)
        if mail.status == "sending":
            log.warning("holding_mail.reclaimed", action_id=mail.action_id, uncertain=uncertain)
        if uncertain > self._options.max_uncertain:
            done = {"status": "sent", "medium": "outbound_call", "done_at": now}
            await repo.update_action(mail.action_id, done | {"last_error": "uncertain_send"})
            log.warning("holding_mail.replaced_by_call", action_id=mail.action_id)
            return "fallback"
        token, lease_until = uuid.uuid4().hex, wall + self._options.lease
        claimed = {
            "status": "sending",
            "claim_token": token,
            "attempts": mail.attempts + 1,
            "uncertain": uncertain,
            "available_at": lease_until,
        }
        await repo.update_action(mail.action_id, claimed)
        return Claim(mail, token, lease_until, decision)

    async def _deliver(self, claim: Claim) -> None:
        mail, now = claim.mail, self._service.clock.now()
        message = self._composer.compose(
            claim.decision.facts,
            recipient=claim.decision.recipient,
            message_id=mail.message_id,
            now=now,
        )
        try:
            await self._mailer.send(
                message, sender=self._options.envelope_sender, recipient=claim.decision.recipient
            )
        except MailRejected as error:
            reason = f"courriel refusé par le serveur ({error.code}) : appel sortant"
            await self._complete(claim, "outbound_call", reason, error.code)
        except MailDeferred as error:
            await self._retry_later(claim, error.code)
        except MailUncertain as error:
            log.warning("holding_mail.outcome_unknown", action_id=mail.action_id, code=error.code)
        else:
            await self._complete(claim, "email", "courrier d'attente envoyé (4.12)", None)

    async def _complete(self, claim: Claim, medium: str, reason: str, error: str | None) -> None:
        async def attempt() -> bool:
            async with self._store.transaction() as connection:
                repo = self._service.repository(connection)
                now = self._service.clock.now()
                values = {"status": "sent", "medium": medium, "done_at": now, "last_error": error}
                if not await repo.update_action(claim.mail.action_id, values, token=claim.token):
                    return False
                await self._service.record_holding(
                    connection, claim.mail, medium=medium, reason=reason, now=now
                )
                return True

        # Retry through a store outage for as long as the lease keeps the mail ours: past it,
        # another instance may send it again (the claim token then refuses this commit).
        bound = max(self._service.retry_max_s, self._lease_left_s(claim))
        if await retry_store(attempt, max_seconds=bound):
            metrics.holding_mails_sent.labels(medium=medium).inc()
            log.info("holding_mail.sent", action_id=claim.mail.action_id, medium=medium)
        else:
            log.error("holding_mail.claim_lost", action_id=claim.mail.action_id)

    async def _retry_later(self, claim: Claim, code: str) -> None:
        attempts = claim.mail.attempts + 1
        delay = min(self._options.backoff_max, dt.timedelta(seconds=5 * 2 ** min(attempts, 16)))
        values = {
            "status": "pending",
            "claim_token": None,
            "available_at": self._wall() + delay,
            "last_error": code,
        }
        await self._update(claim, values)
        log.warning("holding_mail.deferred_by_server", action_id=claim.mail.action_id, code=code)

    async def _release(self, claims: list[Claim]) -> None:
        for claim in claims:
            values = {"status": "pending", "claim_token": None, "available_at": self._wall()}
            await self._update(claim, values)

    async def _update(self, claim: Claim, values: Mapping[str, object]) -> None:
        async def attempt() -> None:
            async with self._store.transaction() as connection:
                repo = self._service.repository(connection)
                await repo.update_action(claim.mail.action_id, values, token=claim.token)

        await retry_store(attempt, max_seconds=self._service.retry_max_s)

    def _wall(self) -> dt.datetime:
        return self._service.wall.now()

    def _lease_left_s(self, claim: Claim) -> float:
        return (claim.lease_until - self._wall()).total_seconds()

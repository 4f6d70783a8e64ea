"""sla_watch's application layer: load → fold (domain) → act → save + outbox, one transaction.

Two entry points share ``_settle``: ``record`` folds one consumed dossier
event (idempotent by event id through ``processed_messages``), and ``tick``
claims the dossiers whose ``next_check_at`` has come. Either way the actions
the domain lists at "now" are carried out in the same transaction as the new
state: events, tasks and account actions through the outbox, each action
recorded in the ``sla_actions`` ledger whose primary key makes it happen once.
A holding mail by e-mail is only queued here; ``sender.py`` sends it.
Once a transaction is committed, the outbox rows it wrote are published by
their ids (no scan of the queue); the app's periodic sweep publishes what a
crash or a failed publication left behind.
Each due action is carried out by :mod:`.actions`; :mod:`.writer` saves the
dossiers and fills the outbox.

The events sla_watch itself publishes are folded into the dossier's log at
once and recorded as processed, so their copy coming back from Kafka is a
no-op (skipped from memory when this instance emitted it, else through
``processed_messages``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.dossiers import DossierEvent
from services.common.logging import get_logger
from services.common.outbox import OutboxRelay
from services.common.retry import retry_store
from services.common.store.engine import Store
from services.sla_watch.actions import perform
from services.sla_watch.adapters.clock import SystemClock
from services.sla_watch.adapters.repository import QueuedMail, SlaRepository
from services.sla_watch.domain import (
    DeadlineState,
    Effects,
    PublishDeadline,
    SlaPolicy,
    due_actions,
    fold,
    holding_effects,
)
from services.sla_watch.errors import UNFOLDABLE, UnprocessableDossier
from services.sla_watch.ports import Clock
from services.sla_watch.writer import CONSUMER, DossierWrite, DossierWriter

__all__ = ["CONSUMER", "HoldingOutcome", "Outcome", "SlaWatchService"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What consuming one event did, for logs."""

    dossier_id: str
    outcome: str  # applied | duplicate | awaiting_opening
    actions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HoldingOutcome:
    """A holding mail that went out (``email``) or that a call replaces, with the reason."""

    mail: QueuedMail
    medium: str  # email | outbound_call
    reason: str


class SlaWatchService:
    """Folds dossier events into deadlines and carries out what is due, exactly once."""

    def __init__(
        self,
        store: Store,
        relay: OutboxRelay,
        *,
        policy: SlaPolicy,
        clock: Clock,
        mail_domain: str,
        wall: Clock | None = None,
        batch_size: int = 200,
        retry_max_s: float = 30.0,
        on_mail_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._relay = relay
        self.policy = policy
        self.clock = clock
        self.wall = wall or SystemClock()
        self._mail_domain = mail_domain
        self._batch_size = batch_size
        self.retry_max_s = retry_max_s
        self._on_mail_queued = on_mail_queued
        self._writer = DossierWriter(self.repository, policy)

    def repository(self, connection: AsyncConnection) -> SlaRepository:
        """The repository bound to a transaction of this service's store."""
        return SlaRepository(connection, postgres=self._store.is_postgres)

    async def record(self, event: DossierEvent) -> Outcome:
        """Fold one dossier event into its deadline and act on it, once per event id (4.12).

        Rule: an event that arrives before the dossier's opening is kept in the
        dossier's log (status ``awaiting_opening``, never scheduled) and folded,
        in the order things happened, once the opening arrives: a closure
        published before its opening still ends the deadline. An event the rules
        cannot fold is poison (``UnprocessableDossier``, DLQ).
        """

        if self._writer.emitted(event.event_id):  # our own event coming back: no store round trip
            return Outcome(event.dossier_id, "duplicate")

        async def attempt() -> tuple[Outcome, list[int]]:
            written: list[int] = []
            async with self._store.transaction() as connection:
                repo = self.repository(connection)
                if await repo.is_processed(CONSUMER, event.event_id):
                    return Outcome(event.dossier_id, "duplicate"), written
                now = self.clock.now()
                stored = await repo.load(event.dossier_id)
                try:
                    previous = stored.events() if stored is not None else ()
                    state = fold((*previous, event), self.policy)
                    if state is None:
                        await repo.save_awaiting_opening(
                            event.dossier_id, (*previous, event), now, new=stored is None
                        )
                        outcome = Outcome(event.dossier_id, "awaiting_opening")
                    else:
                        kinds, written = await self._settle(
                            connection, (*previous, event), state, now, new=stored is None
                        )
                        outcome = Outcome(event.dossier_id, "applied", kinds)
                except UNFOLDABLE as error:
                    raise UnprocessableDossier(event.dossier_id, error) from error
                await repo.mark_processed(
                    CONSUMER, [event.event_id], outcome.outcome, event.dossier_id, now
                )
                return outcome, written

        outcome, written = await retry_store(attempt, max_seconds=self.retry_max_s)
        await self._after_commit(outcome.actions, written)
        return outcome

    async def tick(self) -> int:
        """Claim the dossiers due now and carry out their actions; return how many were claimed.

        Rule (4.12, 4.13): the due-time index finds them; on PostgreSQL the rows
        are claimed ``FOR UPDATE SKIP LOCKED`` so instances share the work. A
        dossier the rules cannot handle is parked (``parked_reason``) without
        holding up the others.
        """

        async def attempt() -> tuple[int, tuple[str, ...], list[int]]:
            kinds: list[str] = []
            written: list[int] = []
            async with self._store.transaction() as connection:
                repo = self.repository(connection)
                now = self.clock.now()
                due = await repo.claim_due(now, self._batch_size)
                for stored in due:
                    try:
                        async with connection.begin_nested():
                            events = stored.events()
                            state = fold(events, self.policy)
                            if state is None:
                                raise ValueError("no DossierOpened among the dossier's events")
                            settled, rows = await self._settle(connection, events, state, now)
                        kinds += settled  # the savepoint held: its rows are the transaction's
                        written += rows
                    except UNFOLDABLE as error:
                        await repo.park(stored.dossier_id, type(error).__name__, now)
                        log.error(
                            "dossier.parked",
                            dossier_id=stored.dossier_id,
                            error=type(error).__name__,
                        )
            return len(due), tuple(kinds), written

        claimed, kinds, written = await retry_store(attempt, max_seconds=self.retry_max_s)
        await self._after_commit(kinds, written)
        return claimed

    async def flush(self, ids: Collection[int]) -> None:
        """Publish the outbox rows a transaction of this instance has just committed.

        By id: a primary-key lookup, where claiming every pending row would read
        each dead row of the queue table. What is left (failed publication,
        crash) is the periodic sweep's: a broker or store error here is logged,
        not raised (the transaction is committed; raising would redeliver a
        handled event, or hide the error a batch of sends really ended with).
        """
        await self._relay.publish_committed(ids)

    async def _after_commit(self, kinds: Sequence[str], written: Collection[int]) -> None:
        if "holding_mail_queued" in kinds:
            self._on_mail_queued()
        await self.flush(written)

    async def _settle(
        self,
        connection: AsyncConnection,
        events: Sequence[DossierEvent],
        state: DeadlineState,
        now: dt.datetime,
        *,
        new: bool = False,
    ) -> tuple[tuple[str, ...], list[int]]:
        """Carry out what is due on a dossier at ``now`` and save it (same transaction);
        return the kinds of actions and the outbox rows written, to publish after the commit.
        """
        repo = self.repository(connection)
        done = set() if new else set(await repo.action_ids(state.dossier_id))
        effects: list[Effects] = []
        kinds: list[str] = []
        for action in due_actions(state, now, self.policy, done=done):
            kind, action_effects = await perform(
                repo, action, state, now, mail_domain=self._mail_domain, wall=self.wall
            )
            log.info(
                "sla.action",
                dossier_id=state.dossier_id,
                action=kind,
                action_id=action.action_id,
                reason=action.reason,
            )
            kinds.append(kind)
            if not isinstance(action, PublishDeadline):
                done.add(action.action_id)
            if action_effects is not None:
                effects.append(action_effects)
        write = DossierWrite(events, state, effects, done, new)
        return tuple(kinds), await self._writer.save(connection, [write], now)

    async def record_holdings(
        self,
        connection: AsyncConnection,
        outcomes: Sequence[HoldingOutcome],
        now: dt.datetime,
        *,
        folded: Mapping[str, tuple[str, DeadlineState | None]] | None = None,
    ) -> list[int]:
        """Trace holding mails that went out (or the calls ordered instead), in the caller's
        transaction: ``HoldingMailSent``, ``OutboundContact`` and, for a call, its task (4.12).

        The dossiers are loaded (locked, in id order) and saved with one statement per
        kind for the whole batch. Mails of one dossier are traced from the same fold.
        ``folded`` maps a dossier id to its stored events (raw) and their fold, as the
        caller saw them earlier: when the row still holds exactly those events, the fold
        is reused instead of computed again (a fold is a function of the events).
        Return the outbox row ids written, for the caller to publish once committed.
        """
        if not outcomes:
            return []
        repo = self.repository(connection)
        by_dossier: dict[str, list[HoldingOutcome]] = {}
        for outcome in outcomes:
            by_dossier.setdefault(outcome.mail.dossier_id, []).append(outcome)
        stored = await repo.load_many(by_dossier)
        done = await repo.action_ids_many(by_dossier)
        writes: list[DossierWrite] = []
        for dossier_id, mails in by_dossier.items():
            found = stored.get(dossier_id)
            events = found.events() if found is not None else ()
            seen = (folded or {}).get(dossier_id)
            if seen is not None and found is not None and seen[0] == found.raw_events:
                state = seen[1]
            else:
                state = fold(events, self.policy)
            if state is None:  # pragma: no cover - a queued mail always has its dossier
                raise ValueError(f"no dossier {dossier_id} for a queued holding mail")
            effects = [
                holding_effects(
                    action_id=o.mail.action_id,
                    state=state,
                    deadline_id=o.mail.deadline_id,
                    due_at=state.due_at,
                    medium="email" if o.medium == "email" else "outbound_call",
                    reason=o.reason,
                    now=now,
                )
                for o in mails
            ]
            writes.append(DossierWrite(events, state, effects, done[dossier_id]))
        return await self._writer.save(connection, writes, now)

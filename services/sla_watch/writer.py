"""Saving folded dossiers: our own events folded in, the next check, the outbox rows.

One :class:`DossierWrite` per dossier of a transaction; :meth:`DossierWriter.save`
writes them all with one statement per kind of row. The events sla_watch
publishes are folded in at once and recorded as processed under ``CONSUMER``,
and the writer remembers their ids so their copy coming back from Kafka is
skipped without a store round trip.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.dossiers import DossierEvent
from schemas.topics import ACCOUNT_ACTIONS, DOSSIER_EVENTS, OUTBOUND_CONTACTS, task_topic
from services.common.outbox import OutboxMessage, add_to_outbox
from services.sla_watch.adapters.repository import DossierRow, SlaRepository, Summary
from services.sla_watch.domain import (
    DeadlineState,
    Effects,
    HoldingMailPlan,
    SlaPolicy,
    apply,
    next_check_at,
    plan_holding_mail,
)

__all__ = ["CONSUMER", "DossierWrite", "DossierWriter"]

CONSUMER = "sla_watch.events"
_OWN_EVENTS_KEPT = 50_000


@dataclass(frozen=True, slots=True)
class DossierWrite:
    """One dossier's part of a transaction: its log, fold, new effects and ledger ids."""

    events: Sequence[DossierEvent]
    state: DeadlineState
    effects: Sequence[Effects]
    done: Set[str]
    new: bool = False


class DossierWriter:
    """Saves dossiers with their next check and fills the outbox, in the caller's transaction."""

    def __init__(
        self, repository: Callable[[AsyncConnection], SlaRepository], policy: SlaPolicy
    ) -> None:
        self._repository = repository
        self._policy = policy
        self._own: OrderedDict[str, None] = OrderedDict()

    def emitted(self, event_id: str) -> bool:
        """Whether this instance emitted the event (and still remembers it)."""
        return event_id in self._own

    async def save(
        self, connection: AsyncConnection, writes: Sequence[DossierWrite], now: dt.datetime
    ) -> list[int]:
        """Fold our own events in, save the dossiers with their next check, fill the outbox:
        one statement per kind of row, whatever the number of dossiers. Return the outbox
        row ids, for the caller to publish them by id once committed."""
        repo = self._repository(connection)
        processed: list[tuple[str, str | None]] = []
        rows: list[DossierRow] = []
        for write in writes:
            state = write.state
            own = [event for effect in write.effects for event in effect.events]
            for event in own:
                state = apply(state, event, self._policy) or state
                self._remember(event.event_id)
            processed += [(event.event_id, state.dossier_id) for event in own]
            summary = self._summary(state, now, write.done)
            rows.append(DossierRow(state.dossier_id, [*write.events, *own], summary, write.new))
        await repo.mark_processed_many(CONSUMER, processed, "own_event", now)
        await repo.save_many(rows, now)
        return await add_to_outbox(
            connection, _messages([e for w in writes for e in w.effects]), now
        )

    def _remember(self, event_id: str) -> None:
        # Ids are deterministic: one remembered from a rolled-back attempt is re-emitted by
        # the retry, so skipping it on the way back is still right.
        self._own[event_id] = None
        if len(self._own) > _OWN_EVENTS_KEPT:
            self._own.popitem(last=False)

    def _summary(self, state: DeadlineState, now: dt.datetime, done: Set[str]) -> Summary:
        deadline = state.deadline
        mail_at = None
        if deadline is not None and deadline.deadline_id not in state.holding_mail_sent:
            plan = plan_holding_mail(deadline, self._policy, state.calendar)
            mail_at = plan.send_at if isinstance(plan, HoldingMailPlan) else None
        return Summary(
            status=state.status,
            deadline_id=deadline.deadline_id if deadline is not None else None,
            due_at=state.due_at,
            holding_mail_at=mail_at,
            next_check_at=next_check_at(state, now, self._policy, done=done),
        )


def _message(topic: str, key: str | None, contract: BaseModel) -> OutboxMessage:
    return OutboxMessage(topic=topic, key=key, payload=contract.model_dump_json())


def _messages(effects: Sequence[Effects]) -> list[OutboxMessage]:
    messages: list[OutboxMessage] = []
    for effect in effects:
        messages += [_message(DOSSIER_EVENTS, e.dossier_id, e) for e in effect.events]
        messages += [_message(task_topic(t.service), t.dossier_id, t) for t in effect.tasks]
        messages += [_message(ACCOUNT_ACTIONS, a.customer_ref, a) for a in effect.account_actions]
        messages += [_message(OUTBOUND_CONTACTS, c.dossier_id, c) for c in effect.contacts]
    return messages

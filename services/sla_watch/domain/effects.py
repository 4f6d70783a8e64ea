"""The contracts each SLA action produces: events, tasks, account actions, outbound contacts.

Every id is derived from the action id, so a republished outbox row is a
duplicate consumers drop (4.12, 4.13, 5.1.4). Reasons never copy free text
from the dossier (5.1.7.5).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from schemas import AccountAction, OutboundContact, Task
from schemas.dossiers import (
    DeadlineSet,
    DirectDebitSuspended,
    DossierEvent,
    HoldingMailSent,
    SlaBreached,
)
from services.sla_watch.domain.deadlines import DeadlineState
from services.sla_watch.domain.holding import DeclareBreach, PublishDeadline, SuspendDirectDebit

__all__ = [
    "Effects",
    "breach_effects",
    "deadline_set",
    "holding_effects",
    "suspension_effects",
]

HoldingMedium = Literal["email", "outbound_call"]


@dataclass(frozen=True, slots=True)
class Effects:
    """What one action publishes; ``events`` are also folded into the dossier's own log."""

    events: tuple[DossierEvent, ...] = ()
    tasks: tuple[Task, ...] = ()
    account_actions: tuple[AccountAction, ...] = ()
    contacts: tuple[OutboundContact, ...] = ()


def deadline_set(action: PublishDeadline, now: dt.datetime) -> Effects:
    """Announce a new or moved deadline as ``DeadlineSet`` (4.12)."""
    event = DeadlineSet(
        event_id=action.action_id,
        dossier_id=action.dossier_id,
        occurred_at=now,
        deadline_id=action.deadline_id,
        basis=action.basis,
        due_at=action.due_at,
        holding_mail_at=action.holding_mail_at,
    )
    return Effects(events=(event,))


def breach_effects(action: DeclareBreach, state: DeadlineState, now: dt.datetime) -> Effects:
    """A deadline passed unanswered: ``SlaBreached`` and a supervisor task (4.12)."""
    event = SlaBreached(
        event_id=action.action_id,
        dossier_id=action.dossier_id,
        occurred_at=now,
        deadline_id=action.deadline_id,
        due_at=action.due_at,
    )
    task = Task(
        task_id=action.action_id,
        dossier_id=action.dossier_id,
        service="supervisor",
        action="sla_breached",
        created_at=now,
        dossier_type=state.dossier_type,
        kind=state.kind,
        urgency="prioritaire",
        customer_ref=state.customer_ref,
        due_at=action.due_at,
        reasons=(action.reason,),
    )
    return Effects(events=(event,), tasks=(task,))


def suspension_effects(action: SuspendDirectDebit, now: dt.datetime) -> Effects:
    """A complaint still open at the end of its day: suspend the direct debit, once (4.13)."""
    account_action = AccountAction(
        action_id=action.action_id,
        action="suspend_direct_debit",
        customer_ref=action.customer_ref,
        dossier_id=action.dossier_id,
        occurred_at=now,
        reason=action.reason,
    )
    event = DirectDebitSuspended(
        event_id=action.action_id,
        dossier_id=action.dossier_id,
        occurred_at=now,
        action_id=action.action_id,
    )
    return Effects(events=(event,), account_actions=(account_action,))


def holding_effects(
    *,
    action_id: str,
    state: DeadlineState,
    deadline_id: str,
    due_at: dt.datetime | None,
    medium: HoldingMedium,
    reason: str,
    now: dt.datetime,
) -> Effects:
    """A holding mail went out, or an outbound call was ordered instead (4.12, 5.1.4).

    Rule: either way a ``HoldingMailSent`` event and an ``OutboundContact``
    trace it; without an e-mail address (or when the mail server refused it)
    the customer-service queue gets an ``outbound_call`` task due before the
    deadline.
    """
    event = HoldingMailSent(
        event_id=action_id,
        dossier_id=state.dossier_id,
        occurred_at=now,
        deadline_id=deadline_id,
        medium=medium,
    )
    by_mail = medium == "email"
    contact = OutboundContact(
        contact_id=action_id,
        purpose="holding_mail" if by_mail else "holding_call",
        medium="email" if by_mail else "phone",
        sent_at=now,
        dossier_id=state.dossier_id,
    )
    tasks: tuple[Task, ...] = ()
    if not by_mail:
        tasks = (
            Task(
                task_id=action_id,
                dossier_id=state.dossier_id,
                service="customer_service",
                action="outbound_call",
                created_at=now,
                dossier_type=state.dossier_type,
                kind=state.kind,
                customer_ref=state.customer_ref,
                due_at=due_at,
                reasons=(reason,),
            ),
        )
    return Effects(events=(event,), tasks=tasks, contacts=(contact,))

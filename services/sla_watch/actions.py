"""Carrying out one due action: its ledger row, its metric and the effects it publishes.

``SlaWatchService`` calls :func:`perform` for each action the domain lists as
due (4.12, 4.13). A holding mail by e-mail is only queued here (ledger row
``pending``); ``sender.py`` sends it.
"""

from __future__ import annotations

import datetime as dt

from services.common.metrics import metrics
from services.sla_watch.adapters.composer import message_id_for
from services.sla_watch.adapters.repository import SlaRepository
from services.sla_watch.domain import (
    Action,
    DeadlineState,
    DeclareBreach,
    Effects,
    PublishDeadline,
    SendHoldingMail,
    SuspendDirectDebit,
    breach_effects,
    deadline_set,
    holding_effects,
    suspension_effects,
)
from services.sla_watch.ports import Clock

__all__ = ["perform"]


async def perform(
    repo: SlaRepository,
    action: Action,
    state: DeadlineState,
    now: dt.datetime,
    *,
    mail_domain: str,
    wall: Clock,
) -> tuple[str, Effects | None]:
    """Record ``action`` in the ``sla_actions`` ledger and return its kind and effects (4.12).

    Rule: a deadline is published without a ledger row; a breach, a
    direct-debit suspension and a holding mail each get their ledger row,
    whose primary key makes them happen once.
    """
    ledger = {
        "action_id": action.action_id,
        "dossier_id": state.dossier_id,
        "created_at": now,
        "done_at": now,
        "status": "done",
    }
    if isinstance(action, PublishDeadline):
        return "deadline_set", deadline_set(action, now)
    if isinstance(action, DeclareBreach):
        await repo.record_action(**ledger, kind="breach", deadline_id=action.deadline_id)
        metrics.sla_breaches.labels(basis=action.deadline_id.rsplit(":", 1)[-1]).inc()
        return "sla_breached", breach_effects(action, state, now)
    if isinstance(action, SuspendDirectDebit):
        await repo.record_action(**ledger, kind="suspend_direct_debit")
        return "direct_debit_suspended", suspension_effects(action, now)
    return await _holding(repo, action, state, ledger, now, mail_domain=mail_domain, wall=wall)


async def _holding(
    repo: SlaRepository,
    action: SendHoldingMail,
    state: DeadlineState,
    ledger: dict[str, object],
    now: dt.datetime,
    *,
    mail_domain: str,
    wall: Clock,
) -> tuple[str, Effects | None]:
    values = {**ledger, "kind": "holding_mail", "deadline_id": action.deadline_id}
    if action.medium == "outbound_call":
        await repo.record_action(**{**values, "medium": "outbound_call", "status": "sent"})
        effects = holding_effects(
            action_id=action.action_id,
            state=state,
            deadline_id=action.deadline_id,
            due_at=action.due_at,
            medium="outbound_call",
            reason=action.reason,
            now=now,
        )
        return "holding_call_ordered", effects
    await repo.record_action(
        **values
        | {
            "status": "pending",
            "done_at": None,
            "medium": "email",
            "message_id": message_id_for(action.action_id, mail_domain),
            "available_at": wall.now(),
        }
    )
    return "holding_mail_queued", None

"""What a routing decision produces: dossier events, tasks and account actions.

Ids are deterministic (derived from the dossier and item ids) so that a
redelivered item or a republished outbox row is recognised downstream.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from schemas import AccountAction, IntakeItem, Task
from schemas.dossiers import ContactAttached, DossierCancelled, DossierOpened
from services.router.domain.classification import Classification
from services.router.domain.dossiers import (
    AttachToDossier,
    CancelRequest,
    Decision,
    OpenDossier,
    ReviewPerimeter,
    region_of,
)
from services.router.domain.identification import Identification

__all__ = ["Effects", "plan"]


@dataclass(frozen=True, slots=True)
class Effects:
    """Everything one routing decision produces."""

    decision: Decision
    opened: DossierOpened | None = None
    attached: ContactAttached | None = None
    cancelled: DossierCancelled | None = None
    tasks: tuple[Task, ...] = ()
    account_actions: tuple[AccountAction, ...] = ()
    reasons: tuple[str, ...] = ()


def plan(
    item: IntakeItem,
    classification: Classification,
    customer: Identification,
    decision: Decision,
    now: dt.datetime,
) -> Effects:
    """The events, tasks and account actions a decision produces (4.6, 4.8, 4.13, 5.1.7.2)."""
    if isinstance(decision, ReviewPerimeter):
        task = Task(
            task_id=f"perimeter:{item.item_id}",
            service="perimeter_review",
            action="review_perimeter",
            created_at=now,
            item_id=item.item_id,
            reasons=decision.reasons,
        )
        return Effects(decision=decision, tasks=(task,), reasons=decision.reasons)
    if isinstance(decision, AttachToDossier):
        return _attach(item, decision, customer, now)
    if isinstance(decision, CancelRequest):
        return _cancel(item, decision, customer, now)
    return _open(item, decision.requalified or classification, customer, decision, now)


def _contact(
    item: IntakeItem, dossier_id: str, customer: Identification, now: dt.datetime, *, flag: bool
) -> ContactAttached:
    return ContactAttached(
        event_id=f"{dossier_id}:contact:{item.item_id}",
        dossier_id=dossier_id,
        occurred_at=now,
        item_id=item.item_id,
        channel=item.channel,
        contact_date=item.received_at,
        supervisor_signalled=flag,
        sender_is_holder=customer.sender_is_holder,
    )


def _attach(
    item: IntakeItem, decision: AttachToDossier, customer: Identification, now: dt.datetime
) -> Effects:
    dossier_id = decision.dossier_id
    # 4.8 NB: a multi-contact is signalled to the supervisor so the dossier is prioritised.
    task = Task(
        task_id=f"{dossier_id}:prioritise_multicontact:{item.item_id}",
        dossier_id=dossier_id,
        service="supervisor",
        action="prioritise_multicontact",
        created_at=now,
        item_id=item.item_id,
        urgency="prioritaire",
        customer_ref=customer.customer_ref,
        reasons=decision.reasons,
    )
    attached = _contact(item, dossier_id, customer, now, flag=True)
    return Effects(decision=decision, attached=attached, tasks=(task,), reasons=decision.reasons)


def _cancel(
    item: IntakeItem, decision: CancelRequest, customer: Identification, now: dt.datetime
) -> Effects:
    dossier = decision.dossier
    cancelled = DossierCancelled(
        event_id=f"{dossier.dossier_id}:cancelled:{item.item_id}",
        dossier_id=dossier.dossier_id,
        occurred_at=now,
        reason="annulée par le client (5.1.7.2 a)",
    )
    # 5.1.7.2 a: the owning service finalises its open tasks and cancels field work.
    task = Task(
        task_id=f"{dossier.dossier_id}:request_cancelled:{item.item_id}",
        dossier_id=dossier.dossier_id,
        service=dossier.service,
        action="request_cancelled",
        created_at=now,
        item_id=item.item_id,
        dossier_type=dossier.dossier_type,
        customer_ref=customer.customer_ref,
        reasons=decision.reasons,
    )
    actions: tuple[AccountAction, ...] = ()
    if dossier.blocks_dunning and dossier.customer_ref:
        actions = (
            _dunning(
                dossier.dossier_id,
                dossier.customer_ref,
                "unblock_dunning",
                dossier.dossier_type,
                now,
            ),
        )
    return Effects(
        decision=decision,
        attached=_contact(item, dossier.dossier_id, customer, now, flag=False),
        cancelled=cancelled,
        tasks=(task,),
        account_actions=actions,
        reasons=decision.reasons,
    )


def _dunning(
    dossier_id: str, customer_ref: str, action: str, dossier_type: str, now: dt.datetime
) -> AccountAction:
    # 4.13 / 5.1.7.1: Facture, Règlement, Dégrèvement and RDR block dunning until closed.
    verb = "ouvert" if action == "block_dunning" else "annulé"
    return AccountAction(
        action_id=f"{dossier_id}:{action}",
        action=action,  # type: ignore[arg-type]
        customer_ref=customer_ref,
        dossier_id=dossier_id,
        occurred_at=now,
        reason=f"dossier {dossier_type} {verb} (4.13)",
    )


def _open(
    item: IntakeItem,
    classification: Classification,
    customer: Identification,
    decision: OpenDossier,
    now: dt.datetime,
) -> Effects:
    dossier_id = decision.dossier_id
    reasons = (*classification.reasons, *decision.reasons, customer.reason)
    # Sensitive mail and escalations go to their teams, who identify the sender
    # themselves; any other unidentified contact waits for manual identification.
    service = classification.service
    if not customer.identified and service not in ("sensitive_mail", "escalations"):
        service = "identification"
    opened = DossierOpened(
        event_id=f"{dossier_id}:opened",
        dossier_id=dossier_id,
        occurred_at=now,
        item_id=item.item_id,
        channel=item.channel,
        contact_date=item.received_at,
        dossier_type=classification.dossier_type,
        kind=classification.kind,
        urgency=classification.urgency,
        service=service,
        needs_field_work=classification.needs_field_work,
        sensitive=classification.sensitive,
        customer_ref=customer.customer_ref,
        identified=customer.identified,
        identification=customer.method,
        sender_is_holder=customer.sender_is_holder,
        reply_email=item.sender.email,
        region=region_of(item.sender),
        linked_dossier_id=decision.linked_dossier_id,
        reasons=reasons,
    )
    task = Task(
        task_id=f"{dossier_id}:handle_request",
        dossier_id=dossier_id,
        service=service,
        action="handle_request" if customer.identified else "identify_customer",
        created_at=now,
        item_id=item.item_id,
        dossier_type=classification.dossier_type,
        kind=classification.kind,
        urgency=classification.urgency,
        sensitive=classification.sensitive,
        customer_ref=customer.customer_ref,
        reasons=reasons,
    )
    # An urgent sensitive letter goes to field operations first (4.7) and to the
    # sensitive-mail team too (5.1.4): every queue the decision concerns gets a task.
    extra = tuple(
        task.model_copy(
            update={"task_id": f"{dossier_id}:take_part:{q}", "service": q, "action": "take_part"}
        )
        for q in classification.also_notify
        if q != service
    )
    actions: tuple[AccountAction, ...] = ()
    if classification.blocks_dunning and customer.customer_ref:
        block = _dunning(
            dossier_id, customer.customer_ref, "block_dunning", classification.dossier_type, now
        )
        actions = (block,)
    return Effects(
        decision=decision,
        opened=opened,
        tasks=(task, *extra),
        account_actions=actions,
        reasons=reasons,
    )

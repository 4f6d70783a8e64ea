"""Dossier decisions: open, attach (multi-contact) or send for perimeter review.

Pure rules over frozen values; the service loads the customer's dossiers,
calls ``decide`` and saves what ``plan`` returns, in one transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from schemas import AccountAction, IntakeItem, SenderHints, Task
from schemas.dossiers import ContactAttached, DossierOpened
from services.router.domain.identification import Identification

if TYPE_CHECKING:
    from services.router.domain.classification import Classification

__all__ = [
    "AttachToDossier",
    "Decision",
    "DossierView",
    "Effects",
    "OpenDossier",
    "ReviewPerimeter",
    "decide",
    "dossier_id_for",
    "plan",
    "region_of",
]


@dataclass(frozen=True, slots=True)
class DossierView:
    """What a decision needs to know of an existing dossier."""

    dossier_id: str
    dossier_type: str
    status: str
    customer_ref: str | None


@dataclass(frozen=True, slots=True)
class OpenDossier:
    """Open a new dossier for a new request (4.6)."""

    dossier_id: str
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AttachToDossier:
    """Attach the contact to the open dossier of the same request (4.8)."""

    dossier_id: str
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReviewPerimeter:
    """Not about the water service: not recorded as a dossier, sent for review (5.1.2)."""

    reasons: tuple[str, ...]


Decision = OpenDossier | AttachToDossier | ReviewPerimeter


@dataclass(frozen=True, slots=True)
class Effects:
    """Everything one routing decision produces."""

    decision: Decision
    opened: DossierOpened | None = None
    attached: ContactAttached | None = None
    tasks: tuple[Task, ...] = ()
    account_actions: tuple[AccountAction, ...] = ()
    reasons: tuple[str, ...] = field(default=())


def dossier_id_for(item_id: str) -> str:
    """Deterministic dossier id of the dossier an item opens: redelivery yields the same id."""
    return "DOS-" + hashlib.sha256(item_id.encode()).hexdigest()[:20].upper()


def region_of(sender: SenderHints) -> str | None:
    """French department code from the sender's postcode (for the working-day calendar)."""
    address = sender.postal_address
    if address is None or address.postcode is None:
        return None
    postcode = address.postcode
    return postcode[:3] if postcode.startswith("97") else postcode[:2]


def decide(
    item: IntakeItem,
    classification: Classification,
    customer: Identification,
    dossiers: Sequence[DossierView],
) -> Decision:
    """Choose what to do with a contact.

    Out-of-perimeter requests are not recorded (5.1.2). Internal requests are
    never attached to a customer contact (4.2). A contact about a request still
    open for the same customer is attached to it (multi-contact, 4.8). Anything
    else opens a new dossier (4.6).
    """
    if not classification.in_perimeter:
        return ReviewPerimeter(reasons=("hors périmètre (5.1.2)", *classification.reasons))
    new_id = dossier_id_for(item.item_id)
    if item.internal:
        return OpenDossier(new_id, ("demande interne: jamais rattachée à un contact (4.2)",))
    if customer.key is not None:
        for dossier in dossiers:
            if dossier.status == "open" and dossier.dossier_type == classification.dossier_type:
                return AttachToDossier(
                    dossier.dossier_id,
                    (f"multi-contact: dossier {classification.dossier_type} ouvert (4.8)",),
                )
    return OpenDossier(new_id, ("nouvelle demande (4.6)",))


def plan(
    item: IntakeItem,
    classification: Classification,
    customer: Identification,
    decision: Decision,
    now: dt.datetime,
) -> Effects:
    """The events, tasks and account actions a decision produces."""
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
    return _open(item, classification, customer, decision, now)


def _attach(
    item: IntakeItem, decision: AttachToDossier, customer: Identification, now: dt.datetime
) -> Effects:
    dossier_id = decision.dossier_id
    attached = ContactAttached(
        event_id=f"{dossier_id}:contact:{item.item_id}",
        dossier_id=dossier_id,
        occurred_at=now,
        item_id=item.item_id,
        channel=item.channel,
        contact_date=item.received_at,
        sender_is_holder=customer.sender_is_holder,
    )
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
    return Effects(decision=decision, attached=attached, tasks=(task,), reasons=decision.reasons)


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
            update={
                "task_id": f"{dossier_id}:take_part:{queue}",
                "service": queue,
                "action": "take_part",
            }
        )
        for queue in classification.also_notify
        if queue != service
    )
    actions: tuple[AccountAction, ...] = ()
    if classification.blocks_dunning and customer.customer_ref:
        # 4.13 / 5.1.7.1: Facture, Règlement, Dégrèvement and RDR block dunning until closed.
        actions = (
            AccountAction(
                action_id=f"{dossier_id}:block_dunning",
                action="block_dunning",
                customer_ref=customer.customer_ref,
                dossier_id=dossier_id,
                occurred_at=now,
                reason=f"dossier {classification.dossier_type} ouvert (4.13)",
            ),
        )
    return Effects(
        decision=decision,
        opened=opened,
        tasks=(task, *extra),
        account_actions=actions,
        reasons=reasons,
    )

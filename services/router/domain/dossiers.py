"""Dossier decisions: open, attach (multi-contact), cancel, or send for perimeter review.

Pure rules over frozen values; the service loads the customer's dossiers,
calls ``decide`` and saves what :func:`services.router.domain.effects.plan`
returns, in one transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from schemas import IntakeItem, SenderHints
from schemas.dossiers import Kind
from services.router.domain.classification import Classification
from services.router.domain.identification import Identification
from services.router.domain.rules import RuleSet

__all__ = [
    "AttachToDossier",
    "CancelRequest",
    "Decision",
    "DossierView",
    "FollowUpPolicy",
    "OpenDossier",
    "ReviewPerimeter",
    "decide",
    "dossier_id_for",
    "region_of",
]


@dataclass(frozen=True, slots=True)
class DossierView:
    """What a decision needs to know of one of the customer's dossiers."""

    dossier_id: str
    dossier_type: str
    status: str
    customer_ref: str | None
    service: str = "customer_service"
    closed_at: dt.datetime | None = None
    blocks_dunning: bool = False


@dataclass(frozen=True, slots=True)
class FollowUpPolicy:
    """How complaints after a closed dossier are recognised (4.9), from settings and rules."""

    fac_code: str = "FAC"
    fac_service: str = "customer_service"
    rdr_code: str = "RDR"
    window: dt.timedelta = dt.timedelta(days=60)
    fallback_code: str = "INFO"  # the type of a contact that names no request (4.6)
    fallback_service: str = "customer_service"

    @classmethod
    def of(cls, rules: RuleSet, window: dt.timedelta = dt.timedelta(days=60)) -> FollowUpPolicy:
        """The policy the rules imply: FAC's owner, the RDR code, the fallback type."""
        fallback = rules.dictionary.get(rules.dictionary.fallback)
        return cls(
            fac_service=rules.dictionary.get("FAC").service,
            rdr_code=rules.escalation.rdr_code,
            window=window,
            fallback_code=fallback.code,
            fallback_service=fallback.service,
        )


@dataclass(frozen=True, slots=True)
class OpenDossier:
    """Open a new dossier (4.6), possibly requalified and linked to a closed one (4.9)."""

    dossier_id: str
    reasons: tuple[str, ...]
    linked_dossier_id: str | None = None
    requalified: Classification | None = None


@dataclass(frozen=True, slots=True)
class AttachToDossier:
    """Attach the contact to the open dossier of the same request (4.8)."""

    dossier_id: str
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """The customer cancels an open request: cancel its dossier (5.1.7.2 a)."""

    dossier: DossierView
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReviewPerimeter:
    """Not about the water service: not recorded as a dossier, sent for review (5.1.2)."""

    reasons: tuple[str, ...]


Decision = OpenDossier | AttachToDossier | CancelRequest | ReviewPerimeter


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
    policy: FollowUpPolicy | None = None,
) -> Decision:
    """Choose what to do with a contact.

    Out-of-perimeter requests are not recorded (5.1.2). Internal requests are
    never attached to a customer contact (4.2). A cancellation cancels the
    customer's open request (5.1.7.2 a). A contact about a request still open
    for the same customer is attached to it (multi-contact, 4.8). A complaint
    after a closed dossier opens a FAC dossier linked to it (4.9); an
    escalation (RDR) is linked to the customer's latest dossier. Anything else
    opens a new dossier (4.6). Only the identified customer's own dossiers
    are considered: never a cross-customer attachment.
    """
    policy = policy or FollowUpPolicy()
    if not classification.in_perimeter:
        return ReviewPerimeter(reasons=("hors périmètre (5.1.2)", *classification.reasons))
    new_id = dossier_id_for(item.item_id)
    if item.internal:
        return OpenDossier(new_id, ("demande interne: jamais rattachée à un contact (4.2)",))
    if customer.key is None:
        return OpenDossier(new_id, ("nouvelle demande (4.6)",))
    open_ones = [d for d in dossiers if d.status == "open"]
    same = [d for d in open_ones if d.dossier_type == classification.dossier_type]
    if classification.cancellation:
        return _cancel(item, classification, dossiers, policy, new_id)
    if same:
        why = f"multi-contact: dossier {classification.dossier_type} ouvert (4.8)"
        return AttachToDossier(same[0].dossier_id, (why,))
    return _follow_up(item, classification, dossiers, policy, new_id)


def _cancel(
    item: IntakeItem,
    classification: Classification,
    dossiers: Sequence[DossierView],
    policy: FollowUpPolicy,
    new_id: str,
) -> CancelRequest | OpenDossier | AttachToDossier:
    """Cancel the open request the customer names (5.1.7.2 a); else leave it to a person.

    The request is the open dossier of the contact's type; a contact that names
    no type (the fallback) cancels the customer's only open dossier. A
    cancellation that names another request than the open ones, that could
    mean several, or that finds nothing open (already closed, or not routed
    yet) cancels nothing and opens no new request of that type (which would
    block dunning, 4.13): a dossier of the fallback type, for an adviser to
    check with the customer, linked to the latest closed dossier of that type.
    """
    open_ones = [d for d in dossiers if d.status == "open"]
    same = [d for d in open_ones if d.dossier_type == classification.dossier_type]
    unnamed = classification.dossier_type == policy.fallback_code
    if same or (unnamed and len(open_ones) == 1):
        target = (same or open_ones)[0]
        return CancelRequest(target, (f"annulation du dossier {target.dossier_type} (5.1.7.2 a)",))
    checking = [d for d in open_ones if d.dossier_type == policy.fallback_code]
    if checking:  # one dossier of the fallback type per customer: it gets this contact too
        why = "annulation à vérifier: jointe au dossier ouvert pour un conseiller (4.8, 5.1.7.2 a)"
        return AttachToDossier(checking[0].dossier_id, (why,))
    if unnamed and not open_ones:
        why = "annulation sans demande ouverte: à vérifier par un conseiller (5.1.7.2 a)"
    elif unnamed:
        why = "annulation ambiguë (plusieurs demandes ouvertes): à vérifier (5.1.7.2 a)"
    else:
        why = (
            f"annulation d'une demande {classification.dossier_type} sans dossier ouvert "
            "de ce type: à vérifier par un conseiller (5.1.7.2 a)"
        )
    closed = _recently_closed(item, dossiers, policy)
    link = next((d for d in closed if d.dossier_type == classification.dossier_type), None)
    requalified = _requalified(
        classification, policy.fallback_code, "demande", policy.fallback_service, field_work=False
    )
    return OpenDossier(
        new_id,
        (why,),
        linked_dossier_id=link.dossier_id if link else None,
        requalified=requalified,
    )


def _requalified(
    classification: Classification,
    dossier_type: str,
    kind: Kind,
    owner: str,
    *,
    field_work: bool,
) -> Classification:
    """The contact requalified as ``dossier_type``, for ``owner``; a sensitive or urgent one
    keeps the queue that must act first (5.1.4, 4.7). Such a dossier blocks no dunning."""
    keep = bool(classification.sensitive) or classification.urgency == "urgent"
    return dataclasses.replace(
        classification,
        dossier_type=dossier_type,
        kind=kind,
        service=classification.service if keep else owner,
        needs_field_work=field_work,
        blocks_dunning=False,
    )


def _recently_closed(
    item: IntakeItem, dossiers: Sequence[DossierView], policy: FollowUpPolicy
) -> list[DossierView]:
    """The customer's dossiers closed within the follow-up window, latest first (4.9)."""
    since = item.received_at - policy.window
    return sorted(
        (d for d in dossiers if d.status == "closed" and d.closed_at and d.closed_at >= since),
        key=lambda d: d.closed_at or since,
        reverse=True,
    )


def _follow_up(
    item: IntakeItem,
    classification: Classification,
    dossiers: Sequence[DossierView],
    policy: FollowUpPolicy,
    new_id: str,
) -> OpenDossier | AttachToDossier:
    closed = _recently_closed(item, dossiers, policy)
    if classification.dossier_type == policy.rdr_code:
        # The escalated request: one still open (the customer did not wait for its answer),
        # else the latest closed one.
        rdr = policy.rdr_code
        still_open = [d for d in dossiers if d.status == "open" and d.dossier_type != rdr]
        escalated = next(iter(still_open or closed), None)
        return OpenDossier(
            new_id,
            ("escalade: dossier RDR (4.9 NB)",),
            linked_dossier_id=escalated.dossier_id if escalated else None,
        )
    same_type = [d for d in closed if d.dossier_type == classification.dossier_type]
    complaint = classification.kind == "reclamation"
    if classification.dossier_type == policy.fac_code or (complaint and same_type):
        open_fac = [d for d in dossiers if d.status == "open" and d.dossier_type == policy.fac_code]
        if open_fac:  # the complaint already has its FAC dossier: one more contact (4.8)
            why = f"multi-contact: réclamation après clôture, dossier {policy.fac_code} ouvert"
            return AttachToDossier(open_fac[0].dossier_id, (f"{why} (4.8, 4.9)",))
        candidates = same_type or closed
        link = candidates[0] if candidates else None
        requalified = _requalified(
            classification,
            policy.fac_code,
            "reclamation",
            policy.fac_service,
            field_work=classification.needs_field_work,
        )
        why = "réclamation sur dossier clôturé: dossier FAC (4.9)"
        return OpenDossier(
            new_id,
            (why,),
            linked_dossier_id=link.dossier_id if link else None,
            requalified=requalified,
        )
    return OpenDossier(new_id, ("nouvelle demande (4.6)",))

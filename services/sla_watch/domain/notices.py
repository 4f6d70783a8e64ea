"""What a holding mail says, and whether a queued one may still go out (4.11, 4.12, 5.1.7).

How sla_watch knows a dossier "carries a dysfunction" (4.11: every dysfunction
calls for apologies): the dossier events have no explicit flag, so it is
derived from what they do say, each with its reason:

- the dossier is a réclamation (4.13: the customer reports an anomaly or is
  dissatisfied), as opened or as last requalified;
- it was opened about a closed dossier (4.9, ``linked_dossier_id``);
- its type is one ops list as implying a failure (``apology_types``, by
  default FAC and RDR: complaints after a closed dossier, last-resort claims);
- one of its deadlines was already missed (``SlaBreached``): the 4.12
  commitment itself failed.

A mail queued by the scheduler is checked again right before it is sent
(``mail_decision``), because a reply, a closure or a pause may have been
folded in between.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Set
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from services.sla_watch.domain.calendar import PARIS, format_paris
from services.sla_watch.domain.deadlines import DeadlineState
from services.sla_watch.domain.policy import SlaPolicy

__all__ = [
    "CancelMail",
    "DeferMail",
    "HoldingMailFacts",
    "MailDecision",
    "SendMail",
    "dysfunction_reasons",
    "holding_mail_facts",
    "mail_decision",
]


@dataclass(frozen=True, slots=True)
class HoldingMailFacts:
    """The facts a holding mail states: references, dates, and whether to apologise."""

    dossier_id: str
    deadline_id: str
    customer_ref: str | None
    received_at: dt.datetime
    due_at: dt.datetime
    apologies: bool
    reasons: tuple[str, ...]
    zone: ZoneInfo = PARIS  # the customer's wall clock, the one the mail's dates are told in


@dataclass(frozen=True, slots=True)
class SendMail:
    """Send the queued holding mail now."""

    facts: HoldingMailFacts
    recipient: str


@dataclass(frozen=True, slots=True)
class DeferMail:
    """Not now (outside the sending window): try again at ``until``."""

    until: dt.datetime
    reason: str


@dataclass(frozen=True, slots=True)
class CancelMail:
    """The holding mail is no longer wanted; ``reason`` says why. ``too_late``: the
    deadline still runs but no mail can reach the customer before it any more."""

    reason: str
    too_late: bool = False


MailDecision = SendMail | DeferMail | CancelMail


def dysfunction_reasons(state: DeadlineState, apology_types: Set[str]) -> tuple[str, ...]:
    """Return why the dossier calls for apologies; empty when it does not (4.11, 4.13, 4.9).

    Rule: a réclamation, a dossier about a closed one, a dossier type listed in
    ``apology_types``, or a deadline already missed each carry the dysfunction
    flag (see the module docstring); the reasons name which.
    """
    reasons: list[str] = []
    if state.kind == "reclamation":
        reasons.append("réclamation : anomalie ou mécontentement signalé (4.13)")
    if state.linked_dossier_id is not None:
        reasons.append("réclamation sur un dossier clôturé (4.9)")
    if state.dossier_type is not None and state.dossier_type in apology_types:
        reasons.append(f"type {state.dossier_type} : dysfonctionnement par nature (4.11)")
    if state.breached:
        reasons.append("une échéance précédente a été dépassée (4.12)")
    return tuple(reasons)


def holding_mail_facts(state: DeadlineState, apology_types: Set[str]) -> HoldingMailFacts | None:
    """Return what the holding mail of the running deadline says, or None without one (4.12).

    Rule (4.11, 5.1.7): the dossier reference, the contact date and the due
    date, with apologies when the dossier carries the dysfunction flag.
    """
    deadline = state.deadline
    if deadline is None:
        return None
    reasons = dysfunction_reasons(state, apology_types)
    return HoldingMailFacts(
        dossier_id=state.dossier_id,
        deadline_id=deadline.deadline_id,
        customer_ref=state.customer_ref,
        received_at=state.contact_at,
        due_at=deadline.due_at,
        apologies=bool(reasons),
        reasons=reasons,
        zone=state.calendar.zone,
    )


def mail_decision(
    state: DeadlineState | None,
    deadline_id: str,
    now: dt.datetime,
    policy: SlaPolicy,
    apology_types: Set[str],
) -> MailDecision:
    """Decide whether a queued holding mail goes out at ``now`` (4.12).

    Rule: it goes only while its deadline still runs (dossier open, no reply,
    not paused, same deadline), before the due instant, when no holding mail
    was recorded for that deadline yet and the customer has an e-mail address,
    and inside the sending window on a working day; outside the window it
    waits for the next opening if that is still before the deadline.
    """
    if state is None:
        return CancelMail("dossier inconnu")
    deadline = state.deadline
    if deadline is None or deadline.deadline_id != deadline_id:
        return CancelMail(f"échéance {deadline_id} levée ou remplacée ({state.status})")
    if deadline_id in state.holding_mail_sent:
        return CancelMail("courrier d'attente déjà tracé pour cette échéance")
    if now >= deadline.due_at:
        return CancelMail(f"échéance {format_paris(deadline.due_at)} déjà passée", too_late=True)
    facts = holding_mail_facts(state, apology_types)
    if facts is None or state.reply_email is None:
        return CancelMail("pas d'adresse électronique")
    calendar = state.calendar
    if calendar.in_window(now, policy.sending_window):
        return SendMail(facts, state.reply_email)
    slot = calendar.next_window_instant(now, policy.sending_window)
    if slot < deadline.due_at:
        return DeferMail(slot, f"hors fenêtre d'envoi : reporté au {format_paris(slot)}")
    return CancelMail("plus de créneau d'envoi avant l'échéance", too_late=True)

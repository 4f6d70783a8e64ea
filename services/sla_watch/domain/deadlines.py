"""Response deadlines of one dossier, folded from its events (procedure 4.8, 4.12, 4.13).

``apply(state, event, policy)`` folds the ``schemas.dossiers`` events into a
frozen ``DeadlineState``: the basis (48 h, 5 or 15 working days), the due
instant, the third-party pauses and what was already done. The deadline is
recomputed from the original contact and the pause history whenever one of
them changes, so a requalification and a pause compose. Planning the holding
mail and deciding what is due at an instant live in ``holding.py``.

Where the procedure is silent: a phone contact gets the letter's 5 working days
(it is usually answered during the call, and then the reply or the closure ends
the deadline); a requalification away from field work keeps the 15-working-day
deadline (a deadline never moves earlier); a multi-contact never starts a new
deadline, even after the first reply; a pause that starts after the due instant
keeps no time left, so the clock restarts with a deadline due at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from schemas.dossiers import (
    ContactAttached,
    DeadlineBasis,
    DeadlineSet,
    DossierCancelled,
    DossierClosed,
    DossierEvent,
    DossierOpened,
    DossierRequalified,
    HoldingMailSent,
    Kind,
    ReplySent,
    SlaBreached,
    ThirdPartyAwaited,
    ThirdPartyReceived,
)
from schemas.intake import Channel
from services.sla_watch.domain.calendar import (
    FULL_DAY,
    DailyWindow,
    UnknownRegion,
    WorkingCalendar,
    format_paris,
    normalize_region,
)
from services.sla_watch.domain.policy import SlaPolicy

__all__ = [
    "Deadline",
    "DeadlineState",
    "Pause",
    "SlaPolicy",
    "Status",
    "apply",
    "deadline_amount",
    "fold",
]

Status = Literal["running", "paused", "met", "closed", "cancelled"]
_DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Pause:
    """A stretch of time spent awaiting a third party's approval (4.12)."""

    paused_at: dt.datetime
    third_party: str
    resumed_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Deadline:
    """A running response deadline: what is due, since when, and why."""

    deadline_id: str
    dossier_id: str
    basis: DeadlineBasis
    started_at: dt.datetime
    due_at: dt.datetime
    reason: str


@dataclass(frozen=True, slots=True)
class DeadlineState:
    """What sla_watch knows of one dossier's deadline, folded from its events.

    ``due_at`` is None while the clock is paused; ``left`` is then the time that
    was left (clock time for a 48 h deadline in clock hours, working time
    otherwise). ``reasons`` keeps why each change happened, oldest first.
    """

    dossier_id: str
    channel: Channel
    kind: Kind
    region: str | None
    customer_ref: str | None
    reply_email: str | None
    contact_at: dt.datetime
    opened_at: dt.datetime
    basis: DeadlineBasis
    basis_reason: str
    status: Status
    due_at: dt.datetime | None
    left: dt.timedelta | None = None
    pauses: tuple[Pause, ...] = ()
    replied_at: dt.datetime | None = None
    holding_mail_sent: frozenset[str] = frozenset()
    breached: frozenset[str] = frozenset()
    announced: tuple[str, dt.datetime] | None = None
    reasons: tuple[str, ...] = ()
    applied: frozenset[str] = frozenset()
    dossier_type: str | None = None
    linked_dossier_id: str | None = None
    # a third party's answer delivered before its wait: ends the next wait begun before it
    early_answer: dt.datetime | None = None

    @property
    def deadline_id(self) -> str:
        """The current deadline's id: one per dossier and basis."""
        return f"{self.dossier_id}:{self.basis}"

    @property
    def is_open(self) -> bool:
        """False once the dossier was closed or cancelled (4.15)."""
        return self.status not in ("closed", "cancelled")

    @property
    def calendar(self) -> WorkingCalendar:
        """The working-day calendar of the dossier's region."""
        return WorkingCalendar(self.region)

    @property
    def deadline(self) -> Deadline | None:
        """The running deadline, or None when paused, met, closed or cancelled."""
        if self.status != "running" or self.due_at is None:
            return None
        started = self.pauses[-1].resumed_at if self.pauses else None
        return Deadline(
            deadline_id=self.deadline_id,
            dossier_id=self.dossier_id,
            basis=self.basis,
            started_at=started or self.contact_at,
            due_at=self.due_at,
            reason=self.basis_reason,
        )


def deadline_amount(basis: DeadlineBasis, channel: Channel, policy: SlaPolicy) -> dt.timedelta:
    """Return how much (clock or working) time a deadline of ``basis`` grants (4.12).

    Rule: ``email_response`` for 48 h; for working-day bases, the number of
    working days (letter, phone or field work) as whole days of working time.
    """
    if basis == "48h":
        return policy.email_response
    if basis == "15wd":
        return policy.field_work_working_days * _DAY
    days = policy.phone_working_days if channel == "phone" else policy.letter_working_days
    return days * _DAY


def _meter(basis: DeadlineBasis, policy: SlaPolicy) -> DailyWindow | None:
    """The window working time is counted in; None means plain clock time."""
    if basis != "48h":
        return FULL_DAY
    return None if policy.email_counting == "clock_hours" else policy.working_hours


def _basis(channel: Channel, field_work: bool, policy: SlaPolicy) -> tuple[DeadlineBasis, str]:
    if field_work:
        days = policy.field_work_working_days
        return "15wd", f"intervention terrain ou autre service : {days} jours ouvrés (4.12)"
    if channel == "email":
        hours = policy.email_response / dt.timedelta(hours=1)
        unit = "d'horloge" if policy.email_counting == "clock_hours" else "ouvrées"
        return "48h", f"courriel : {hours:g} heures {unit} (4.12)"
    if channel == "letter":
        days = policy.letter_working_days
        return "5wd", f"courrier : {days} jours ouvrés depuis la numérisation (4.12)"
    days = policy.phone_working_days
    return "5wd", f"téléphone : {days} jours ouvrés, comme un courrier (4.12)"


def _schedule(
    state: DeadlineState, policy: SlaPolicy
) -> tuple[dt.datetime | None, dt.timedelta | None]:
    """Due instant (None while paused) and time left, replaying every pause in order."""
    window, cal = _meter(state.basis, policy), state.calendar
    amount = deadline_amount(state.basis, state.channel, policy)

    def add(start: dt.datetime, span: dt.timedelta) -> dt.datetime:
        return start + span if window is None else cal.add_working_hours(start, span, window)

    due = add(state.contact_at, amount)
    for pause in state.pauses:
        if window is None:
            left = max(due - pause.paused_at, dt.timedelta(0))
        else:
            left = cal.working_time_between(pause.paused_at, due, window)
        if pause.resumed_at is None:
            return None, left
        due = add(pause.resumed_at, left)
    return due, None


def _reschedule(state: DeadlineState, policy: SlaPolicy, reason: str) -> DeadlineState:
    due, left = _schedule(state, policy)
    hours = (left or dt.timedelta(0)) / dt.timedelta(hours=1)
    when = f"échéance {format_paris(due)}" if due else f"horloge suspendue, reste {hours:g} h"
    return replace(state, due_at=due, left=left, reasons=(*state.reasons, f"{reason} → {when}"))


def _note(state: DeadlineState, reason: str) -> DeadlineState:
    return replace(state, reasons=(*state.reasons, reason))


def _open(event: DossierOpened, policy: SlaPolicy) -> DeadlineState:
    notes: tuple[str, ...] = ()
    try:
        region = normalize_region(event.region) if event.region else policy.default_region
    except UnknownRegion:
        region = policy.default_region
        notes = (f"région {event.region!r} inconnue : calendrier de la région par défaut",)
    if event.kind == "reclamation" and event.customer_ref is None:
        notes = (*notes, "réclamation sans référence client : pas de suspension possible (4.13)")
    basis, reason = _basis(event.channel, event.needs_field_work, policy)
    state = DeadlineState(
        dossier_id=event.dossier_id,
        channel=event.channel,
        kind=event.kind,
        region=region,
        customer_ref=event.customer_ref,
        reply_email=event.reply_email,
        contact_at=event.contact_date,
        opened_at=event.occurred_at,
        basis=basis,
        basis_reason=reason,
        status="running",
        due_at=None,
        reasons=notes,
        applied=frozenset({event.event_id}),
        dossier_type=event.dossier_type,
        linked_dossier_id=event.linked_dossier_id,
    )
    return _reschedule(state, policy, f"{reason}, depuis le {format_paris(event.contact_date)}")


def _requalify(state: DeadlineState, event: DossierRequalified, policy: SlaPolicy) -> DeadlineState:
    state = replace(state, kind=event.kind, dossier_type=event.dossier_type)
    if not event.needs_field_work or state.basis == "15wd":
        kept = "conservée" if state.status in ("running", "paused") else "sans objet"
        return _note(state, f"requalifié ({event.kind}) : échéance {kept}")
    if state.status not in ("running", "paused"):
        return _note(state, "requalifié intervention terrain après la réponse : échéance tenue")
    basis, reason = _basis(state.channel, True, policy)
    state = replace(state, basis=basis, basis_reason=reason)
    note = f"requalifié : {reason}, depuis le contact initial"
    return _reschedule(state, policy, note)


_CLOCK_SKEW = dt.timedelta(minutes=5)


def _pause(state: DeadlineState, event: ThirdPartyAwaited, policy: SlaPolicy) -> DeadlineState:
    if state.status != "running":
        return state
    pause = Pause(paused_at=event.occurred_at, third_party=event.third_party)
    state = replace(state, status="paused", pauses=(*state.pauses, pause))
    answered, state = state.early_answer, replace(state, early_answer=None)
    # the answer and its wait are stamped by different router instances' clocks: a few
    # minutes of disagreement still pair them (a stray answer older than that does not)
    if answered is not None and answered >= event.occurred_at - _CLOCK_SKEW:
        return _resume_at(state, answered, policy)  # its answer came first: the wait is over
    return _reschedule(state, policy, "attente de l'accord d'un tiers (4.12)")


def _resume(state: DeadlineState, event: ThirdPartyReceived, policy: SlaPolicy) -> DeadlineState:
    if state.status == "running" and state.early_answer is None:
        # Delivered before the wait it ends (two router instances, a late publication):
        # kept for that wait, which would otherwise stay paused for ever.
        state = replace(state, early_answer=event.occurred_at)
        return _note(state, "accord d'un tiers reçu avant son attente : gardé pour elle")
    if state.status != "paused":
        return state
    return _resume_at(state, event.occurred_at, policy)


def _resume_at(state: DeadlineState, answered: dt.datetime, policy: SlaPolicy) -> DeadlineState:
    last = state.pauses[-1]
    resumed = replace(last, resumed_at=max(answered, last.paused_at))
    state = replace(state, status="running", pauses=(*state.pauses[:-1], resumed))
    return _reschedule(state, policy, "accord du tiers reçu : reprise avec le temps restant")


def _reply(state: DeadlineState, event: ReplySent) -> DeadlineState:
    if state.status not in ("running", "paused"):
        return _note(state, f"nouvelle réponse ({event.medium}) : échéance déjà levée")
    late = state.due_at is not None and event.occurred_at > state.due_at
    verdict = "après l'échéance" if late else "dans le délai"
    state = replace(state, status="met", replied_at=event.occurred_at, left=None)
    return _note(state, f"réponse envoyée ({event.medium}) {verdict} : échéance levée (4.12)")


def apply(
    state: DeadlineState | None, event: DossierEvent, policy: SlaPolicy
) -> DeadlineState | None:
    """Fold one dossier event into the deadline state and return the new state.

    Rules (4.12, 4.8, 4.15): opening starts 48 h (e-mail), 5 working days
    (letter, phone) or 15 working days (field work) from the contact date;
    requalification to field work moves it to 15 working days from the original
    contact; awaiting a third party pauses the clock and its answer restarts it
    with the time left; a multi-contact keeps the deadline; a reply meets it;
    closure or cancellation ends it. Events before the opening return None;
    an event already applied (same ``event_id``) or out of place leaves the
    state unchanged. Reasons never copy free text from the events (GDPR).
    """
    if state is None:
        return _open(event, policy) if isinstance(event, DossierOpened) else None
    if event.event_id in state.applied:
        return state
    state = replace(state, applied=state.applied | {event.event_id})
    if isinstance(event, DossierOpened):
        return state
    if isinstance(event, HoldingMailSent):
        sent = state.holding_mail_sent | {event.deadline_id}
        return replace(state, holding_mail_sent=sent)
    if isinstance(event, SlaBreached):
        return replace(state, breached=state.breached | {event.deadline_id})
    if isinstance(event, DeadlineSet):
        return replace(state, announced=(event.deadline_id, event.due_at))
    if not state.is_open:
        return state
    if isinstance(event, DossierClosed | DossierCancelled):
        status: Status = "closed" if isinstance(event, DossierClosed) else "cancelled"
        return _note(replace(state, status=status), f"dossier {status} : fin de l'échéance (4.15)")
    if isinstance(event, ReplySent):
        return _reply(state, event)
    if isinstance(event, ContactAttached):
        return _note(state, f"multi-contact ({event.channel}) : échéance initiale conservée (4.8)")
    if isinstance(event, DossierRequalified):
        return _requalify(state, event, policy)
    if isinstance(event, ThirdPartyAwaited):
        return _pause(state, event, policy)
    if isinstance(event, ThirdPartyReceived):
        return _resume(state, event, policy)
    return _note(state, "prélèvement suspendu (4.13)")


def fold(events: Iterable[DossierEvent], policy: SlaPolicy) -> DeadlineState | None:
    """Fold a dossier's events into its deadline state (4.12), the opening first.

    Rule: the same as applying ``apply`` to each event in turn from no state,
    the opening first, then the others in the order they arrived. Kafka may
    deliver a dossier's events out of order (two router instances, a row a
    failed publication left published after later ones): a closure or a reply
    that arrives before the opening still ends the deadline once it comes (it
    used to be dropped, and the closed dossier got its holding mail and
    breach), and a third party's answer that arrives before its wait ends that
    wait (see ``early_answer``). Arrival order, not ``occurred_at``, orders the
    rest: the router's instances stamp events with their own clocks.
    """
    state: DeadlineState | None = None
    for event in sorted(events, key=lambda e: not isinstance(e, DossierOpened)):
        state = apply(state, event, policy)
    return state

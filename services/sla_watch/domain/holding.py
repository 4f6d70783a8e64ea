"""Holding mails, breaches and same-day complaint checks due at an instant (4.12, 4.13).

``plan_holding_mail`` picks when a deadline's holding mail goes out;
``due_actions(state, now, policy)`` lists what must happen at ``now``, each
action with a deterministic ``action_id`` (the service claims it once) and its
reason; ``next_check_at`` says when the dossier next needs a look, which is
the column a scheduler indexes.

Where the procedure is silent: when the lead time lands where no sending slot
remains before the deadline (an e-mail on Friday is due on Sunday), the mail
moves to the last slot before it, ``earlier_slot_margin`` before the window
closes, but never before the clock (re)started; an action a service already
carried out or queued can be passed in ``done`` so that it is not listed again
(the service passes the ids of its action ledger: a holding mail queued but not
yet sent has no ``HoldingMailSent`` to fold, and ``DirectDebitSuspended`` folds
into a note only). A 4.13 suspension needs the 9-digit customer reference the
billing system knows; without one nothing is listed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Set
from dataclasses import dataclass
from typing import Literal

from schemas.dossiers import DeadlineBasis, DossierOpened
from schemas.intake import Channel
from services.sla_watch.domain.calendar import (
    FULL_DAY,
    DailyWindow,
    WorkingCalendar,
    format_paris,
    normalize_region,
)
from services.sla_watch.domain.deadlines import Deadline, DeadlineState, SlaPolicy, apply

__all__ = [
    "Action",
    "DeclareBreach",
    "HoldingMailPlan",
    "NoHoldingSlot",
    "PublishDeadline",
    "SendHoldingMail",
    "SuspendDirectDebit",
    "due_actions",
    "next_check_at",
    "plan_holding_mail",
    "quote_deadline",
]

_REF = re.compile(r"^\d{9}$")


@dataclass(frozen=True, slots=True)
class HoldingMailPlan:
    """When a deadline's holding mail goes out, and why then."""

    deadline_id: str
    send_at: dt.datetime
    due_at: dt.datetime
    reason: str


@dataclass(frozen=True, slots=True)
class NoHoldingSlot:
    """No sending slot exists before the deadline: no holding mail, and why."""

    deadline_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class PublishDeadline:
    """Announce the current deadline as a ``DeadlineSet`` event (it is new or it moved)."""

    action_id: str
    dossier_id: str
    deadline_id: str
    basis: DeadlineBasis
    due_at: dt.datetime
    holding_mail_at: dt.datetime | None
    reason: str


@dataclass(frozen=True, slots=True)
class SendHoldingMail:
    """Send the holding mail now, by e-mail or as an outbound-call task (4.12)."""

    action_id: str
    dossier_id: str
    deadline_id: str
    due_at: dt.datetime
    medium: Literal["email", "outbound_call"]
    reason: str


@dataclass(frozen=True, slots=True)
class DeclareBreach:
    """The deadline passed with no reply: emit ``SlaBreached`` and a supervisor task."""

    action_id: str
    dossier_id: str
    deadline_id: str
    due_at: dt.datetime
    reason: str


@dataclass(frozen=True, slots=True)
class SuspendDirectDebit:
    """A complaint still open at the end of its opening working day (4.13)."""

    action_id: str
    dossier_id: str
    customer_ref: str
    reason: str


Action = PublishDeadline | SendHoldingMail | DeclareBreach | SuspendDirectDebit


def _shrink(window: DailyWindow, margin: dt.timedelta) -> DailyWindow:
    end = (dt.datetime.min + window.end_offset - margin).time()
    return DailyWindow(start=window.start, end=end)


def _target(deadline: Deadline, policy: SlaPolicy, calendar: WorkingCalendar) -> dt.datetime:
    if deadline.basis != "48h":
        lead = policy.holding_lead_working_days * dt.timedelta(days=1)
        return calendar.subtract_working_hours(deadline.due_at, lead, FULL_DAY)
    if policy.email_counting == "clock_hours":
        return deadline.due_at - policy.email_holding_lead
    return calendar.subtract_working_hours(
        deadline.due_at, policy.email_holding_lead, policy.working_hours
    )


def plan_holding_mail(
    deadline: Deadline, policy: SlaPolicy, calendar: WorkingCalendar
) -> HoldingMailPlan | NoHoldingSlot:
    """Return when the holding mail of a deadline goes out, or why it cannot.

    Rule (4.12: a holding mail before a deadline that cannot be met): the lead
    time before the due instant (one working day for 5 or 15 working days, 6 h
    for 48 h by default), moved to the next instant inside the sending window on
    a working day, and never before the clock (re)started. When that is not
    before the deadline, the last slot before it (``earlier_slot_fallback``);
    otherwise ``NoHoldingSlot`` with the reason.
    """
    due, floor = deadline.due_at, deadline.started_at
    target = max(_target(deadline, policy, calendar), floor)
    window = policy.sending_window
    lead = (
        f"{policy.holding_lead_working_days} jour(s) ouvré(s)"
        if deadline.basis != "48h"
        else f"{policy.email_holding_lead / dt.timedelta(hours=1):g} h"
    )
    due_text = f"échéance {format_paris(due)}"
    send_at = calendar.next_window_instant(target, window)
    if send_at < due:
        reason = f"{lead} avant l'{due_text}, dans la fenêtre d'envoi (4.12)"
        return HoldingMailPlan(deadline.deadline_id, send_at, due, reason)
    if policy.earlier_slot_fallback:
        shrunk = _shrink(window, policy.earlier_slot_margin)
        earlier = calendar.previous_window_instant(target, shrunk, not_before=floor)
        if earlier is not None and earlier < due:
            reason = f"pas de créneau d'envoi {lead} avant l'{due_text} : avancé (4.12)"
            return HoldingMailPlan(deadline.deadline_id, earlier, due, reason)
    reason = f"aucun créneau d'envoi ouvré avant l'{due_text} : pas de courrier d'attente"
    return NoHoldingSlot(deadline.deadline_id, reason)


def _debit_check_at(state: DeadlineState, policy: SlaPolicy) -> dt.datetime | None:
    # AccountAction needs the 9-digit customer reference of the billing system.
    ref = state.customer_ref
    if state.kind != "reclamation" or not state.is_open or ref is None or not _REF.match(ref):
        return None
    return state.calendar.end_of_working_day(state.opened_at, policy.working_day_end)


def _require_aware(now: dt.datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"naive datetime {now.isoformat()}: aware datetimes only")


def _deadline_actions(
    state: DeadlineState, deadline: Deadline, now: dt.datetime, policy: SlaPolicy
) -> list[Action]:
    actions: list[Action] = []
    plan = plan_holding_mail(deadline, policy, state.calendar)
    mail_at = plan.send_at if isinstance(plan, HoldingMailPlan) else None
    due_text = f"échéance {format_paris(deadline.due_at)}"
    if state.announced != (deadline.deadline_id, deadline.due_at):
        stamp = deadline.due_at.strftime("%Y%m%dT%H%M%SZ")
        reason = f"{deadline.reason}, {due_text}; {plan.reason}"
        actions.append(
            PublishDeadline(
                action_id=f"{deadline.deadline_id}:due:{stamp}",
                dossier_id=state.dossier_id,
                deadline_id=deadline.deadline_id,
                basis=deadline.basis,
                due_at=deadline.due_at,
                holding_mail_at=mail_at,
                reason=reason,
            )
        )
    if now >= deadline.due_at:
        if deadline.deadline_id not in state.breached:
            actions.append(
                DeclareBreach(
                    action_id=f"{deadline.deadline_id}:breach",
                    dossier_id=state.dossier_id,
                    deadline_id=deadline.deadline_id,
                    due_at=deadline.due_at,
                    reason=f"{due_text} dépassée sans réponse (4.12)",
                )
            )
    elif (
        mail_at is not None
        and deadline.deadline_id not in state.holding_mail_sent
        and now >= mail_at
        and state.calendar.in_window(now, policy.sending_window)
    ):
        by_email = state.reply_email is not None
        actions.append(
            SendHoldingMail(
                action_id=f"{deadline.deadline_id}:holding_mail",
                dossier_id=state.dossier_id,
                deadline_id=deadline.deadline_id,
                due_at=deadline.due_at,
                medium="email" if by_email else "outbound_call",
                reason=f"{plan.reason}, {'par courriel' if by_email else 'sans adresse : appel'}",
            )
        )
    return actions


def due_actions(
    state: DeadlineState, now: dt.datetime, policy: SlaPolicy, *, done: Set[str] = frozenset()
) -> tuple[Action, ...]:
    """Return what must happen to a dossier at ``now``, each action with its reason.

    Rules: publish a new or moved deadline; once its planned time has come,
    inside the sending window and before the deadline, send the holding mail,
    once per deadline, by e-mail or else as an outbound call (4.12); once the
    due instant is reached with no reply, declare the breach, once (4.12); a
    réclamation still open at the end of its opening working day suspends the
    direct debit (4.13). Nothing runs while paused, after a reply (except 4.13)
    or after closure. Actions whose ``action_id`` is in ``done`` are left out.
    """
    _require_aware(now)
    actions = (
        [] if state.deadline is None else _deadline_actions(state, state.deadline, now, policy)
    )
    check_at = _debit_check_at(state, policy)
    if check_at is not None and state.customer_ref is not None and now >= check_at:
        actions.append(
            SuspendDirectDebit(
                action_id=f"{state.dossier_id}:suspend_direct_debit",
                dossier_id=state.dossier_id,
                customer_ref=state.customer_ref,
                reason=f"réclamation non résolue fin de journée ({format_paris(check_at)}) (4.13)",
            )
        )
    return tuple(action for action in actions if action.action_id not in done)


def next_check_at(
    state: DeadlineState, now: dt.datetime, policy: SlaPolicy, *, done: Set[str] = frozenset()
) -> dt.datetime | None:
    """Return the earliest instant (at or after ``now``) when ``due_actions`` may list more.

    Rule (4.12, 4.13): the planned holding-mail time (moved into the sending
    window), the due instant, the 4.13 end-of-day check, or ``now`` when
    something is already due; None when nothing will ever be due again.
    """
    _require_aware(now)
    if due_actions(state, now, policy, done=done):
        return now
    candidates: list[dt.datetime] = []
    deadline = state.deadline
    if deadline is not None:
        if f"{deadline.deadline_id}:breach" not in done and (
            deadline.deadline_id not in state.breached
        ):
            candidates.append(deadline.due_at)
        plan = plan_holding_mail(deadline, policy, state.calendar)
        mail_id = f"{deadline.deadline_id}:holding_mail"
        if (
            isinstance(plan, HoldingMailPlan)
            and deadline.deadline_id not in state.holding_mail_sent
            and mail_id not in done
        ):
            slot = state.calendar.next_window_instant(max(now, plan.send_at), policy.sending_window)
            if slot < deadline.due_at:
                candidates.append(slot)
    check_at = _debit_check_at(state, policy)
    if check_at is not None and f"{state.dossier_id}:suspend_direct_debit" not in done:
        candidates.append(check_at)
    future = [at for at in candidates if at > now]
    return min(future) if future else None


def quote_deadline(
    channel: Channel,
    received_at: dt.datetime,
    policy: SlaPolicy,
    *,
    field_work: bool = False,
    region: str | None = None,
) -> tuple[Deadline, HoldingMailPlan | NoHoldingSlot]:
    """Return the deadline and holding-mail plan of a contact received at ``received_at``.

    Rule (4.12), for ``aiguillage sla due``: the same computation as opening a
    dossier for that channel and need in that region (``UnknownRegion`` for a
    bad code), then ``plan_holding_mail``; nothing is stored.
    """
    _require_aware(received_at)
    opened = DossierOpened(
        event_id="quote",
        dossier_id="quote",
        occurred_at=received_at,
        item_id="quote",
        channel=channel,
        contact_date=received_at,
        dossier_type="quote",
        kind="demande",
        urgency="normale",
        service="quote",
        needs_field_work=field_work,
        region=normalize_region(region),
    )
    state = apply(None, opened, policy)
    if state is None or state.deadline is None:  # pragma: no cover - opening always runs
        raise AssertionError("an opened dossier always has a running deadline")
    return state.deadline, plan_holding_mail(state.deadline, policy, state.calendar)

"""Holding-mail planning and the actions due at an instant (procedure 4.12, 4.13)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from schemas.dossiers import (
    DeadlineSet,
    DossierClosed,
    DossierEvent,
    DossierOpened,
    DossierRequalified,
    HoldingMailSent,
    ReplySent,
    SlaBreached,
    ThirdPartyAwaited,
    ThirdPartyReceived,
)
from services.sla_watch.domain import (
    DeadlineState,
    DeclareBreach,
    HoldingMailPlan,
    NoHoldingSlot,
    PublishDeadline,
    SendHoldingMail,
    SlaPolicy,
    SuspendDirectDebit,
    due_actions,
    fold,
    next_check_at,
    plan_holding_mail,
    quote_deadline,
)
from services.sla_watch.domain.calendar import UnknownRegion
from services.sla_watch.testing import event_fields, opened, paris

POLICY = SlaPolicy()
LETTER_DUE = "2026-06-15"  # a letter of Monday 2026-06-08 10:00 is due Monday 15 at 10:00


def run(*events: DossierEvent, policy: SlaPolicy = POLICY, announce: bool = True) -> DeadlineState:
    """Fold events and, like the service would, the DeadlineSet it published."""
    state = fold(events, policy)
    assert state is not None
    if announce and state.due_at is not None:
        announced = DeadlineSet(
            **event_fields("D1", state.contact_at, "set"),
            deadline_id=state.deadline_id,
            basis=state.basis,
            due_at=state.due_at,
        )
        state = fold([*events, announced], policy)
        assert state is not None
    return state


def letter(**options: Any) -> DossierOpened:
    return opened("D1", paris("2026-06-08", 10), **options)


def plan(*events: DossierEvent, policy: SlaPolicy = POLICY) -> HoldingMailPlan | NoHoldingSlot:
    state = run(*events, policy=policy)
    assert state.deadline is not None
    return plan_holding_mail(state.deadline, policy, state.calendar)


@pytest.mark.parametrize(
    ("event", "send_at"),
    [
        pytest.param(letter(), paris("2026-06-12", 10), id="letter-one-working-day-before"),
        pytest.param(letter(field_work=True), paris("2026-06-26", 10), id="field-work"),
        pytest.param(
            opened("D1", paris("2026-05-06", 10)), paris("2026-05-13", 10), id="over-ascension"
        ),
        pytest.param(
            opened("D1", paris("2026-06-09", 10), "email"), paris("2026-06-11", 8), id="email"
        ),
        pytest.param(
            opened("D1", paris("2026-06-08", 20)), paris("2026-06-15", 8), id="evening-letter"
        ),
        pytest.param(
            opened("D1", paris("2026-06-12", 10), "email"),
            paris("2026-06-12", 18, 30),
            id="email-fri",
        ),
    ],
)
def test_sla_holding_mail_is_planned_in_the_window_before_the_deadline(
    event: DossierOpened, send_at: dt.datetime
) -> None:
    result = plan(event)
    assert isinstance(result, HoldingMailPlan)
    assert result.send_at == send_at
    assert result.send_at < result.due_at
    assert "4.12" in result.reason


def test_sla_holding_mail_on_a_48_working_hour_deadline() -> None:
    policy = SlaPolicy(email_counting="working_hours")
    result = plan(opened("D1", paris("2026-06-12", 10), "email"), policy=policy)
    assert isinstance(result, HoldingMailPlan)
    assert (result.send_at, result.due_at) == (paris("2026-06-16", 8), paris("2026-06-16", 10))


def test_sla_holding_mail_never_before_the_clock_restarted() -> None:
    result = plan(
        letter(),
        ThirdPartyAwaited(
            **event_fields("D1", paris(LETTER_DUE, 9), "awaited"), third_party="mairie"
        ),
        ThirdPartyReceived(**event_fields("D1", paris("2026-06-23", 14), "received")),
    )
    assert isinstance(result, HoldingMailPlan)
    assert (result.send_at, result.due_at) == (paris("2026-06-23", 14), paris("2026-06-23", 15))


@pytest.mark.parametrize(
    ("event", "policy", "reason"),
    [
        pytest.param(
            opened("D1", paris("2026-06-12", 10), "email"),
            SlaPolicy(earlier_slot_fallback=False),
            "pas de courrier d'attente",
            id="fallback-disabled",
        ),
        pytest.param(
            opened("D1", paris("2026-06-12", 18, 45), "email"),
            POLICY,
            "aucun créneau d'envoi ouvré avant l'échéance 2026-06-14 18:45",
            id="friday-evening-email",
        ),
    ],
)
def test_sla_no_holding_slot_before_the_deadline_is_a_result_with_its_reason(
    event: DossierOpened, policy: SlaPolicy, reason: str
) -> None:
    result = plan(event, policy=policy)
    assert result == NoHoldingSlot(deadline_id="D1:48h", reason=result.reason)
    assert reason in result.reason


def test_sla_new_deadline_is_published_with_its_planned_holding_mail() -> None:
    state = run(letter(), announce=False)
    actions = due_actions(state, paris("2026-06-08", 10), POLICY)
    assert len(actions) == 1
    publish = actions[0]
    assert isinstance(publish, PublishDeadline)
    assert publish.action_id == "D1:5wd:due:20260615T080000Z"
    assert (publish.due_at, publish.holding_mail_at) == (
        paris(LETTER_DUE, 10),
        paris("2026-06-12", 10),
    )
    assert "courrier" in publish.reason
    assert due_actions(run(letter()), paris("2026-06-08", 10), POLICY) == ()


@pytest.mark.parametrize(
    ("reply_email", "medium"),
    [pytest.param("client@example.fr", "email", id="email"), pytest.param(None, "outbound_call")],
)
def test_sla_holding_mail_is_due_at_its_planned_time(reply_email: str | None, medium: str) -> None:
    state = run(letter(email=reply_email))
    assert due_actions(state, paris("2026-06-12", 9, 59), POLICY) == ()
    (action,) = due_actions(state, paris("2026-06-12", 10), POLICY)
    assert isinstance(action, SendHoldingMail)
    assert (action.action_id, action.medium) == ("D1:5wd:holding_mail", medium)
    assert action.due_at == paris(LETTER_DUE, 10)


def test_sla_holding_mail_goes_out_once_per_deadline() -> None:
    sent = HoldingMailSent(
        **event_fields("D1", paris("2026-06-12", 10), "mail"), deadline_id="D1:5wd", medium="email"
    )
    state = run(letter(), sent)
    assert due_actions(state, paris("2026-06-12", 11), POLICY) == ()
    assert (
        due_actions(run(letter()), paris("2026-06-12", 11), POLICY, done={"D1:5wd:holding_mail"})
        == ()
    )


def test_sla_missed_holding_mail_waits_for_the_next_window_before_the_deadline() -> None:
    state = run(letter())
    assert due_actions(state, paris("2026-06-12", 20), POLICY) == ()
    assert next_check_at(state, paris("2026-06-12", 20), POLICY) == paris(LETTER_DUE, 8)
    (action,) = due_actions(state, paris(LETTER_DUE, 8), POLICY)
    assert isinstance(action, SendHoldingMail)


def test_sla_breach_is_declared_once_when_the_deadline_passes() -> None:
    state = run(letter())
    (action,) = due_actions(state, paris(LETTER_DUE, 10), POLICY)
    assert isinstance(action, DeclareBreach)
    assert action.action_id == "D1:5wd:breach"
    assert "dépassée sans réponse" in action.reason
    breached = SlaBreached(
        **event_fields("D1", paris(LETTER_DUE, 10), "breach"),
        deadline_id="D1:5wd",
        due_at=paris(LETTER_DUE, 10),
    )
    assert due_actions(run(letter(), breached), paris(LETTER_DUE, 11), POLICY) == ()


@pytest.mark.parametrize(
    "end",
    [
        pytest.param(
            ThirdPartyAwaited(
                **event_fields("D1", paris("2026-06-09"), "awaited"), third_party="mairie"
            ),
            id="awaiting-third-party",
        ),
        pytest.param(
            ReplySent(**event_fields("D1", paris("2026-06-09"), "reply"), medium="letter"),
            id="replied",
        ),
        pytest.param(
            DossierClosed(**event_fields("D1", paris("2026-06-09"), "closed")), id="closed"
        ),
    ],
)
def test_sla_no_holding_mail_nor_breach_when_paused_replied_or_closed(end: DossierEvent) -> None:
    state = run(letter(), end)
    for now in (paris("2026-06-12", 10), paris(LETTER_DUE, 10), paris("2026-07-01", 10)):
        assert due_actions(state, now, POLICY) == ()
    assert next_check_at(state, paris("2026-06-12", 10), POLICY) is None


@pytest.mark.parametrize(
    ("opened_at", "not_yet", "check_at"),
    [
        pytest.param(paris("2026-06-08", 10), paris("2026-06-08", 18, 59), paris("2026-06-08", 19)),
        pytest.param(paris("2026-06-12", 20), paris("2026-06-13", 12), paris(LETTER_DUE, 19)),
        pytest.param(paris("2026-05-13", 19), paris("2026-05-14", 19), paris("2026-05-15", 19)),
    ],
)
def test_sla_complaint_open_at_the_end_of_its_working_day_suspends_the_direct_debit(
    opened_at: dt.datetime, not_yet: dt.datetime, check_at: dt.datetime
) -> None:
    state = run(opened("D1", opened_at, "email", kind="reclamation", customer_ref="123456789"))
    assert not any(isinstance(a, SuspendDirectDebit) for a in due_actions(state, not_yet, POLICY))
    suspend = [a for a in due_actions(state, check_at, POLICY) if isinstance(a, SuspendDirectDebit)]
    assert [(a.action_id, a.customer_ref) for a in suspend] == [
        ("D1:suspend_direct_debit", "123456789")
    ]
    assert "4.13" in suspend[0].reason


def test_sla_complaint_replied_but_still_open_is_not_resolved() -> None:
    reply = ReplySent(**event_fields("D1", paris("2026-06-08", 12), "reply"), medium="email")
    state = run(opened("D1", paris("2026-06-08", 10), kind="reclamation"), reply)
    (action,) = due_actions(state, paris("2026-06-08", 19), POLICY)
    assert isinstance(action, SuspendDirectDebit)


@pytest.mark.parametrize(
    ("events", "now"),
    [
        pytest.param(
            [
                opened("D1", paris("2026-06-08", 10), kind="reclamation"),
                DossierClosed(**event_fields("D1", paris("2026-06-08", 17), "closed")),
            ],
            paris("2026-06-08", 19),
            id="resolved-the-same-day",
        ),
        pytest.param([letter()], paris("2026-06-08", 19), id="demande"),
        pytest.param(
            [opened("D1", paris("2026-06-08", 10), kind="reclamation", customer_ref=None)],
            paris("2026-06-08", 19),
            id="no-customer-reference",
        ),
    ],
)
def test_sla_no_direct_debit_suspension(events: list[DossierEvent], now: dt.datetime) -> None:
    state = run(*events)
    assert not any(isinstance(a, SuspendDirectDebit) for a in due_actions(state, now, POLICY))


def test_sla_complaint_requalified_later_suspends_at_once() -> None:
    requalified = DossierRequalified(
        **event_fields("D1", paris("2026-06-10", 10), "requalified"),
        dossier_type="FAC",
        kind="reclamation",
        urgency="normale",
        needs_field_work=False,
        reason="contestation",
    )
    state = run(letter(), requalified)
    (action,) = due_actions(state, paris("2026-06-10", 10), POLICY)
    assert isinstance(action, SuspendDirectDebit)
    assert due_actions(state, paris("2026-06-10", 10), POLICY, done={action.action_id}) == ()


def test_sla_next_check_follows_the_plan() -> None:
    monday = paris("2026-06-08", 10)
    assert next_check_at(run(letter(), announce=False), monday, POLICY) == monday
    assert next_check_at(run(letter()), monday, POLICY) == paris("2026-06-12", 10)
    sent = HoldingMailSent(
        **event_fields("D1", paris("2026-06-12", 10), "mail"), deadline_id="D1:5wd", medium="email"
    )
    assert next_check_at(run(letter(), sent), monday, POLICY) == paris(LETTER_DUE, 10)
    breached = SlaBreached(
        **event_fields("D1", paris(LETTER_DUE, 10), "breach"),
        deadline_id="D1:5wd",
        due_at=paris(LETTER_DUE, 10),
    )
    assert next_check_at(run(letter(), sent, breached), paris(LETTER_DUE, 11), POLICY) is None
    complaint = run(opened("D1", monday, kind="reclamation"))
    assert next_check_at(complaint, monday, POLICY) == paris("2026-06-08", 19)
    done = {"D1:suspend_direct_debit"}
    assert next_check_at(complaint, paris("2026-06-09"), POLICY, done=done) == paris(
        "2026-06-12", 10
    )


def test_sla_now_must_be_aware() -> None:
    naive = dt.datetime(2026, 6, 8, 10)
    with pytest.raises(ValueError, match="naive"):
        due_actions(run(letter()), naive, POLICY)
    with pytest.raises(ValueError, match="naive"):
        next_check_at(run(letter()), naive, POLICY)


def test_sla_quote_deadline_for_the_cli() -> None:
    deadline, mail = quote_deadline("letter", paris("2026-03-30", 10), POLICY, region="57")
    assert (deadline.basis, deadline.due_at) == ("5wd", paris("2026-04-08", 10))
    assert isinstance(mail, HoldingMailPlan)
    assert mail.send_at == paris("2026-04-07", 10)
    deadline, _ = quote_deadline("email", paris("2026-06-08", 10), POLICY, field_work=True)
    assert (deadline.basis, deadline.due_at) == ("15wd", paris("2026-06-29", 10))
    with pytest.raises(UnknownRegion):
        quote_deadline("phone", paris("2026-06-08", 10), POLICY, region="99")

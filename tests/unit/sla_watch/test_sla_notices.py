"""Apologies, the last check before a queued holding mail goes out, and the contracts of actions."""

from __future__ import annotations

import datetime as dt

import pytest

from schemas.dossiers import DossierEvent, DossierRequalified, SlaBreached
from services.sla_watch.domain import (
    PARIS,
    CancelMail,
    DeadlineState,
    DeclareBreach,
    DeferMail,
    SendMail,
    SlaPolicy,
    SuspendDirectDebit,
    breach_effects,
    dysfunction_reasons,
    fold,
    holding_effects,
    mail_decision,
    suspension_effects,
)
from services.sla_watch.testing import closed, opened, replied, third_party

POLICY = SlaPolicy()
APOLOGY_TYPES = frozenset({"FAC", "RDR"})
MONDAY = dt.datetime(2026, 6, 8, 10, 0, tzinfo=PARIS)
HOLDING = dt.datetime(2026, 6, 12, 10, 0, tzinfo=PARIS)


def state(*events: DossierEvent) -> DeadlineState:
    folded = fold(events, POLICY)
    assert folded is not None
    return folded


def requalified(kind: str) -> DossierRequalified:
    return DossierRequalified.model_validate(
        {
            "event_id": f"D:requalified:{kind}",
            "dossier_id": "D",
            "occurred_at": MONDAY + dt.timedelta(hours=1),
            "dossier_type": "COMPTEUR",
            "kind": kind,
            "urgency": "normale",
            "needs_field_work": False,
            "reason": "requalification",
        }
    )


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param((opened("D", MONDAY),), (), id="plain-request"),
        pytest.param((opened("D", MONDAY, kind="reclamation"),), ("réclamation",), id="complaint"),
        pytest.param((opened("D", MONDAY, dossier_type="RDR"),), ("type RDR",), id="listed-type"),
        pytest.param(
            (opened("D", MONDAY), requalified("reclamation")),
            ("réclamation",),
            id="requalified-to-complaint",
        ),
        pytest.param(
            (
                opened("D", MONDAY),
                SlaBreached(
                    event_id="D:x:breach",
                    dossier_id="D",
                    occurred_at=MONDAY,
                    deadline_id="D:48h",
                    due_at=MONDAY,
                ),
            ),
            ("une échéance précédente",),
            id="earlier-deadline-missed",
        ),
    ],
)
def test_sla_dysfunction_flag_is_derived_with_its_reasons(
    events: tuple[DossierEvent, ...], expected: tuple[str, ...]
) -> None:
    reasons = dysfunction_reasons(state(*events), APOLOGY_TYPES)
    assert len(reasons) == len(expected)
    for reason, start in zip(reasons, expected, strict=True):
        assert reason.startswith(start)


def test_sla_linked_dossier_calls_for_apologies() -> None:
    event = opened("D", MONDAY).model_copy(update={"linked_dossier_id": "D-OLD"})
    assert dysfunction_reasons(state(event), frozenset()) == (
        "réclamation sur un dossier clôturé (4.9)",
    )


def test_sla_queued_mail_goes_out_inside_the_window_with_its_facts() -> None:
    decision = mail_decision(state(opened("D", MONDAY)), "D:5wd", HOLDING, POLICY, APOLOGY_TYPES)
    assert isinstance(decision, SendMail)
    assert decision.recipient == "client@example.test"
    assert decision.facts.due_at == dt.datetime(2026, 6, 15, 8, 0, tzinfo=dt.UTC)
    assert not decision.facts.apologies


@pytest.mark.parametrize(
    ("events", "deadline_id", "now", "why"),
    [
        pytest.param((replied("D", MONDAY),), "D:5wd", HOLDING, "levée", id="replied"),
        pytest.param((closed("D", MONDAY),), "D:5wd", HOLDING, "levée", id="closed"),
        pytest.param((third_party("D", MONDAY),), "D:5wd", HOLDING, "levée", id="paused"),
        pytest.param((), "D:15wd", HOLDING, "remplacée", id="other-deadline"),
        pytest.param(
            (), "D:5wd", dt.datetime(2026, 6, 15, 10, tzinfo=PARIS), "passée", id="past-due"
        ),
    ],
)
def test_sla_queued_mail_is_cancelled_when_no_longer_wanted(
    events: tuple[DossierEvent, ...], deadline_id: str, now: dt.datetime, why: str
) -> None:
    decision = mail_decision(
        state(opened("D", MONDAY), *events), deadline_id, now, POLICY, APOLOGY_TYPES
    )
    assert isinstance(decision, CancelMail)
    assert why in decision.reason


def test_sla_queued_mail_waits_for_the_window_or_is_dropped_without_one() -> None:
    evening = dt.datetime(2026, 6, 12, 20, 0, tzinfo=PARIS)  # Friday, after 19:00
    decision = mail_decision(state(opened("D", MONDAY)), "D:5wd", evening, POLICY, APOLOGY_TYPES)
    assert isinstance(decision, DeferMail)
    assert decision.until == dt.datetime(2026, 6, 15, 8, 0, tzinfo=PARIS)
    unknown = mail_decision(None, "D:5wd", HOLDING, POLICY, APOLOGY_TYPES)
    assert isinstance(unknown, CancelMail)
    no_mail = mail_decision(state(opened("D", MONDAY, email=None)), "D:5wd", HOLDING, POLICY, set())
    assert isinstance(no_mail, CancelMail)


def test_sla_holding_call_orders_a_task_and_traces_a_phone_contact() -> None:
    effects = holding_effects(
        action_id="D:5wd:holding_mail",
        state=state(opened("D", MONDAY, email=None)),
        deadline_id="D:5wd",
        due_at=HOLDING,
        medium="outbound_call",
        reason="sans adresse : appel",
        now=HOLDING,
    )
    (event,) = effects.events
    (task,) = effects.tasks
    (contact,) = effects.contacts
    assert (event.type, event.event_id) == ("holding_mail_sent", "D:5wd:holding_mail")
    assert (task.service, task.action, task.due_at) == (
        "customer_service",
        "outbound_call",
        HOLDING,
    )
    assert (contact.purpose, contact.medium) == ("holding_call", "phone")


def test_sla_breach_and_suspension_contracts_carry_deterministic_ids() -> None:
    folded = state(opened("D", MONDAY, kind="reclamation", customer_ref="300000007"))
    breach = breach_effects(
        DeclareBreach("D:5wd:breach", "D", "D:5wd", HOLDING, "dépassée"), folded, HOLDING
    )
    assert [t.task_id for t in breach.tasks] == ["D:5wd:breach"]
    assert breach.tasks[0].service == "supervisor"
    assert breach.tasks[0].kind == "reclamation"
    suspension = suspension_effects(
        SuspendDirectDebit("D:suspend_direct_debit", "D", "300000007", "4.13"), HOLDING
    )
    (action,) = suspension.account_actions
    assert (action.action_id, action.action) == ("D:suspend_direct_debit", "suspend_direct_debit")
    assert suspension.events[0].type == "direct_debit_suspended"

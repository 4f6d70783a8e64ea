"""Deadline state folded from dossier events (procedure 4.8, 4.12, 4.15)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.dossiers import (
    ContactAttached,
    DeadlineSet,
    DossierCancelled,
    DossierClosed,
    DossierEvent,
    DossierRequalified,
    HoldingMailSent,
    Kind,
    ReplySent,
    SlaBreached,
    ThirdPartyAwaited,
    ThirdPartyReceived,
)
from schemas.intake import Channel
from services.sla_watch.domain.calendar import DailyWindow
from services.sla_watch.domain.deadlines import DeadlineState, SlaPolicy, apply, fold
from services.sla_watch.testing import event_fields, opened, paris

POLICY = SlaPolicy()
MONDAY = "2026-06-08"


def requalified(at: dt.datetime, *, field_work: bool = True, kind: Kind = "demande") -> Any:
    return DossierRequalified(
        **event_fields("D1", at, "requalified"),
        dossier_type="FAC",
        kind=kind,
        urgency="normale",
        needs_field_work=field_work,
        reason="fuite au compteur",
    )


def awaited(at: dt.datetime) -> ThirdPartyAwaited:
    return ThirdPartyAwaited(**event_fields("D1", at, "awaited"), third_party="mairie")


def received(at: dt.datetime) -> ThirdPartyReceived:
    return ThirdPartyReceived(**event_fields("D1", at, "received"))


def replied(at: dt.datetime) -> ReplySent:
    return ReplySent(**event_fields("D1", at, "reply"), medium="email")


def run(*events: DossierEvent, policy: SlaPolicy = POLICY) -> DeadlineState:
    state = fold(events, policy)
    assert state is not None
    return state


@pytest.mark.parametrize(
    ("channel", "field_work", "basis", "due"),
    [
        pytest.param("email", False, "48h", paris("2026-06-10", 10), id="email-48h"),
        pytest.param("letter", False, "5wd", paris("2026-06-15", 10), id="letter-5wd"),
        pytest.param("phone", False, "5wd", paris("2026-06-15", 10), id="phone-like-letter"),
        pytest.param("email", True, "15wd", paris("2026-06-29", 10), id="email-field-work"),
        pytest.param("letter", True, "15wd", paris("2026-06-29", 10), id="letter-field-work"),
    ],
)
def test_sla_opening_sets_the_deadline_per_channel_and_need(
    channel: Channel, field_work: bool, basis: str, due: dt.datetime
) -> None:
    state = run(opened("D1", paris(MONDAY, 10), channel, field_work=field_work))
    assert (state.basis, state.due_at, state.status) == (basis, due, "running")
    assert state.deadline_id == f"D1:{basis}"
    assert state.deadline is not None
    assert state.deadline.due_at == due
    assert "4.12" in state.deadline.reason
    assert state.reasons[-1].endswith("10:00")


@pytest.mark.parametrize(
    ("contact", "due"),
    [
        pytest.param(paris("2026-03-28", 10), paris("2026-03-30", 11), id="spring-forward"),
        pytest.param(paris("2026-10-24", 10), paris("2026-10-26", 9), id="fall-back"),
    ],
)
def test_sla_email_48_clock_hours_are_real_hours_across_dst(
    contact: dt.datetime, due: dt.datetime
) -> None:
    state = run(opened("D1", contact, "email"))
    assert state.due_at == due
    assert state.due_at - contact == dt.timedelta(hours=48)


@pytest.mark.parametrize(
    ("window", "contact", "due"),
    [
        pytest.param(None, paris("2026-06-12", 10), paris("2026-06-16", 10), id="full-days"),
        pytest.param((8, 18), paris("2026-06-12", 9), paris("2026-06-18", 17), id="office-hours"),
        pytest.param(None, paris("2026-05-13", 10), paris("2026-05-18", 10), id="ascension"),
    ],
)
def test_sla_email_48_working_hours_mode(
    window: tuple[int, int] | None, contact: dt.datetime, due: dt.datetime
) -> None:
    settings: dict[str, Any] = {"email_counting": "working_hours"}
    if window is not None:
        settings["working_hours"] = {"start": dt.time(window[0]), "end": dt.time(window[1])}
    policy = SlaPolicy.model_validate(settings)
    state = run(opened("D1", contact, "email"), policy=policy)
    assert state.due_at == due
    assert "ouvrées" in state.basis_reason


def test_sla_region_calendar_applies_alsace_moselle_holidays() -> None:
    national = run(opened("D1", paris("2026-03-30", 10), region="75"))
    moselle = run(opened("D1", paris("2026-03-30", 10), region="57"))
    assert national.due_at == paris("2026-04-07", 10)  # Easter Monday only
    assert moselle.due_at == paris("2026-04-08", 10)  # Good Friday as well
    assert moselle.region == "57"


def test_sla_unknown_region_falls_back_to_the_default_region_with_a_reason() -> None:
    policy = SlaPolicy(default_region="67")
    state = run(opened("D1", paris(MONDAY, 10), region="99"), policy=policy)
    assert state.region == "67"
    assert any("99" in reason for reason in state.reasons)
    assert run(opened("D1", paris(MONDAY, 10)), policy=policy).region == "67"


def test_sla_requalified_to_field_work_counts_15_days_from_the_original_contact() -> None:
    state = run(opened("D1", paris(MONDAY, 10), "email"), requalified(paris("2026-06-11", 15)))
    assert (state.basis, state.due_at) == ("15wd", paris("2026-06-29", 10))
    assert state.deadline_id == "D1:15wd"
    assert "contact initial" in state.reasons[-1]


def test_sla_requalified_away_from_field_work_keeps_15_days() -> None:
    state = run(
        opened("D1", paris(MONDAY, 10), field_work=True),
        requalified(paris("2026-06-09", 10), field_work=False, kind="reclamation"),
    )
    assert (state.basis, state.due_at, state.kind) == (
        "15wd",
        paris("2026-06-29", 10),
        "reclamation",
    )
    assert "conservée" in state.reasons[-1]


def test_sla_requalified_after_the_reply_keeps_the_deadline_met() -> None:
    state = run(
        opened("D1", paris(MONDAY, 10)),
        replied(paris("2026-06-09", 10)),
        requalified(paris("2026-06-10")),
    )
    assert (state.status, state.basis) == ("met", "5wd")
    assert state.deadline is None


def test_sla_third_party_pauses_the_clock_and_resumes_with_the_time_left() -> None:
    state = run(opened("D1", paris(MONDAY, 10)), awaited(paris("2026-06-10", 10)))
    assert (state.status, state.due_at, state.deadline) == ("paused", None, None)
    assert state.left == dt.timedelta(days=3)  # Wednesday 10:00 → Monday 10:00
    state = run(
        opened("D1", paris(MONDAY, 10)),
        awaited(paris("2026-06-10", 10)),
        received(paris("2026-06-22", 15)),
    )
    assert (state.status, state.due_at, state.left) == ("running", paris("2026-06-25", 15), None)
    assert state.deadline is not None
    assert state.deadline.started_at == paris("2026-06-22", 15)


def test_sla_third_party_pause_on_a_48_clock_hour_deadline() -> None:
    state = run(
        opened("D1", paris(MONDAY, 10), "email"),
        awaited(paris("2026-06-09", 10)),
        received(paris("2026-06-12", 14)),
    )
    assert state.due_at == paris("2026-06-13", 14)


def test_sla_two_pauses_add_up() -> None:
    state = run(
        opened("D1", paris(MONDAY, 10)),
        awaited(paris("2026-06-09", 10)),
        received(paris("2026-06-11", 10)),
        awaited(paris("2026-06-12", 10)),
        received(paris("2026-06-16", 10)),
    )
    assert state.due_at == paris("2026-06-19", 10)  # four working days of pauses
    assert len(state.pauses) == 2


def test_sla_requalification_while_paused_recomputes_the_time_left() -> None:
    events: list[DossierEvent] = [
        opened("D1", paris(MONDAY, 10)),
        awaited(paris("2026-06-10", 10)),
        requalified(paris("2026-06-15", 10)),
    ]
    paused = run(*events)
    assert (paused.status, paused.basis, paused.left) == ("paused", "15wd", dt.timedelta(days=13))
    resumed = run(*events, received(paris("2026-06-22", 10)))
    assert resumed.due_at == paris("2026-07-09", 10)


def test_sla_pause_after_the_due_instant_keeps_no_time_left() -> None:
    state = run(
        opened("D1", paris(MONDAY, 10)),
        awaited(paris("2026-06-16", 10)),
        received(paris("2026-06-20", 9)),
    )
    assert state.due_at == paris("2026-06-22")  # Saturday resume: next working instant


def test_sla_resume_stamped_before_its_pause_restarts_at_the_pause() -> None:
    state = run(
        opened("D1", paris(MONDAY, 10)),
        awaited(paris("2026-06-10", 10)),
        received(paris("2026-06-10", 9)),
    )
    assert state.due_at == paris("2026-06-15", 10)


def test_sla_multi_contact_keeps_the_original_deadline() -> None:
    attached = ContactAttached(
        **event_fields("D1", paris("2026-06-12", 9), "attached"),
        item_id="item-2",
        channel="email",
        contact_date=paris("2026-06-12", 9),
    )
    state = run(opened("D1", paris(MONDAY, 10)), attached)
    assert (state.basis, state.due_at) == ("5wd", paris("2026-06-15", 10))
    assert "4.8" in state.reasons[-1]


@pytest.mark.parametrize(
    ("reply_at", "verdict"),
    [
        pytest.param(paris("2026-06-12", 10), "dans le délai", id="on-time"),
        pytest.param(paris("2026-06-16", 10), "après l'échéance", id="late"),
    ],
)
def test_sla_reply_meets_the_deadline(reply_at: dt.datetime, verdict: str) -> None:
    state = run(opened("D1", paris(MONDAY, 10)), replied(reply_at))
    assert (state.status, state.replied_at, state.deadline) == ("met", reply_at, None)
    assert verdict in state.reasons[-1]


def test_sla_reply_while_paused_meets_the_deadline() -> None:
    state = run(
        opened("D1", paris(MONDAY, 10)), awaited(paris("2026-06-09")), replied(paris("2026-06-10"))
    )
    assert (state.status, state.left) == ("met", None)


@pytest.mark.parametrize(
    ("end", "status"),
    [
        pytest.param(
            DossierClosed(**event_fields("D1", paris("2026-06-09"), "closed")),
            "closed",
            id="closed",
        ),
        pytest.param(
            DossierCancelled(
                **event_fields("D1", paris("2026-06-09"), "cancelled"), reason="client"
            ),
            "cancelled",
            id="cancelled",
        ),
    ],
)
def test_sla_closure_or_cancellation_ends_the_deadline(end: DossierEvent, status: str) -> None:
    state = run(opened("D1", paris(MONDAY, 10)), end)
    assert (state.status, state.deadline, state.is_open) == (status, None, False)
    later = run(
        opened("D1", paris(MONDAY, 10)),
        end,
        awaited(paris("2026-06-10")),
        received(paris("2026-06-11")),
        replied(paris("2026-06-12")),
        requalified(paris("2026-06-12")),
    )
    assert replace(later, applied=state.applied) == state


def test_sla_own_events_are_recorded_even_after_closure() -> None:
    state = run(
        opened("D1", paris(MONDAY, 10)),
        DeadlineSet(
            **event_fields("D1", paris(MONDAY, 10), "set"),
            deadline_id="D1:5wd",
            basis="5wd",
            due_at=paris("2026-06-15", 10),
        ),
        DossierClosed(**event_fields("D1", paris("2026-06-12"), "closed")),
        HoldingMailSent(
            **event_fields("D1", paris("2026-06-12"), "mail"), deadline_id="D1:5wd", medium="email"
        ),
        SlaBreached(
            **event_fields("D1", paris("2026-06-15", 11), "breach"),
            deadline_id="D1:5wd",
            due_at=paris("2026-06-15", 10),
        ),
    )
    assert state.announced == ("D1:5wd", paris("2026-06-15", 10))
    assert state.holding_mail_sent == frozenset({"D1:5wd"})
    assert state.breached == frozenset({"D1:5wd"})


def test_sla_events_before_the_opening_are_ignored() -> None:
    assert apply(None, awaited(paris(MONDAY)), POLICY) is None
    assert fold([replied(paris(MONDAY))], POLICY) is None


def test_sla_repeated_events_change_nothing() -> None:
    first = run(opened("D1", paris(MONDAY, 10)), awaited(paris("2026-06-09", 10)))
    again = run(
        opened("D1", paris(MONDAY, 10)),
        opened("D1", paris("2026-06-09", 10), "email"),
        awaited(paris("2026-06-09", 10)),
        awaited(paris("2026-06-09", 11)),
    )
    assert replace(again, applied=first.applied) == first
    opening = opened("D1", paris(MONDAY, 10))
    resumed = run(opening, received(paris("2026-06-09")))  # no wait yet: kept for one
    assert (resumed.status, resumed.due_at) == ("running", run(opening).due_at)
    assert resumed.early_answer == paris("2026-06-09")


def test_sla_redelivered_events_are_applied_once() -> None:
    attached = ContactAttached(
        **event_fields("D1", paris("2026-06-09", 9), "attached"),
        item_id="item-2",
        channel="phone",
        contact_date=paris("2026-06-09", 9),
    )
    once = run(opened("D1", paris(MONDAY, 10)), attached, awaited(paris("2026-06-10", 10)))
    twice = run(
        opened("D1", paris(MONDAY, 10)),
        attached,
        awaited(paris("2026-06-10", 10)),
        attached,
        received(paris("2026-06-11", 10)),
    )
    assert once.reasons == twice.reasons[:-1]
    assert sum("4.8" in reason for reason in twice.reasons) == 1


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param({"default_region": "99"}, "unknown French department code", id="region"),
        pytest.param({"email_response": dt.timedelta(0)}, "email_response", id="zero-48h"),
        pytest.param({"email_holding_lead": dt.timedelta(hours=48)}, "shorter", id="lead-48h"),
        pytest.param({"holding_lead_working_days": 5}, "shorter than the shortest", id="lead-5"),
        pytest.param({"letter_working_days": 0}, "greater than or equal to 1", id="zero-days"),
        pytest.param({"earlier_slot_margin": dt.timedelta(hours=11)}, "margin", id="margin"),
        pytest.param({"working_day_end": dt.time(19, tzinfo=dt.UTC)}, "time zone", id="aware"),
        pytest.param({"sending_window": {"start": "19:00", "end": "08:00"}}, "not after", id="wnd"),
        pytest.param({"unknown": 1}, "Extra inputs", id="extra"),
    ],
)
def test_sla_policy_validation_names_the_bad_entry(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SlaPolicy.model_validate(settings)


def test_sla_policy_parses_settings_values_and_is_frozen() -> None:
    policy = SlaPolicy.model_validate(
        {
            "email_response": "PT24H",
            "sending_window": {"start": "09:00", "end": "18:00"},
            "default_region": "68",
            "working_day_end": "18:00",
        }
    )
    assert policy.email_response == dt.timedelta(hours=24)
    assert policy.sending_window.length == dt.timedelta(hours=9)
    assert policy.working_day_end == dt.time(18)
    with pytest.raises(ValidationError, match="frozen"):
        policy.letter_working_days = 7  # type: ignore[misc]
    assert DailyWindow(start=dt.time(8), end=dt.time(19)) == POLICY.sending_window


def test_sla_events_delivered_before_the_opening_count_once_it_arrives() -> None:
    """Kafka may deliver a closure before the opening (two router instances, a late
    publication): folded after the opening, it still ends the deadline."""
    closure = DossierClosed(**event_fields("D1", paris("2026-06-09", 10), "closed"))
    state = fold([closure, opened("D1", paris(MONDAY, 10))], POLICY)
    assert state is not None
    assert (state.status, state.deadline) == ("closed", None)


def test_sla_an_answer_delivered_before_its_wait_ends_that_wait() -> None:
    state = run(
        opened("D1", paris(MONDAY, 10)),
        received(paris("2026-06-11", 10)),
        awaited(paris("2026-06-10", 10)),
    )
    assert (state.status, state.due_at) == ("running", paris("2026-06-16", 10))  # one day paused
    stray = run(
        opened("D1", paris(MONDAY, 10)),
        received(paris("2026-06-09", 10)),
        awaited(paris("2026-06-10", 10)),  # a later wait: not the one that answer ended
    )
    assert (stray.status, stray.due_at) == ("paused", None)


def test_sla_an_early_answer_pairs_with_its_wait_across_a_small_clock_gap() -> None:
    """The answer and the wait are stamped by different router instances: an answer a
    little "before" its wait by their clocks still ends it."""
    state = run(
        opened("D1", paris(MONDAY, 10)),
        received(paris("2026-06-10", 9, 58)),
        awaited(paris("2026-06-10", 10)),
    )
    assert (state.status, state.due_at) == ("running", paris("2026-06-15", 10))

"""Call assembly: folding a call's events, completion rules, the IntakeItem, persistence."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import services.intake_phone
from services.intake_phone.domain import (
    CallEvent,
    CallState,
    CallStateCorrupted,
    apply,
    completion,
    due_at,
    facts,
    fold,
    mark_emitted,
    normalise,
    to_intake_item,
)
from services.intake_phone.domain.assembly import MAX_EVENTS, derive_facts

SAMPLES = Path(services.intake_phone.__file__).parent / "samples"
RECEIVED = dt.datetime(2025, 1, 14, 13, 30, 20, tzinfo=dt.UTC)
GRACE = dt.timedelta(minutes=2)
T0 = dt.datetime(2025, 1, 14, 9, 0, tzinfo=dt.UTC)


def _events(*names: str) -> list[CallEvent]:
    found: list[CallEvent] = []
    for name in names:
        platform = name.split("_", 1)[0]
        found += normalise(platform, (SAMPLES / name).read_bytes(), received_at=RECEIVED).events
    return found


def _event(kind: str, minutes: float, key: str | None = None, **fields: object) -> CallEvent:
    values: dict[str, object] = {
        "platform": "generic",
        "call_id": "c1",
        "kind": kind,
        "at": T0 + dt.timedelta(minutes=minutes),
        "dedupe_key": key or f"{kind}-{minutes}",
    }
    values.update(fields)
    return CallEvent.model_validate(values)


RINGOVER = (
    "ringover_ringing.json",
    "ringover_ivr_response_code.json",
    "ringover_answered.json",
    "ringover_hangup.json",
    "ringover_comments_updated.json",
)


def test_phone_ringover_call_becomes_one_item() -> None:
    state = fold(_events(*RINGOVER))
    assert len(state.events) == 5  # the three "started" copies folded into one
    item = to_intake_item(state)
    assert item is not None
    assert item.item_id == "phone:ringover:8461026573912345678"
    assert (item.channel, item.source_ref) == ("phone", "ringover call 8461026573912345678")
    assert item.received_at == dt.datetime(2025, 1, 14, 8, 12, 3, 412518, tzinfo=dt.UTC)
    assert item.sender.mobile == "+33612345678"
    assert item.text.startswith("Conteste la facture du 02/01/2025")
    assert item.call is not None
    assert item.call.model_dump() == {
        "caller": "+33612345678",
        "called": "+33972108080",
        "ivr_path": ("2",),
        "agent": "4812093",
        "answered": True,
        "duration_s": 279,
        "wrap_up_code": "FACTURE_CONTESTATION",
        "wrap_up_note": item.text,
        "voicemail": False,
        "closed_by_timeout": False,
    }
    assert item.partition_key() == "+33612345678"


def test_phone_generic_call_item() -> None:
    item = to_intake_item(fold(_events("generic_call.json")))
    assert item is not None
    assert item.call is not None
    assert item.item_id == "phone:generic:3f6c2a9e-1b7d-4c05-8e2f-9a4d6b1c7e30"
    assert item.received_at == dt.datetime(2025, 1, 14, 10, 2, 10, tzinfo=dt.UTC)
    assert (item.call.ivr_path, item.call.agent, item.call.duration_s) == (
        ("1", "3"),
        "agent-0427",
        402,
    )
    assert item.call.wrap_up_code == "FUITE_COMPTEUR"
    assert item.sender.mobile == "+33755123456"


def test_phone_twilio_call_item() -> None:
    names = (
        "twilio_ringing.txt",
        "twilio_gather_digits.txt",
        "twilio_agent_leg_in_progress.txt",
        "twilio_completed.txt",
    )
    item = to_intake_item(fold(_events(*names)))
    assert item is not None
    assert item.call is not None
    assert item.item_id == "phone:twilio:CA7d3e9b1f2a4c6e8d0b5f7a9c1e3d5b7f"
    assert (item.call.answered, item.call.agent, item.call.ivr_path) == (True, "agent-0427", ("2",))
    assert (item.call.caller, item.call.duration_s, item.text) == ("+33612345678", 318, "")


def test_phone_ami_call_item() -> None:
    item = to_intake_item(fold(_events("asterisk_answered_call.txt")))
    assert item is not None
    assert item.call is not None
    assert item.item_id == "phone:asterisk:1736870400.84"
    assert (item.call.agent, item.call.duration_s, item.call.wrap_up_code) == (
        "agent-1001",
        247,
        "COUPURE_EAU",
    )
    assert item.text.startswith("Plus d'eau depuis ce matin")


def test_phone_voicemail_item_has_its_subject_and_hidden_caller() -> None:
    item = to_intake_item(fold(_events("ringover_voicemail.json")))
    assert item is not None
    assert item.call is not None
    assert (item.subject, item.call.caller, item.sender.mobile) == ("Message vocal", None, None)
    assert (item.call.answered, item.call.duration_s) == (False, 39)


def test_phone_duration_falls_back_to_end_minus_start() -> None:
    state = fold([_event("started", 0), _event("answered", 1), _event("ended", 5.5)])
    found = facts(state)
    assert found is not None
    assert found.duration_s == 330


def test_phone_empty_state_has_no_item_no_facts_no_completion() -> None:
    state = CallState.empty("generic", "c1")
    assert (to_intake_item(state), facts(state), due_at(state, GRACE)) == (None, None, None)
    assert completion(state, T0, GRACE) is None


@pytest.mark.parametrize(
    ("timeline", "now_minutes", "reason", "at_minutes"),
    [
        pytest.param(
            (("started", 0), ("ended", 1), ("wrap_up", 3)),
            0,
            "ended_and_wrapped_up",
            3,
            id="wrapped",
        ),
        pytest.param(
            (("started", 0), ("wrap_up", 1), ("ended", 3)),
            0,
            "ended_and_wrapped_up",
            3,
            id="wrap-1st",
        ),
        pytest.param((("started", 0), ("ended", 1)), 2.5, None, None, id="in-grace"),
        pytest.param((("started", 0), ("ended", 1)), 3, "ended_grace_elapsed", 3, id="grace-over"),
        pytest.param((("ended", 1),), 10, "ended_grace_elapsed", 3, id="end-without-start"),
        pytest.param((("started", 0), ("answered", 0.5)), 239, None, None, id="still-open"),
        pytest.param((("started", 0), ("answered", 0.5)), 240, "no_end_timeout", 240, id="timeout"),
        pytest.param((("wrap_up", 0),), 240, "no_end_timeout", 240, id="wrap-without-end"),
    ],
)
def test_phone_completion_rules(
    timeline: tuple[tuple[str, float], ...],
    now_minutes: float,
    reason: str | None,
    at_minutes: float | None,
) -> None:
    state = fold(
        _event(kind, minute, wrap_up_code="X" if kind == "wrap_up" else None)
        for kind, minute in timeline
    )
    found = completion(state, T0 + dt.timedelta(minutes=now_minutes), GRACE)
    if reason is None:
        assert found is None
        return
    assert found is not None
    assert (found.reason, found.at) == (reason, T0 + dt.timedelta(minutes=at_minutes or 0))
    assert found.closed_by_timeout is (reason == "no_end_timeout")
    assert due_at(state, GRACE) == found.at


def test_phone_emitted_call_is_never_complete_again() -> None:
    state = fold([_event("started", 0), _event("ended", 1), _event("wrap_up", 2, wrap_up_code="X")])
    emitted = mark_emitted(state, T0 + dt.timedelta(minutes=3))
    assert completion(emitted, T0 + dt.timedelta(days=1), GRACE) is None
    assert due_at(emitted, GRACE) is None
    late = apply(emitted, _event("wrap_up", 9, wrap_up_note="rappel"))
    assert completion(late, T0 + dt.timedelta(days=1), GRACE) is None
    assert mark_emitted(emitted, T0 + dt.timedelta(days=2)) == emitted


def test_phone_completion_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        completion(fold([_event("started", 0)]), dt.datetime(2025, 1, 14, 9, 0), GRACE)


def test_phone_state_round_trips_through_json() -> None:
    state = mark_emitted(fold(_events(*RINGOVER)), RECEIVED)
    text = state.to_json()
    assert CallState.from_json(text) == state
    assert CallState.from_json(text.encode()) == state
    assert "8461026573912345678" in text


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param("{", id="broken"),
        pytest.param('{"platform": "fax"}', id="invalid"),
        pytest.param(
            fold([_event("started", 0)]).to_json().replace('"c1","events"', '"c2","events"'),
            id="event-of-another-call",
        ),
        pytest.param(
            fold([_event("started", 0), _event("ended", 1)]).to_json().replace("09:01", "08:59"),
            id="out-of-order",
        ),
        pytest.param(
            fold([_event("started", 0), _event("ended", 1)])
            .to_json()
            .replace("ended-1", "started-0"),
            id="duplicate-key",
        ),
    ],
)
def test_phone_corrupted_state_is_a_named_error(stored: str) -> None:
    with pytest.raises(CallStateCorrupted):
        CallState.from_json(stored)


def test_phone_apply_refuses_an_event_of_another_call() -> None:
    with pytest.raises(ValueError, match="another call"):
        apply(CallState.empty("generic", "other"), _event("started", 0))
    with pytest.raises(ValueError, match="nothing"):
        fold([])


def test_phone_conflicting_copies_of_one_key_resolve_the_same_either_way() -> None:
    first = _event("wrap_up", 5, key="k", wrap_up_code="A")
    second = _event("wrap_up", 5, key="k", wrap_up_code="B")
    assert fold([first, second]) == fold([second, first])
    assert len(fold([first, second]).events) == 1


def test_phone_noise_beyond_the_cap_never_pushes_out_what_makes_the_call() -> None:
    """A queue ringing many agents: hundreds of "other" events, then the answer, the end
    and the wrap-up. They used to be dropped past the cap: the call was never routed."""
    noise = [_event("other", minute / 10) for minute in range(MAX_EVENTS + 50)]
    making = [
        _event("started", 0),
        _event("answered", 60, agent="A12", answered=True),
        _event("ended", 61),
        _event("wrap_up", 62, wrap_up_code="FACTURE"),
    ]
    state = fold([*noise, *making])
    assert len(state.events) == MAX_EVENTS
    assert {e.kind for e in state.events} >= {"started", "answered", "ended", "wrap_up"}
    derived = derive_facts(state)
    assert derived is not None
    assert derived.answered
    assert derived.wrap_up_code == "FACTURE"
    assert fold(reversed([*noise, *making])) == state


def test_phone_later_events_beyond_the_cap_are_dropped() -> None:
    events = [_event("other", float(minute)) for minute in range(MAX_EVENTS + 10)]
    state = fold(events)
    assert len(state.events) == MAX_EVENTS
    assert state.events[-1].at == T0 + dt.timedelta(minutes=MAX_EVENTS - 1)
    assert fold(reversed(events)) == state


def test_phone_caller_facts_prefer_started_events_and_hidden_wins() -> None:
    state = fold(
        [
            _event("answered", 1, caller="+33755123456"),
            _event("started", 2, caller="+33612345678", called="+33972108080"),
            _event("ended", 3, caller_hidden=True),
        ]
    )
    found = facts(state)
    assert found is not None
    assert (found.caller, found.caller_hidden, found.called) == (None, True, "+33972108080")
    assert found.started_at == T0 + dt.timedelta(minutes=2)


def test_phone_facts_follow_each_new_state_never_a_stale_one() -> None:
    # facts() remembers states by identity; states are dropped and ids reused here.
    state = fold([_event("started", 0, caller="+33612345678")])
    for minute in range(1, 400):
        state = apply(state, _event("ivr", minute, ivr_choice=str(minute % 9)))
        assert facts(state) == derive_facts(state)
        assert facts(state) == derive_facts(state)  # a second ask: the remembered answer
        throwaway = fold([_event("ended", minute, duration_s=minute)])
        assert facts(throwaway) == derive_facts(throwaway)
    found = facts(state)
    assert found is not None
    assert len(found.ivr_path) == 399

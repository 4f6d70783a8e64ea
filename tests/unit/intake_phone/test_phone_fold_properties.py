"""Property: any order of a call's events, with any duplicates, folds into one identical call."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import services.intake_phone
from services.intake_phone.domain import (
    CallEvent,
    CallState,
    completion,
    fold,
    normalise,
    perimeter,
    to_intake_item,
)

SAMPLES = Path(services.intake_phone.__file__).parent / "samples"
RECEIVED = dt.datetime(2025, 1, 14, 13, 30, 20, tzinfo=dt.UTC)
GRACE = dt.timedelta(minutes=2)
T0 = dt.datetime(2025, 1, 14, 9, 0, tzinfo=dt.UTC)
PROPERTY = settings(max_examples=150, deadline=None, database=None)

CALLS = {
    "generic": ("generic_call.json",),
    "ringover": (
        "ringover_ringing.json",
        "ringover_ivr_response_code.json",
        "ringover_answered.json",
        "ringover_hangup.json",
        "ringover_comments_updated.json",
    ),
    "twilio": (
        "twilio_ringing.txt",
        "twilio_gather_digits.txt",
        "twilio_agent_leg_in_progress.txt",
        "twilio_completed.txt",
    ),
    "asterisk": ("asterisk_answered_call.txt",),
}


def _sample_events(platform: str) -> list[CallEvent]:
    events: list[CallEvent] = []
    for name in CALLS[platform]:
        events += normalise(platform, (SAMPLES / name).read_bytes(), received_at=RECEIVED).events
    return events


def _same_call(left: CallState, right: CallState, now: dt.datetime) -> None:
    assert left == right
    assert left.to_json() == right.to_json()
    assert completion(left, now, GRACE) == completion(right, now, GRACE)
    assert to_intake_item(left) == to_intake_item(right)
    assert perimeter(left, (), ()) == perimeter(right, (), ())


@pytest.mark.parametrize("platform", sorted(CALLS))
@PROPERTY
@given(data=st.data())
def test_phone_sample_call_folds_identically_in_any_order(
    platform: str, data: st.DataObject
) -> None:
    events = _sample_events(platform)
    reference = fold(events)
    duplicates = data.draw(st.lists(st.sampled_from(events), max_size=12), label="duplicates")
    arrival = data.draw(st.permutations(events + duplicates), label="arrival")
    state = fold(arrival)
    _same_call(state, reference, RECEIVED + dt.timedelta(days=1))
    item = to_intake_item(state)
    assert item is not None
    assert item.call is not None
    assert item.call.answered


_KEYS = [f"k{index}" for index in range(10)]
_events = st.builds(
    lambda kind, seconds, key, fields: CallEvent.model_validate(
        {
            "platform": "generic",
            "call_id": "c1",
            "kind": kind,
            "at": T0 + dt.timedelta(seconds=seconds),
            "dedupe_key": key,
            **fields,
        }
    ),
    kind=st.sampled_from(["started", "ivr", "answered", "ended", "wrap_up", "other"]),
    seconds=st.integers(0, 6 * 3600),
    key=st.sampled_from(_KEYS),
    fields=st.fixed_dictionaries(
        {},
        optional={
            "direction": st.sampled_from(["inbound", "outbound"]),
            "caller": st.sampled_from(["+33612345678", "+33755123456", "1001"]),
            "caller_hidden": st.booleans(),
            "called": st.sampled_from(["+33972108080", "+33972108181"]),
            "internal": st.booleans(),
            "ivr_choice": st.sampled_from(["1", "2", "3"]),
            "agent": st.sampled_from(["a1", "a2"]),
            "answered": st.booleans(),
            "voicemail": st.booleans(),
            "duration_s": st.integers(0, 5000),
            "wrap_up_code": st.sampled_from(["FACTURE", "FUITE", "FAUX_NUMERO"]),
            "wrap_up_note": st.text(max_size=20),
        },
    ),
)


@PROPERTY
@given(
    events=st.lists(_events, min_size=1, max_size=15),
    data=st.data(),
    now_seconds=st.integers(0, 12 * 3600),
)
def test_phone_any_events_fold_identically_in_any_order(
    events: list[CallEvent], data: st.DataObject, now_seconds: int
) -> None:
    duplicates = data.draw(st.lists(st.sampled_from(events), max_size=10), label="duplicates")
    arrival = data.draw(st.permutations(events + duplicates), label="arrival")
    reference = fold(events)
    state = fold(arrival)
    _same_call(state, reference, T0 + dt.timedelta(seconds=now_seconds))
    assert CallState.from_json(state.to_json()) == state
    assert len({event.dedupe_key for event in state.events}) == len(state.events)


@PROPERTY
@given(events=st.lists(_events, min_size=1, max_size=15))
def test_phone_folding_a_state_again_changes_nothing(events: list[CallEvent]) -> None:
    state = fold(events)
    assert fold(events, state) == state
    assert fold(reversed(state.events)) == state

"""Which assembled calls are routed, and why the others are only counted."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import services.intake_phone
from services.intake_phone.domain import (
    CallEvent,
    CallState,
    PerimeterDecision,
    fold,
    normalise,
    perimeter,
)

SAMPLES = Path(services.intake_phone.__file__).parent / "samples"
OWN = ("09 72 10 80 80", "+33972108181")
INTERNAL = ("+3319900", "10")
T0 = dt.datetime(2025, 1, 14, 9, 0, tzinfo=dt.UTC)


def _call(*events: dict[str, object]) -> CallState:
    built = []
    for index, fields in enumerate(events):
        values: dict[str, object] = {
            "platform": "generic",
            "call_id": "c1",
            "at": T0 + dt.timedelta(minutes=index),
            "dedupe_key": f"k{index}",
            "direction": "inbound",
            "caller": "+33612345678",
            "called": "+33972108080",
        }
        values.update(fields)
        built.append(CallEvent.model_validate(values))
    return fold(built)


STARTED: dict[str, object] = {"kind": "started"}
ANSWERED: dict[str, object] = {"kind": "answered", "agent": "a1", "answered": True}
ENDED: dict[str, object] = {"kind": "ended"}


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        pytest.param(_call(STARTED, ANSWERED, ENDED), (True, "answered"), id="answered"),
        pytest.param(
            _call({**STARTED, "direction": "outbound"}, ANSWERED, ENDED),
            (False, "outbound_call"),
            id="outbound",
        ),
        pytest.param(
            _call({**STARTED, "internal": True}, ANSWERED, ENDED),
            (False, "internal_call"),
            id="platform-internal",
        ),
        pytest.param(
            _call({**STARTED, "caller": "+33199001234"}, ANSWERED, ENDED),
            (False, "internal_call"),
            id="internal-prefix",
        ),
        pytest.param(
            _call({**STARTED, "caller": "1001"}, ANSWERED, ENDED),
            (False, "internal_call"),
            id="extension",
        ),
        pytest.param(
            _call({**STARTED, "caller": "+33972108181"}, ANSWERED, ENDED),
            (False, "internal_call"),
            id="from-own-line",
        ),
        pytest.param(
            _call({**STARTED, "called": "+33972109999"}, ANSWERED, ENDED),
            (False, "not_service_number"),
            id="other-line",
        ),
        pytest.param(
            _call(STARTED, ANSWERED, ENDED, {"kind": "wrap_up", "wrap_up_code": "faux_numero"}),
            (False, "wrong_number"),
            id="wrong-number-code",
        ),
        pytest.param(
            _call(STARTED, ANSWERED, {"kind": "wrap_up", "wrap_up_code": "FACTURE,HORS_PERIMETRE"}),
            (False, "wrong_number"),
            id="out-of-perimeter-tag",
        ),
        pytest.param(
            _call(
                STARTED,
                {"kind": "ended", "answered": False},
                {"kind": "wrap_up", "wrap_up_note": "x"},
            ),
            (True, "wrapped_up"),
            id="qualified-missed-call",
        ),
        pytest.param(
            _call(STARTED, {"kind": "ended", "voicemail": True, "answered": False}),
            (True, "voicemail"),
            id="voicemail",
        ),
        pytest.param(
            _call(STARTED, {"kind": "ivr", "ivr_choice": "2"}, ENDED),
            (False, "abandoned_in_ivr"),
            id="abandoned-in-ivr",
        ),
        pytest.param(
            _call(STARTED, {"kind": "ended", "answered": False}),
            (False, "unanswered"),
            id="missed",
        ),
        pytest.param(_call(STARTED), (False, "unanswered"), id="timeout-never-answered"),
        pytest.param(
            _call({**STARTED, "caller": None, "caller_hidden": True}, ANSWERED, ENDED),
            (True, "answered"),
            id="hidden-caller-answered",
        ),
        pytest.param(CallState.empty("generic", "c1"), (False, "unanswered"), id="empty"),
    ],
)
def test_phone_perimeter_rules(state: CallState, expected: tuple[bool, str]) -> None:
    assert perimeter(state, OWN, INTERNAL) == PerimeterDecision(*expected)


def test_phone_perimeter_without_own_numbers_skips_the_line_check() -> None:
    state = _call({**STARTED, "called": "+33972109999"}, ANSWERED, ENDED)
    assert perimeter(state, (), ()) == (True, "answered")


def test_phone_out_of_perimeter_codes_are_data() -> None:
    state = _call(STARTED, ANSWERED, {"kind": "wrap_up", "wrap_up_code": "GAZ"})
    assert perimeter(state, OWN, INTERNAL).in_perimeter
    assert perimeter(state, OWN, INTERNAL, out_of_perimeter_codes={"gaz"}) == (
        False,
        "wrong_number",
    )


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        pytest.param(("ringover_missed.json",), "unanswered", id="ringover-missed"),
        pytest.param(("ringover_voicemail.json",), "voicemail", id="ringover-voicemail"),
        pytest.param(("asterisk_abandoned_in_ivr.txt",), "abandoned_in_ivr", id="ami-abandoned"),
        pytest.param(("asterisk_answered_call.txt",), "answered", id="ami-answered"),
        pytest.param(("twilio_anonymous_no_answer.txt",), "unanswered", id="twilio-no-answer"),
    ],
)
def test_phone_perimeter_on_samples(names: tuple[str, ...], expected: str) -> None:
    events: list[CallEvent] = []
    for name in names:
        platform = name.split("_", 1)[0]
        events += normalise(platform, (SAMPLES / name).read_bytes()).events
    assert perimeter(fold(events), ("+33972108080",), ()).reason == expected

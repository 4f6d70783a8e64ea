"""Property: whatever arrives, an adapter returns events or raises ``PayloadRejected`` only.

And whatever an adapter accepts folds into a valid ``IntakeItem``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.intake_phone.domain import (
    PLATFORMS,
    CallEvent,
    Normalised,
    PayloadRejected,
    fold,
    normalise,
    perimeter,
    to_intake_item,
)
from services.intake_phone.domain.twilio import parse_twilio

RECEIVED = dt.datetime(2025, 1, 14, 13, 30, 20, tzinfo=dt.UTC)
FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
REASON_CODE = re.compile(r"^[a-z][a-z0-9_]*$")  # DeadLetter.reason_code


def _only_rejected_or_valid(call: Callable[[], Normalised]) -> None:
    rejected: PayloadRejected | None = None
    try:
        result = call()
    except PayloadRejected as exc:
        rejected = exc
    if rejected is not None:
        assert REASON_CODE.match(rejected.reason_code)
        assert rejected.reason
        return
    assert isinstance(result, Normalised)
    calls: dict[tuple[str, str], list[CallEvent]] = {}
    for event in result.events:
        calls.setdefault((event.platform, event.call_id), []).append(event)
    for event_group in calls.values():
        state = fold(event_group)
        item = to_intake_item(state)
        assert item is not None
        assert item.channel == "phone"
        perimeter(state, ("+33972108080",), ("10",))


_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**53, max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.decimals(allow_nan=False, allow_infinity=False, places=6)
    | st.text(max_size=40)
)
_json = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=25,
)


def _dumps(value: object) -> str:
    return json.dumps(value, default=lambda d: float(d) if isinstance(d, Decimal) else str(d))


_times = st.sampled_from(
    [
        "2025-01-14T10:00:00+01:00",
        "2025-01-14T10:00:00",
        "2025-13-01T00:00:00Z",
        "1999-01-01T00:00Z",
    ]
) | st.text(max_size=30)
_numbers = st.sampled_from(
    ["0612345678", "33612345678", "+266696687", "anonymous", "1001", "sip:1@x", "<unknown>"]
) | st.text(max_size=30)
_generic_events = st.fixed_dictionaries(
    {
        "event_id": st.text(min_size=1, max_size=10) | _json_scalars,
        "call_id": st.sampled_from(["c-1", 2**63 + 5, 1.5, "", "a b"]) | _json_scalars,
        "type": st.sampled_from(
            ["call.started", "call.ivr", "call.answered", "call.ended", "call.wrap_up", "x"]
        ),
        "at": _times,
    },
    optional={
        "version": st.sampled_from([1, 2, "1", True]),
        "direction": st.sampled_from(["inbound", "outbound", "in", "up"]) | _json_scalars,
        "caller": _numbers | _json_scalars,
        "caller_hidden": st.booleans() | _json_scalars,
        "called": _numbers,
        "internal": st.booleans() | _json_scalars,
        "ivr_choice": st.text(max_size=5) | _json_scalars,
        "agent": st.text(max_size=10) | _json_scalars,
        "answered": st.booleans() | _json_scalars,
        "voicemail": st.booleans() | _json_scalars,
        "duration_s": st.integers(-5, 10**9) | _json_scalars,
        "wrap_up": st.fixed_dictionaries(
            {}, optional={"code": st.text(max_size=10) | _json, "note": st.text() | _json}
        )
        | _json,
    },
)
_ringover_bodies = st.fixed_dictionaries(
    {
        "resource": st.sampled_from(["call", "aftercall", "sms"]) | _json_scalars,
        "event": st.sampled_from(
            [
                *("ringing", "answered", "hangup", "missed", "voicemail", "ivr_response_code"),
                *("comments_updated", "tags_updated", "record_available"),
            ]
        ),
        "data": st.fixed_dictionaries(
            {"call_id": st.integers(0, 2**66) | _json_scalars},
            optional={
                "start_time": st.decimals(0, 5 * 10**9, places=6) | _json_scalars,
                "hangup_time": st.decimals(0, 5 * 10**9, places=6) | _json_scalars,
                "duration_in_seconds": st.integers(-5, 10**9) | _json_scalars,
                "direction": st.sampled_from(["inbound", "outbound"]) | _json_scalars,
                "from_number": _numbers | _json_scalars,
                "to_number": _numbers,
                "is_internal": st.booleans() | _json_scalars,
                "is_anonymous": st.booleans() | _json_scalars,
                "channel_id": st.integers() | _json_scalars,
                "code": st.integers(0, 99) | _json_scalars,
                "user": st.fixed_dictionaries({"user_id": _json_scalars}) | _json,
                "user_id": _json_scalars,
                "tags": st.lists(st.text(max_size=8) | _json_scalars, max_size=4) | _json,
                "comments": st.text() | _json_scalars,
            },
        )
        | _json,
    },
    optional={"timestamp": st.decimals(0, 5 * 10**9, places=6) | _json_scalars, "attempt": _json},
)


@pytest.mark.parametrize("platform", PLATFORMS)
@FUZZ
@given(payload=st.binary(max_size=300), received_at=st.none() | st.just(RECEIVED))
def test_phone_arbitrary_bytes_only_rejected(
    platform: str, payload: bytes, received_at: dt.datetime | None
) -> None:
    _only_rejected_or_valid(lambda: normalise(platform, payload, received_at=received_at))


@pytest.mark.parametrize("platform", ["generic", "ringover"])
@FUZZ
@given(document=_json)
def test_phone_arbitrary_json_only_rejected(platform: str, document: object) -> None:
    _only_rejected_or_valid(lambda: normalise(platform, _dumps(document)))


@FUZZ
@given(events=st.lists(_generic_events, min_size=1, max_size=3) | _generic_events)
def test_phone_near_valid_generic_json_only_rejected(events: object) -> None:
    _only_rejected_or_valid(lambda: normalise("generic", _dumps(events)))


@FUZZ
@given(body=_ringover_bodies, received_at=st.none() | st.just(RECEIVED))
def test_phone_near_valid_ringover_json_only_rejected(
    body: Mapping[str, object], received_at: dt.datetime | None
) -> None:
    _only_rejected_or_valid(lambda: normalise("ringover", _dumps(body), received_at=received_at))


_AMI_OPTIONAL = [
    "Linkedid", "Timestamp", "CallerIDNum", "CallerIDName", "Exten", "DialStatus",
    "DestUniqueid", "DestCallerIDNum", "DestChannel", "MemberName", "Interface", "TalkTime",
    "Queue", "UserEvent", "Choice", "Code", "Note", "Agent", "Response",
]  # fmt: skip
_ami_free = st.text(alphabet=st.characters(exclude_characters="\r\n"), max_size=20)
_ami_values = (
    st.sampled_from(["IvrChoice", "WrapUp", "ANSWER", "BUSY", "0612345678", "s", "anonymous"])
    | st.sampled_from(["1736870400.84", "1736870400.104215", "247", "<unknown>", "PJSIP/1-0a"])
    | _ami_free
)
_ami_blocks = st.fixed_dictionaries(
    {
        "Event": st.sampled_from(
            ["Newchannel", "DialEnd", "Hangup", "AgentComplete", "UserEvent", "VarSet"]
        )
        | _ami_free,
        "Uniqueid": st.sampled_from(["1736870400.84", "1736870421.85"]) | _ami_free,
    },
    optional={key: _ami_values for key in _AMI_OPTIONAL},
).map(lambda block: "\r\n".join(f"{key}: {value}" for key, value in block.items()))


@FUZZ
@given(text=st.text(max_size=400), received_at=st.none() | st.just(RECEIVED))
def test_phone_arbitrary_ami_text_only_rejected(text: str, received_at: dt.datetime | None) -> None:
    _only_rejected_or_valid(lambda: normalise("asterisk", text, received_at=received_at))


@FUZZ
@given(blocks=st.lists(_ami_blocks, min_size=1, max_size=4), received_at=st.just(RECEIVED))
def test_phone_near_valid_ami_blocks_only_rejected(
    blocks: list[str], received_at: dt.datetime
) -> None:
    text = "\r\n\r\n".join(blocks)
    _only_rejected_or_valid(lambda: normalise("asterisk", text, received_at=received_at))


_TWILIO_OPTIONAL = [
    "ParentCallSid", "From", "To", "Caller", "Called", "Direction", "CallDuration",
    "Timestamp", "SequenceNumber", "Digits",
]  # fmt: skip
_twilio_sids = st.sampled_from(
    ["CA7d3e9b1f2a4c6e8d0b5f7a9c1e3d5b7f", "CA19c2e4a6b8d0f2a4c6e8b0d2f4a6c8e0"]
)
_twilio_values = (
    _twilio_sids
    | st.sampled_from(["+33612345678", "+266696687", "client:agent-1", "inbound", "318", "2"])
    | st.sampled_from(["Tue, 14 Jan 2025 13:30:02 +0000", "2025-01-14T13:30:02Z", "Mon, 9 X"])
    | st.text(max_size=30)
)
_twilio_forms = st.fixed_dictionaries(
    {
        "CallSid": _twilio_sids | st.text(max_size=40),
        "CallStatus": st.sampled_from(
            ["queued", "ringing", "in-progress", "completed", "busy", "no-answer", "paused"]
        )
        | st.text(max_size=12),
    },
    optional={key: _twilio_values for key in _TWILIO_OPTIONAL},
)


@FUZZ
@given(
    form=_twilio_forms | st.dictionaries(st.text(max_size=10), st.text(max_size=20)),
    received_at=st.none() | st.just(RECEIVED),
)
def test_phone_arbitrary_twilio_form_only_rejected(
    form: dict[str, str], received_at: dt.datetime | None
) -> None:
    _only_rejected_or_valid(lambda: parse_twilio(form, received_at=received_at))


@FUZZ
@given(text=st.text(max_size=300))
def test_phone_arbitrary_twilio_body_only_rejected(text: str) -> None:
    _only_rejected_or_valid(lambda: normalise("twilio", text, received_at=RECEIVED))

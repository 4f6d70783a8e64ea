"""Platform adapters on the realistic samples, and the payloads they must reject."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

import services.intake_phone
from services.intake_phone.domain import PayloadRejected, normalise
from services.intake_phone.domain.twilio import parse_twilio

SAMPLES = Path(services.intake_phone.__file__).parent / "samples"
RECEIVED = dt.datetime(2025, 1, 14, 13, 30, 20, tzinfo=dt.UTC)
RINGOVER_CALL = "8461026573912345678"
GENERIC_CALL = "3f6c2a9e-1b7d-4c05-8e2f-9a4d6b1c7e30"
TWILIO_CALL = "CA7d3e9b1f2a4c6e8d0b5f7a9c1e3d5b7f"
AMI_CALL = "1736870400.84"


def _sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def _platform(name: str) -> str:
    return name.split("_", 1)[0]


@pytest.mark.parametrize(
    ("sample", "kinds", "call_id", "ignored"),
    [
        pytest.param(
            "generic_call.json",
            ("started", "ivr", "ivr", "answered", "ended", "wrap_up"),
            GENERIC_CALL,
            (),
            id="generic-whole-call",
        ),
        pytest.param("generic_wrap_up.json", ("wrap_up",), GENERIC_CALL, (), id="generic-wrap-up"),
        pytest.param(
            "generic_unknown_type.json", (), None, ("unsupported_event",), id="generic-unknown"
        ),
        pytest.param(
            "generic_hidden_caller_ended.json",
            ("ended",),
            "b2e8d4f1-6a3c-4e97-a0d5-71c3f9e2b864",
            (),
            id="generic-hidden-caller",
        ),
        pytest.param("ringover_ringing.json", ("started",), RINGOVER_CALL, (), id="ro-ringing"),
        pytest.param("ringover_ivr_response_code.json", ("ivr",), RINGOVER_CALL, (), id="ro-ivr"),
        pytest.param(
            "ringover_answered.json", ("started", "answered"), RINGOVER_CALL, (), id="ro-answered"
        ),
        pytest.param(
            "ringover_hangup.json", ("started", "ended"), RINGOVER_CALL, (), id="ro-hangup"
        ),
        pytest.param(
            "ringover_comments_updated.json", ("wrap_up",), RINGOVER_CALL, (), id="ro-aftercall"
        ),
        pytest.param(
            "ringover_missed.json", ("started", "ended"), "8461026573912399001", (), id="ro-missed"
        ),
        pytest.param(
            "ringover_voicemail.json",
            ("started", "ended"),
            "8461026573912400777",
            (),
            id="ro-voicemail",
        ),
        pytest.param(
            "ringover_sms_received.json", (), None, ("unsupported_event",), id="ro-sms-ignored"
        ),
        pytest.param(
            "ringover_record_available.json",
            (),
            None,
            ("unsupported_event",),
            id="ro-record-ignored",
        ),
        pytest.param("twilio_ringing.txt", ("started",), TWILIO_CALL, (), id="tw-ringing"),
        pytest.param("twilio_gather_digits.txt", ("ivr",), TWILIO_CALL, (), id="tw-gather"),
        pytest.param(
            "twilio_agent_leg_in_progress.txt", ("answered",), TWILIO_CALL, (), id="tw-agent-leg"
        ),
        pytest.param("twilio_completed.txt", ("ended",), TWILIO_CALL, (), id="tw-completed"),
        pytest.param(
            "twilio_anonymous_no_answer.txt",
            ("ended",),
            "CAe5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5",
            (),
            id="tw-no-answer",
        ),
        pytest.param(
            "twilio_queued_unknown_status.txt",
            (),
            None,
            ("unsupported_event",),
            id="tw-unknown-status",
        ),
        pytest.param(
            "asterisk_answered_call.txt",
            ("started", "ivr", "other", "answered", "ended", "other", "ended", "wrap_up"),
            AMI_CALL,
            ("ami_response", "unsupported_event"),
            id="ami-answered-call",
        ),
        pytest.param(
            "asterisk_abandoned_in_ivr.txt",
            ("started", "ivr", "ended"),
            "1736874005.97",
            (),
            id="ami-abandoned",
        ),
    ],
)
def test_phone_sample_normalises(
    sample: str, kinds: tuple[str, ...], call_id: str | None, ignored: tuple[str, ...]
) -> None:
    result = normalise(_platform(sample), _sample(sample), received_at=RECEIVED)
    assert tuple(event.kind for event in result.events) == kinds
    assert {event.call_id for event in result.events} == ({call_id} if call_id else set())
    assert {event.platform for event in result.events} <= {_platform(sample)}
    assert tuple(item.reason_code for item in result.ignored) == ignored
    for event in result.events:
        assert event.at.tzinfo is dt.UTC


def test_phone_every_sample_is_in_the_table() -> None:
    names = {path.name for path in SAMPLES.iterdir()}
    assert len(names) == 21
    assert all(_platform(name) in {"generic", "ringover", "twilio", "asterisk"} for name in names)


def test_phone_ringover_big_call_id_stays_exact() -> None:
    body = json.loads(_sample("ringover_hangup.json"))
    body["data"]["call_id"] = 2**64 - 1
    events = normalise("ringover", json.dumps(body)).events
    assert {event.call_id for event in events} == {"18446744073709551615"}
    raw = _sample("ringover_ringing.json")
    assert str(int(float(RINGOVER_CALL))) != RINGOVER_CALL  # a float would have lost digits
    assert normalise("ringover", raw).events[0].call_id == RINGOVER_CALL


def test_phone_ringover_fields() -> None:
    hangup = normalise("ringover", _sample("ringover_hangup.json")).events[-1]
    assert (hangup.caller, hangup.called, hangup.agent) == (
        "+33612345678",
        "+33972108080",
        "4812093",
    )
    assert (hangup.duration_s, hangup.direction, hangup.internal) == (279, "inbound", False)
    assert hangup.at == dt.datetime(2025, 1, 14, 8, 17, 41, 530902, tzinfo=dt.UTC)
    wrap = normalise("ringover", _sample("ringover_comments_updated.json")).events[0]
    assert wrap.wrap_up_code == "FACTURE_CONTESTATION"
    assert wrap.wrap_up_note is not None
    assert wrap.wrap_up_note.startswith("Conteste la facture")
    voicemail = normalise("ringover", _sample("ringover_voicemail.json")).events[-1]
    assert (voicemail.caller, voicemail.caller_hidden, voicemail.voicemail) == (None, True, True)
    assert voicemail.answered is False


def test_phone_ringover_retry_has_the_same_dedupe_keys() -> None:
    body = json.loads(_sample("ringover_hangup.json"))
    first = normalise("ringover", json.dumps(body)).events
    body["attempt"] = 5
    assert normalise("ringover", json.dumps(body)).events == first


def test_phone_twilio_fields_and_mapping_input() -> None:
    completed = normalise("twilio", _sample("twilio_completed.txt")).events[0]
    assert (completed.caller, completed.called, completed.duration_s) == (
        "+33612345678",
        "+33972108080",
        318,
    )
    leg = normalise("twilio", _sample("twilio_agent_leg_in_progress.txt")).events[0]
    assert (leg.agent, leg.caller, leg.called, leg.answered) == ("agent-0427", None, None, True)
    hidden = normalise("twilio", _sample("twilio_anonymous_no_answer.txt")).events[0]
    assert (hidden.caller, hidden.caller_hidden, hidden.answered) == (None, True, False)
    form = {"CallSid": TWILIO_CALL, "CallStatus": "in-progress", "From": "0612345678"}
    event = parse_twilio(form, received_at=RECEIVED).events[0]
    assert (event.kind, event.caller, event.at) == ("answered", "+33612345678", RECEIVED)


def test_phone_ami_fields() -> None:
    events = normalise("asterisk", _sample("asterisk_answered_call.txt")).events
    started, ivr, _, answered, complete, _, hangup, wrap = events
    assert (started.caller, started.called) == ("+33612345678", "+33972108080")
    assert (ivr.ivr_choice, answered.agent) == ("2", "1001")
    assert (complete.agent, complete.duration_s, complete.answered) == ("agent-1001", 247, True)
    assert hangup.duration_s is None
    assert (wrap.wrap_up_code, wrap.agent) == ("COUPURE_EAU", "agent-1001")


def _generic(**fields: object) -> str:
    event: dict[str, object] = {
        "event_id": "e1",
        "call_id": "c1",
        "type": "call.started",
        "at": "2025-01-14T10:00:00+01:00",
    }
    event.update(fields)
    return json.dumps(event)


_AMI_HANGUP = "Event: Hangup\nUniqueid: 1.1\nLinkedid: 1.1\n"
_TW = "CallSid=CA1&CallStatus=ringing&Timestamp=Tue%2C+14+Jan+2025+13%3A30%3A02+%2B0000"


@pytest.mark.parametrize(
    ("platform", "payload", "reason_code"),
    [
        pytest.param("generic", b"", "empty_payload", id="generic-empty"),
        pytest.param("generic", b"\xff\xfe{}", "not_utf8", id="generic-not-utf8"),
        pytest.param("generic", "{", "invalid_json", id="generic-broken-json"),
        pytest.param("generic", "NaN", "invalid_json", id="generic-nan"),
        pytest.param("generic", "[" * 5000 + "]" * 5000, "invalid_json", id="generic-deep"),
        pytest.param("generic", "[]", "empty_payload", id="generic-empty-array"),
        pytest.param("generic", "42", "invalid_structure", id="generic-not-object"),
        pytest.param("generic", _generic(event_id=None), "missing_field", id="generic-no-id"),
        pytest.param(
            "generic", _generic(call_id=1.5e18), "call_id_not_exact", id="generic-float-id"
        ),
        pytest.param(
            "generic", _generic(at="2025-01-14T10:00:00"), "naive_timestamp", id="generic-naive"
        ),
        pytest.param(
            "generic",
            _generic(at="1999-12-31T23:00:00+00:00"),
            "implausible_timestamp",
            id="generic-1999",
        ),
        pytest.param("generic", _generic(version=2), "unsupported_version", id="generic-v2"),
        pytest.param("generic", _generic(type="call.ivr"), "missing_field", id="generic-ivr"),
        pytest.param(
            "generic", _generic(type="call.wrap_up", wrap_up={}), "missing_field", id="wrap-empty"
        ),
        pytest.param("generic", _generic(caller="<b>x</b>!"), "invalid_number", id="bad-number"),
        pytest.param("generic", _generic(duration_s=-1), "invalid_field", id="generic-negative"),
        pytest.param("generic", _generic(direction="sideways"), "invalid_field", id="direction"),
        pytest.param("generic", "[" + ",".join([_generic()] * 101) + "]", "batch_too_large"),
        pytest.param("ringover", '{"resource":"call","event":"hangup"}', "invalid_structure"),
        pytest.param(
            "ringover",
            '{"resource":"call","event":"hangup","data":{"call_id":8.461026573912346e18}}',
            "call_id_not_exact",
            id="ringover-float-id",
        ),
        pytest.param(
            "ringover",
            '{"resource":"call","event":"hangup","timestamp":"hier","data":{"call_id":1}}',
            "invalid_timestamp",
            id="ringover-bad-time",
        ),
        pytest.param("ringover", '{"event":"hangup","data":{}}', "missing_field", id="no-resource"),
        pytest.param(
            "ringover",
            '{"resource":"aftercall","event":"tags_updated","timestamp":1736842735,'
            '"data":{"call_id":1,"tags":"x"}}',
            "invalid_field",
            id="ringover-tags-not-list",
        ),
        pytest.param("twilio", _TW + "&CallSid=CA2", "duplicate_field", id="tw-duplicate"),
        pytest.param("twilio", "CallStatus=ringing", "missing_call_id", id="tw-no-sid"),
        pytest.param("twilio", "CallSid=CA1", "missing_field", id="tw-no-status"),
        pytest.param(
            "twilio", "CallSid=CA1&CallStatus=ringing&Timestamp=hier", "invalid_timestamp"
        ),
        pytest.param("twilio", "CallSid=CA1&CallStatus=ringing", "missing_timestamp"),
        pytest.param("twilio", "CallSid=%ff&CallStatus=ringing", "invalid_form", id="tw-bad-pct"),
        pytest.param("twilio", "CallSid", "invalid_form", id="tw-no-equals"),
        pytest.param("asterisk", "just some text", "malformed_ami", id="ami-free-text"),
        pytest.param(
            "asterisk", "Event: Hangup\nLinkedid: 1.1", "missing_call_id", id="ami-no-uid"
        ),
        pytest.param("asterisk", "Channel: PJSIP/x", "missing_field", id="ami-no-event"),
        pytest.param(
            "asterisk", _AMI_HANGUP + "Timestamp: abc", "invalid_timestamp", id="ami-bad-time"
        ),
        pytest.param("asterisk", _AMI_HANGUP, "missing_timestamp", id="ami-no-time"),
        pytest.param(
            "asterisk",
            "Event: UserEvent\nUserEvent: IvrChoice\nUniqueid: 1.1\nTimestamp: 1736874019",
            "missing_field",
            id="ami-ivr-no-choice",
        ),
        pytest.param("fax", "{}", "unknown_platform", id="unknown-platform"),
    ],
)
def test_phone_malformed_payload_is_rejected(
    platform: str, payload: str | bytes, reason_code: str
) -> None:
    with pytest.raises(PayloadRejected) as caught:
        normalise(platform, payload)
    assert caught.value.reason_code == reason_code
    assert caught.value.reason


def test_phone_received_at_stands_in_for_a_missing_time() -> None:
    event = normalise("asterisk", _AMI_HANGUP, received_at=RECEIVED).events[0]
    assert (event.kind, event.at, event.call_id) == ("ended", RECEIVED, "1.1")

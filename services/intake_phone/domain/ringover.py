"""Ringover webhooks: ``{"resource", "event", "timestamp", "data"}`` (procedure 5.1.1).

Ringover posts one JSON object per event. What we read:

=====================================  ===========================================
``call`` / ``ringing``                 the call started (``data.start_time``)
``call`` / ``answered``                an agent (``data.user.user_id``) answered
``call`` / ``hangup``                  the call ended (``data.hangup_time``,
                                       ``data.duration_in_seconds``)
``call`` / ``missed``                  the call ended unanswered
``call`` / ``voicemail``               the call ended in the voicemail
``call`` / ``ivr_response_code``       an SVI choice (``data.code``)
``aftercall`` / ``comments_updated``   wrap-up: tags (qualification) + comments
``aftercall`` / ``tags_updated``       wrap-up: tags only
=====================================  ===========================================

Every other resource or event (``sms``, ``record_available``,
``voicemail_available``, ``contact``, ``routing``…) is ignored and counted.
``data.call_id`` is a 64-bit integer, often above 2**53: it is read from the
JSON text as an exact integer and kept as a string. Every ``call`` event also
carries ``data.start_time``, so each one yields the call's *started* event too
(same dedupe key, folded once): a lost ``ringing`` webhook still leaves the
call with its start time and numbers. Tags are joined with ``,`` into the
wrap-up code. ``is_anonymous`` hides the caller; ``is_internal`` marks calls
between two Ringover users. The ``attempt`` counter of a retried webhook is
not part of any dedupe key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Final

from pydantic import ValidationError

from services.intake_phone.domain import _read
from services.intake_phone.domain.events import (
    CallEvent,
    EventKind,
    Ignored,
    Normalised,
    PayloadRejected,
)
from services.intake_phone.domain.numbers import party

__all__ = ["parse_ringover"]

_CALL_EVENTS: Final[dict[str, EventKind]] = {
    "ringing": "started",
    "answered": "answered",
    "hangup": "ended",
    "missed": "ended",
    "voicemail": "ended",
    "ivr_response_code": "ivr",
}
_AFTERCALL_EVENTS: Final = frozenset({"comments_updated", "tags_updated"})


def parse_ringover(payload: bytes | str, *, received_at: dt.datetime | None = None) -> Normalised:
    """Read one Ringover webhook into normalised call events (module docstring).

    Rule of procedure 5.1.1 (every call is received as a contact): call and
    after-call events become :class:`CallEvent` values, other Ringover events
    are ignored and counted, a malformed body raises :class:`PayloadRejected`.
    ``received_at`` stands in for a missing ``timestamp``.
    """
    body = _read.as_object(_read.load_json(payload), "the webhook body")
    resource = _read.opt_str(body, "resource", max_len=64)
    event = _read.opt_str(body, "event", max_len=64)
    if resource is None or event is None:
        raise PayloadRejected("missing_field", "resource and event are required")
    data = _read.as_object(body.get("data"), "data")
    if resource == "call" and event in _CALL_EVENTS:
        kind = _CALL_EVENTS[event]
    elif resource == "aftercall" and event in _AFTERCALL_EVENTS:
        kind = "wrap_up"
    else:
        return Normalised(ignored=(Ignored("unsupported_event", "ringover event not read"),))
    call_id = _read.call_id(data.get("call_id"), "data.call_id")
    raw_ts = body.get("timestamp")
    stamp = "" if raw_ts is None else str(raw_ts)[:32]
    event_at = _read.time_or_fallback(
        None if raw_ts is None else _read.epoch_time(raw_ts, "timestamp"), received_at, "timestamp"
    )
    try:
        if kind == "wrap_up":
            return _wrap_up(call_id, event, data, event_at, stamp)
        return _call_event(call_id, event, kind, data, event_at, stamp)
    except ValidationError as exc:
        raise PayloadRejected("invalid_field", "a ringover field is out of range") from exc


def _call_event(
    call_id: str,
    event: str,
    kind: EventKind,
    data: Mapping[str, object],
    event_at: dt.datetime,
    stamp: str,
) -> Normalised:
    caller = party(
        _read.opt_str(data, "from_number", max_len=64),
        hidden=_read.opt_bool(data, "is_anonymous") is True,
    )
    called = party(_read.opt_str(data, "to_number", max_len=64))
    common: dict[str, object] = {
        "platform": "ringover",
        "call_id": call_id,
        "direction": _read.direction(data, "direction"),
        "caller": caller.number,
        "caller_hidden": caller.hidden,
        "called": called.number,
        "internal": _read.opt_bool(data, "is_internal"),
    }
    events: list[CallEvent] = []
    start = data.get("start_time")
    if start is not None or kind == "started":
        started_at = event_at if start is None else _read.epoch_time(start, "data.start_time")
        events.append(
            CallEvent.model_validate(
                {
                    **common,
                    "kind": "started",
                    "at": started_at,
                    "dedupe_key": f"ringover:{call_id}:started",
                }
            )
        )
    if kind == "started":
        return Normalised(events=tuple(events))
    channel = _read.opt_str(data, "channel_id", max_len=64) or ""
    details: dict[str, object] = {"kind": kind, "at": event_at}
    if kind == "ivr":
        choice = _read.opt_str(data, "code", max_len=64)
        if choice is None:
            raise PayloadRejected("missing_field", "data.code is required on ivr_response_code")
        details["ivr_choice"] = choice
        details["dedupe_key"] = f"ringover:{call_id}:ivr:{stamp}:{choice}"
    else:
        details["dedupe_key"] = f"ringover:{call_id}:{event}:{channel}"
        details["agent"] = _agent(data) if event in {"answered", "hangup"} else None
    if kind == "answered":
        details["answered"] = True
    if kind == "ended":
        hangup = data.get("hangup_time")
        if hangup is not None:
            details["at"] = _read.epoch_time(hangup, "data.hangup_time")
        details["answered"] = False if event in {"missed", "voicemail"} else None
        details["voicemail"] = event == "voicemail"
        details["duration_s"] = _read.opt_count(
            data.get("duration_in_seconds"), "data.duration_in_seconds"
        )
    events.append(CallEvent.model_validate({**common, **details}))
    return Normalised(events=tuple(events))


def _agent(data: Mapping[str, object]) -> str | None:
    user = data.get("user")
    if isinstance(user, dict):
        found = _read.opt_str(user, "user_id", max_len=64)
        if found is not None:
            return found
    return _read.opt_str(data, "user_id", max_len=64)


def _wrap_up(
    call_id: str, event: str, data: Mapping[str, object], event_at: dt.datetime, stamp: str
) -> Normalised:
    tags_value = data.get("tags")
    tags: list[str] = []
    if tags_value is not None:
        if not isinstance(tags_value, list) or len(tags_value) > 50:
            raise PayloadRejected("invalid_field", "data.tags must be a list of strings")
        for raw_tag in tags_value:
            tag = _read.opt_str({"data.tags": raw_tag}, "data.tags", max_len=64)
            if tag is not None:
                tags.append(tag)
    code = ",".join(tags) or None
    note = _read.opt_str(data, "comments", max_len=20_000, multiline=True)
    if code is None and note is None:
        return Normalised(ignored=(Ignored("empty_wrap_up", "after-call update without content"),))
    event_ = CallEvent(
        platform="ringover",
        call_id=call_id,
        kind="wrap_up",
        at=event_at,
        dedupe_key=f"ringover:{call_id}:{event}:{stamp}",
        wrap_up_code=code,
        wrap_up_note=note,
    )
    return Normalised(events=(event_,))

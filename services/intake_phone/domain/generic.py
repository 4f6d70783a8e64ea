"""Our generic JSON call-event format, for CTI connectors we write ourselves (procedure 5.1.1).

A payload is one event object, or a JSON array of at most 100 event objects
(``samples/generic_call.json`` is a complete answered call, and the reference
example of this format). Fields of an event object:

=================  ========================================================
``version``        optional, integer, ``1`` (the only version); another
                   value is rejected (``unsupported_version``)
``event_id``       required string (≤ 128 chars), unique per event; a retry
                   re-sends the same ``event_id`` and is ignored as a duplicate
``call_id``        required, string or JSON integer (kept exact, any size),
                   ``[A-Za-z0-9._:@-]``, ≤ 128 chars; a UUID is recommended,
                   the item id becomes ``phone:generic:<call_id>``
``type``           required: ``call.started``, ``call.ivr``,
                   ``call.answered``, ``call.ended``, ``call.wrap_up``; any
                   other string is ignored and counted (``unsupported_event``)
``at``             required ISO 8601 date-time *with* offset
                   (``2025-01-14T09:12:03+01:00``); naive times are rejected
``direction``      optional, ``inbound`` | ``outbound``
``caller``         optional number as dialled (``0612345678``, ``+33…``);
                   ``null`` or absent when unknown
``caller_hidden``  optional boolean: the caller withheld the number
``called``         optional number the caller dialled (our service line)
``internal``       optional boolean: a call between two of our extensions
``ivr_choice``     required for ``call.ivr``: the SVI menu choice (``"2"``)
``agent``          optional agent identifier (answered, ended, wrap-up)
``answered``       optional boolean on ``call.ended`` (``false``: missed)
``voicemail``      optional boolean on ``call.ended``: a message was left
``duration_s``     optional whole seconds on ``call.ended``
``wrap_up``        required for ``call.wrap_up``: an object with ``code``
                   (the agent's qualification code) and/or ``note`` (the
                   agent's free text, ≤ 20,000 chars)
=================  ========================================================

Unknown fields are ignored (a connector may send more than we read). Any
error in any event rejects the whole payload, so that a connector never has
half a batch accepted.
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

__all__ = ["MAX_BATCH", "parse_generic"]

MAX_BATCH: Final = 100
_TYPES: Final[dict[str, EventKind]] = {
    "call.started": "started",
    "call.ivr": "ivr",
    "call.answered": "answered",
    "call.ended": "ended",
    "call.wrap_up": "wrap_up",
}


def parse_generic(payload: bytes | str, *, received_at: dt.datetime | None = None) -> Normalised:
    """Read our generic JSON call events (module docstring) into normalised call events.

    Rule of procedure 5.1.1 (every call is received as a contact): each known
    ``type`` gives one :class:`CallEvent`, unknown types are ignored and
    counted, anything malformed raises :class:`PayloadRejected`.
    ``received_at`` is accepted for a uniform adapter signature; the format
    requires its own ``at``.
    """
    del received_at
    document = _read.load_json(payload)
    items = document if isinstance(document, list) else [document]
    if not items:
        raise PayloadRejected("empty_payload", "the event array is empty")
    if len(items) > MAX_BATCH:
        raise PayloadRejected("batch_too_large", f"more than {MAX_BATCH} events in one payload")
    result = Normalised()
    for index, item in enumerate(items):
        result = result + _one(_read.as_object(item, f"event #{index}"))
    return result


def _one(source: Mapping[str, object]) -> Normalised:
    version = source.get("version", 1)
    if version != 1 or isinstance(version, bool):
        raise PayloadRejected("unsupported_version", "version must be 1")
    type_ = _read.opt_str(source, "type", max_len=64)
    if type_ is None:
        raise PayloadRejected("missing_field", "type is missing")
    event_id = _read.opt_str(source, "event_id", max_len=128)
    if event_id is None:
        raise PayloadRejected("missing_field", "event_id is missing")
    call_id = _read.call_id(source.get("call_id"))
    at = _read.iso_time(source.get("at"), "at")
    kind = _TYPES.get(type_)
    if kind is None:
        return Normalised(ignored=(Ignored("unsupported_event", "generic event type not read"),))
    direction = _read.direction(source, "direction")
    caller = party(
        _read.opt_str(source, "caller", max_len=64),
        hidden=_read.opt_bool(source, "caller_hidden") is True,
    )
    called = party(_read.opt_str(source, "called", max_len=64))
    ivr_choice = _read.opt_str(source, "ivr_choice", max_len=64)
    if kind == "ivr" and ivr_choice is None:
        raise PayloadRejected("missing_field", "ivr_choice is required on call.ivr")
    code, note = _wrap_up(source) if kind == "wrap_up" else (None, None)
    try:
        event = CallEvent(
            platform="generic",
            call_id=call_id,
            kind=kind,
            at=at,
            dedupe_key=f"generic:{call_id}:{event_id}",
            direction=direction,
            caller=caller.number,
            caller_hidden=caller.hidden,
            called=called.number,
            internal=_read.opt_bool(source, "internal"),
            ivr_choice=ivr_choice if kind == "ivr" else None,
            agent=_read.opt_str(source, "agent", max_len=256),
            answered=True if kind == "answered" else _read.opt_bool(source, "answered"),
            voicemail=kind == "ended" and _read.opt_bool(source, "voicemail") is True,
            duration_s=_read.opt_count(source.get("duration_s"), "duration_s"),
            wrap_up_code=code,
            wrap_up_note=note,
        )
    except ValidationError as exc:
        raise PayloadRejected("invalid_field", "an event field is out of range") from exc
    return Normalised(events=(event,))


def _wrap_up(source: Mapping[str, object]) -> tuple[str | None, str | None]:
    wrap_up = _read.as_object(source.get("wrap_up"), "wrap_up")
    code = _read.opt_str(wrap_up, "code", max_len=256)
    note = _read.opt_str(wrap_up, "note", max_len=20_000, multiline=True)
    if code is None and note is None:
        raise PayloadRejected("missing_field", "wrap_up needs a code or a note")
    return code, note

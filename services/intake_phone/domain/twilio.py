"""Twilio-style status callbacks: form-encoded ``CallSid``, ``CallStatus``… (procedure 5.1.1).

What we read from a status callback (``application/x-www-form-urlencoded``):
``CallSid``, ``CallStatus``, ``From``, ``To``, ``Direction``, ``CallDuration``,
``Timestamp`` (RFC 2822, as Twilio sends it, or ISO 8601), ``SequenceNumber``.

======================================  ============================================
``queued``, ``initiated``, ``ringing``  the call started
``in-progress``                         the call was answered
``completed``                           the call ended (``CallDuration``)
``busy``, ``no-answer``, ``failed``,    the call ended unanswered
``canceled``
======================================  ============================================

A callback about a ``<Dial>`` leg (it carries ``ParentCallSid``) belongs to
the parent call: its ``in-progress`` means an agent (``To``: ``client:alice``,
``sip:1001@…``) answered, its other statuses are kept as *other* events. A
``<Gather>`` action request (it carries ``Digits``) is an SVI choice. Unknown
statuses are ignored and counted. Withheld callers arrive as Twilio's keypad
placeholders (``+266696687``…) and become hidden. Gather requests carry no
``Timestamp``: the caller's ``received_at`` stands in for it.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Mapping
from typing import Final
from urllib.parse import parse_qsl

from pydantic import ValidationError

from services.intake_phone.domain import _read
from services.intake_phone.domain.events import (
    CallEvent,
    Direction,
    EventKind,
    Ignored,
    Normalised,
    PayloadRejected,
)
from services.intake_phone.domain.numbers import party, to_e164

__all__ = ["parse_twilio"]

_STATUSES: Final[dict[str, tuple[EventKind, bool | None]]] = {
    "queued": ("started", None),
    "initiated": ("started", None),
    "ringing": ("started", None),
    "in-progress": ("answered", True),
    "answered": ("answered", True),
    "completed": ("ended", None),
    "busy": ("ended", False),
    "no-answer": ("ended", False),
    "failed": ("ended", False),
    "canceled": ("ended", False),
}
_MAX_FIELDS: Final = 200


def parse_twilio(
    payload: bytes | str | Mapping[str, str], *, received_at: dt.datetime | None = None
) -> Normalised:
    """Read one Twilio-style status callback into normalised call events (module docstring).

    Rule of procedure 5.1.1 (every call is received as a contact): the form
    (raw body or already-decoded mapping) gives one :class:`CallEvent`;
    unknown statuses are ignored and counted; a malformed form raises
    :class:`PayloadRejected`. ``received_at`` stands in for a missing
    ``Timestamp``.
    """
    form = _form(payload)
    sid = _read.call_id(form.get("CallSid"), "CallSid")
    parent_raw = form.get("ParentCallSid")
    parent = _read.call_id(parent_raw, "ParentCallSid") if parent_raw else None
    status = (_read.opt_str(form, "CallStatus", max_len=32) or "").lower()
    if not status:
        raise PayloadRejected("missing_field", "CallStatus is required")
    raw_ts = _read.opt_str(form, "Timestamp", max_len=64)
    at = _read.time_or_fallback(_timestamp(raw_ts), received_at, "Timestamp")
    sequence = _read.opt_count(form.get("SequenceNumber"), "SequenceNumber", maximum=10**9)
    seq = "" if sequence is None else str(sequence)
    digits = _read.opt_str(form, "Digits", max_len=64)
    try:
        if digits is not None and parent is None:
            return _event(
                sid, "ivr", at, f"twilio:{sid}:ivr:{digits}:{raw_ts or ''}", ivr_choice=digits
            )
        if status not in _STATUSES:
            return Normalised(ignored=(Ignored("unsupported_event", "twilio status not read"),))
        kind, answered = _STATUSES[status]
        if parent is not None:
            leg_kind: EventKind = "answered" if kind == "answered" else "other"
            agent = _agent(_read.opt_str(form, "To", max_len=128))
            return _event(
                parent,
                leg_kind,
                at,
                f"twilio:{parent}:leg:{sid}:{status}:{seq}",
                agent=agent if leg_kind == "answered" else None,
                answered=True if leg_kind == "answered" else None,
            )
        caller = party(
            _read.opt_str(form, "From", max_len=64) or _read.opt_str(form, "Caller", max_len=64)
        )
        called = party(
            _read.opt_str(form, "To", max_len=64) or _read.opt_str(form, "Called", max_len=64)
        )
        return _event(
            sid,
            kind,
            at,
            f"twilio:{sid}:{status}:{seq}",
            direction=_direction(form.get("Direction")),
            caller=caller.number,
            caller_hidden=caller.hidden,
            called=called.number,
            answered=answered,
            duration_s=_read.opt_count(form.get("CallDuration"), "CallDuration")
            if kind == "ended"
            else None,
        )
    except ValidationError as exc:
        raise PayloadRejected("invalid_field", "a twilio field is out of range") from exc


def _event(
    call_id: str, kind: EventKind, at: dt.datetime, key: str, **fields: object
) -> Normalised:
    values: dict[str, object] = {
        "platform": "twilio",
        "call_id": call_id,
        "kind": kind,
        "at": at,
        "dedupe_key": key,
    }
    values.update(fields)
    return Normalised(events=(CallEvent.model_validate(values),))


def _form(payload: bytes | str | Mapping[str, str]) -> Mapping[str, str]:
    if isinstance(payload, Mapping):
        if len(payload) > _MAX_FIELDS:
            raise PayloadRejected("too_many_fields", f"more than {_MAX_FIELDS} form fields")
        for key, value in payload.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise PayloadRejected("invalid_structure", "form fields must be strings")
        return payload
    text = _read.decode_text(payload)
    try:
        pairs = parse_qsl(
            text.strip(),
            keep_blank_values=True,
            strict_parsing=True,
            errors="strict",
            max_num_fields=_MAX_FIELDS,
        )
    except ValueError as exc:  # includes UnicodeDecodeError of a bad percent-escape
        raise PayloadRejected("invalid_form", "body is not a URL-encoded form") from exc
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            raise PayloadRejected("duplicate_field", "a form field appears twice")
        form[key] = value
    return form


def _timestamp(raw: str | None) -> dt.datetime | None:
    if raw is None:
        return None
    if raw[:4].isdigit():
        return _read.iso_time(raw, "Timestamp")
    try:
        parsed = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError) as exc:
        raise PayloadRejected("invalid_timestamp", "Timestamp is not an RFC 2822 date") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    try:
        return _read.plausible(parsed, "Timestamp")
    except OverflowError as exc:
        raise PayloadRejected("implausible_timestamp", "Timestamp is out of range") from exc


def _agent(to: str | None) -> str | None:
    """The agent a ``<Dial>`` leg reached: ``client:alice`` → ``alice``, a number → E.164."""
    if to is None:
        return None
    scheme, sep, rest = to.partition(":")
    if sep and scheme.lower() in {"client", "sip", "tel"}:
        to = rest.split("@", 1)[0] or to
    return to_e164(to) or to


def _direction(value: str | None) -> Direction | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered.startswith("inbound") or lowered == "trunking-originating":
        return "inbound"
    if lowered.startswith("outbound") or lowered == "trunking-terminating":
        return "outbound"
    return None

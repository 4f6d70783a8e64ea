"""Careful readers shared by the adapters: every failure becomes a ``PayloadRejected``.

Numbers from JSON are read with ``Decimal`` for fractions and Python's exact
``int`` for integers, so a Ringover ``call_id`` above 2**53 keeps every digit;
a call id that arrives as a float was already rounded upstream and is
rejected rather than guessed at.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from services.intake_phone.domain.events import CALL_ID_PATTERN, Direction, PayloadRejected

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "as_object",
    "call_id",
    "decode_text",
    "direction",
    "epoch_time",
    "iso_time",
    "load_json",
    "opt_bool",
    "opt_count",
    "opt_str",
    "plausible",
    "time_or_fallback",
]

MAX_PAYLOAD_BYTES = 1_048_576
_EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CALL_ID = re.compile(CALL_ID_PATTERN)
_DIGITS = re.compile(r"^\d{1,12}(?:\.\d{1,9})?$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def decode_text(payload: bytes | str) -> str:
    """Return the payload as text: UTF-8, at most ``MAX_PAYLOAD_BYTES``, not blank."""
    if isinstance(payload, bytes):
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise PayloadRejected("payload_too_large", f"payload over {MAX_PAYLOAD_BYTES} bytes")
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PayloadRejected("not_utf8", "payload is not valid UTF-8") from exc
    else:
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise PayloadRejected("payload_too_large", f"payload over {MAX_PAYLOAD_BYTES} bytes")
        text = payload
    if not text.strip():
        raise PayloadRejected("empty_payload", "payload is empty")
    return text


def _no_constant(name: str) -> object:
    raise PayloadRejected("invalid_json", f"JSON constant {name} is not allowed")


def load_json(payload: bytes | str) -> object:
    """Parse JSON keeping integers exact and fractions as ``Decimal``; NaN/Infinity refused."""
    text = decode_text(payload)
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_no_constant)
    except PayloadRejected:
        raise
    except RecursionError as exc:
        raise PayloadRejected("invalid_json", "JSON nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, and integers over the digit limit
        raise PayloadRejected("invalid_json", "payload is not valid JSON") from exc


def as_object(value: object, where: str) -> Mapping[str, object]:
    """Return ``value`` as a JSON object, or reject naming ``where`` it was expected."""
    if not isinstance(value, dict):
        raise PayloadRejected("invalid_structure", f"{where} must be a JSON object")
    return value


def opt_str(
    source: Mapping[str, object], key: str, *, max_len: int = 256, multiline: bool = False
) -> str | None:
    """Read an optional text field: strings are stripped, blank means absent; ints accepted."""
    value = source.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise PayloadRejected("invalid_field", f"{key} must be a string")
    value = value.strip()
    if len(value) > max_len:
        raise PayloadRejected("field_too_long", f"{key} is longer than {max_len} characters")
    if not multiline and ("\n" in value or "\r" in value):
        raise PayloadRejected("invalid_field", f"{key} must be on one line")
    if _CONTROL.search(value):
        raise PayloadRejected("invalid_field", f"{key} contains control characters")
    return value or None


def call_id(value: object, key: str = "call_id") -> str:
    """Read a call id exactly: a string or a JSON integer (any size), never a float."""
    if isinstance(value, bool) or value is None:
        raise PayloadRejected("missing_call_id", f"{key} is missing")
    if isinstance(value, int):
        value = str(value)
    elif isinstance(value, Decimal | float):
        raise PayloadRejected(
            "call_id_not_exact", f"{key} is a fractional number: it must be an integer or a string"
        )
    if not isinstance(value, str):
        raise PayloadRejected("invalid_call_id", f"{key} must be a string or an integer")
    value = value.strip()
    if not value:
        raise PayloadRejected("missing_call_id", f"{key} is empty")
    if not _CALL_ID.match(value):
        raise PayloadRejected("invalid_call_id", f"{key} has unexpected characters or length")
    return value


def opt_bool(source: Mapping[str, object], key: str) -> bool | None:
    """Read an optional boolean; JSON ``true``/``false`` and the strings "true"/"false"."""
    value = source.get(key)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise PayloadRejected("invalid_field", f"{key} must be a boolean")


def opt_count(value: object, key: str, *, maximum: int = 7 * 24 * 3600) -> int | None:
    """Read an optional non-negative whole number (int, integral decimal or digit string)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise PayloadRejected("invalid_field", f"{key} must be a whole number")
    if isinstance(value, str):
        if not value.strip().isdecimal() or len(value.strip()) > 12:
            raise PayloadRejected("invalid_field", f"{key} must be a whole number")
        value = int(value.strip())
    if isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise PayloadRejected("invalid_field", f"{key} must be a whole number")
        if abs(value) > maximum:
            raise PayloadRejected("invalid_field", f"{key} is out of range")
        value = int(value)
    if not isinstance(value, int) or not 0 <= value <= maximum:
        raise PayloadRejected("invalid_field", f"{key} must be a whole number in range")
    return value


def plausible(at: dt.datetime, key: str) -> dt.datetime:
    """Return ``at`` in UTC if it lies in 2000–2100, the span a telephony event can have."""
    at = at.astimezone(dt.UTC)
    if not _EARLIEST <= at < _LATEST:
        raise PayloadRejected("implausible_timestamp", f"{key} is outside 2000-2100")
    return at


def epoch_time(value: object, key: str) -> dt.datetime:
    """Read Unix epoch seconds (int, decimal or digit string) as an aware UTC datetime."""
    if isinstance(value, bool) or value is None:
        raise PayloadRejected("invalid_timestamp", f"{key} must be epoch seconds")
    if isinstance(value, str):
        if not _DIGITS.match(value.strip()):
            raise PayloadRejected("invalid_timestamp", f"{key} must be epoch seconds")
        value = Decimal(value.strip())
    if isinstance(value, int):
        value = Decimal(value)
    if not isinstance(value, Decimal):
        raise PayloadRejected("invalid_timestamp", f"{key} must be epoch seconds")
    try:
        if not value.is_finite() or not Decimal(946_684_800) <= value < Decimal(4_102_444_800):
            raise PayloadRejected("implausible_timestamp", f"{key} is outside 2000-2100")
        seconds = int(value)
        micros = int((value - seconds) * 1_000_000)
    except (InvalidOperation, OverflowError) as exc:
        raise PayloadRejected("invalid_timestamp", f"{key} must be epoch seconds") from exc
    return _EPOCH + dt.timedelta(seconds=seconds, microseconds=micros)


def iso_time(value: object, key: str) -> dt.datetime:
    """Read an ISO 8601 date-time with its UTC offset; naive times are rejected."""
    if not isinstance(value, str) or len(value) > 64:
        raise PayloadRejected("invalid_timestamp", f"{key} must be an ISO 8601 string")
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise PayloadRejected("invalid_timestamp", f"{key} is not ISO 8601") from exc
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise PayloadRejected("naive_timestamp", f"{key} has no UTC offset")
    try:
        return plausible(parsed, key)
    except OverflowError as exc:
        raise PayloadRejected("implausible_timestamp", f"{key} is out of range") from exc


def time_or_fallback(
    at: dt.datetime | None, received_at: dt.datetime | None, key: str
) -> dt.datetime:
    """Use the payload's own time, else the receive time given by the caller, else reject."""
    if at is not None:
        return at
    if received_at is None:
        raise PayloadRejected("missing_timestamp", f"{key} is missing and no receive time given")
    if received_at.tzinfo is None:
        raise ValueError("received_at must be an aware datetime")
    return received_at.astimezone(dt.UTC)


_DIRECTIONS: dict[str, Direction] = {
    "inbound": "inbound",
    "in": "inbound",
    "incoming": "inbound",
    "outbound": "outbound",
    "out": "outbound",
    "outgoing": "outbound",
    "outbound-api": "outbound",
    "outbound-dial": "outbound",
}


def direction(source: Mapping[str, object], key: str) -> Direction | None:
    """Read an optional call direction (inbound/outbound and the platforms' spellings)."""
    value = opt_str(source, key, max_len=32)
    if value is None:
        return None
    found = _DIRECTIONS.get(value.lower())
    if found is None:
        raise PayloadRejected("invalid_field", f"{key} must be inbound or outbound")
    return found

"""Reading aioimaplib responses: UID sets, UIDVALIDITY, SEARCH and FETCH results.

aioimaplib hands a response as a list of lines (``bytes``) with each literal
(a message body) as one ``bytearray`` right after the line announcing it
(``1 FETCH (UID 5 INTERNALDATE "…" BODY[] {1234}``) and the rest of that
FETCH after it (``)`` or `` UID 5)``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "FetchRecord",
    "internal_date",
    "parse_fetch",
    "parse_search",
    "response_code",
    "uid_set",
    "uidvalidity",
]

_FETCH_START = re.compile(rb"^\d+ FETCH \(")
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_INTERNALDATE = re.compile(rb'\bINTERNALDATE "([^"]+)"')
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_CODE = re.compile(rb"\[([A-Z][A-Z0-9-]*)")
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}
_DATE = re.compile(
    r"^\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$"
)


@dataclass(slots=True)
class FetchRecord:
    """What one FETCH response said about one message."""

    uid: str | None = None
    size: int | None = None
    arrived_at: dt.datetime | None = None
    body: bytes | None = None


def uid_set(uids: Iterable[str]) -> str:
    """A compact IMAP sequence set of UIDs: ``1:3,7`` (RFC 3501 section 9, sequence-set)."""
    numbers = sorted({int(uid) for uid in uids})
    ranges: list[str] = []
    start = previous = None
    for number in numbers:
        if previous is not None and number == previous + 1:
            previous = number
            continue
        if start is not None:
            ranges.append(f"{start}:{previous}" if start != previous else str(start))
        start = previous = number
    if start is not None:
        ranges.append(f"{start}:{previous}" if start != previous else str(start))
    return ",".join(ranges)


def uidvalidity(lines: Sequence[bytes | bytearray]) -> int | None:
    """The UIDVALIDITY a SELECT response announced, or None."""
    for line in lines:
        match = _UIDVALIDITY.search(bytes(line))
        if match:
            return int(match.group(1))
    return None


def response_code(lines: Sequence[bytes | bytearray]) -> str:
    """The bracketed response code of a tagged answer (``ALREADYEXISTS``…), or ''."""
    for line in reversed(lines):
        match = _CODE.search(bytes(line))
        if match:
            return match.group(1).decode("ascii")
    return ""


def parse_search(lines: Sequence[bytes | bytearray]) -> list[str]:
    """The UIDs of a UID SEARCH answer, ascending (the last line is the tagged status)."""
    found: set[int] = set()
    for line in lines[:-1]:
        found.update(int(token) for token in bytes(line).split() if token.isdigit())
    return [str(uid) for uid in sorted(found)]


def internal_date(text: str) -> dt.datetime | None:
    """An IMAP INTERNALDATE (``26-Nov-2026 07:15:21 +0100``) as aware UTC, or None."""
    match = _DATE.match(text)
    if match is None or match.group(2).title() not in _MONTHS:
        return None
    day, month, year, hour, minute, second, sign, off_h, off_m = match.groups()
    offset = dt.timedelta(hours=int(off_h), minutes=int(off_m)) * (-1 if sign == "-" else 1)
    try:
        local = dt.datetime(
            int(year), _MONTHS[month.title()], int(day), int(hour), int(minute), int(second),
            tzinfo=dt.timezone(offset),
        )  # fmt: skip
    except ValueError:
        return None
    return local.astimezone(dt.UTC)


def _fill(record: FetchRecord, attributes: bytes) -> None:
    if record.uid is None and (match := _UID.search(attributes)):
        record.uid = match.group(1).decode("ascii")
    if record.size is None and (match := _SIZE.search(attributes)):
        record.size = int(match.group(1))
    if record.arrived_at is None and (match := _INTERNALDATE.search(attributes)):
        record.arrived_at = internal_date(match.group(1).decode("ascii", "replace"))


def parse_fetch(lines: Sequence[bytes | bytearray]) -> list[FetchRecord]:
    """Every message of a (UID) FETCH answer: UID, size, internal date and body literal."""
    records: list[FetchRecord] = []
    current: FetchRecord | None = None
    for line in lines:
        if isinstance(line, bytearray):
            if current is not None and current.body is None:
                current.body = bytes(line)
            continue
        if _FETCH_START.match(line):
            current = FetchRecord()
            records.append(current)
        if current is not None:
            _fill(current, line)
    return [record for record in records if record.uid is not None]

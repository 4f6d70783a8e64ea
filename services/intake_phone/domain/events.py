"""The normalised telephony event and what an adapter returns (procedure 4.1, 5.1.1).

Every platform adapter (generic JSON, Ringover, Twilio-style, Asterisk AMI)
turns one raw payload into a :class:`Normalised` value: the call events it
carries, plus the parts it deliberately ignored (unknown event types, counted
by the caller, never an error). A payload that cannot be read at all raises
:class:`PayloadRejected` with a stable ``reason_code`` (it becomes the
``DeadLetter.reason_code``) and a reason that names fields, never their values,
so that it carries no personal data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas import UtcDatetime

__all__ = [
    "CALL_ID_PATTERN",
    "CallEvent",
    "Direction",
    "EventKind",
    "Ignored",
    "Normalised",
    "PayloadRejected",
    "Platform",
]

Platform = Literal["generic", "ringover", "twilio", "asterisk"]
EventKind = Literal["started", "ivr", "answered", "ended", "wrap_up", "other"]
Direction = Literal["inbound", "outbound"]

CALL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
"""A platform call id: printable, no spaces, at most 128 characters (item ids stay < 256)."""


class PayloadRejected(ValueError):
    """A payload no adapter can read: it gets a 4xx and a ``DeadLetter`` with this reason.

    ``reason_code`` is stable and snake_case (``DeadLetter.reason_code``);
    ``reason`` explains which field was wrong without quoting personal data.
    """

    def __init__(self, reason_code: str, reason: str) -> None:
        super().__init__(f"{reason_code}: {reason}")
        self.reason_code = reason_code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Ignored:
    """A well-formed part of a payload that is not a call lifecycle event (counted, not routed)."""

    reason_code: str
    reason: str


class CallEvent(BaseModel):
    """One telephony fact about one call, whatever platform reported it (procedure 5.1.1).

    ``dedupe_key`` is identical for a retry or a re-delivery of the same fact,
    so that folding a call (:func:`..assembly.apply`) ignores duplicates.
    ``caller`` and ``called`` are E.164 when the number could be parsed, the
    raw number otherwise (extensions, short numbers) and ``None`` when unknown;
    ``caller_hidden`` says the caller withheld the number. ``answered`` on an
    ``ended`` event is the platform's hint (``False`` for missed calls).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform: Platform
    call_id: str = Field(pattern=CALL_ID_PATTERN)
    kind: EventKind
    at: UtcDatetime
    dedupe_key: str = Field(min_length=1, max_length=512)
    direction: Direction | None = None
    caller: str | None = Field(default=None, max_length=64)
    caller_hidden: bool = False
    called: str | None = Field(default=None, max_length=64)
    internal: bool | None = None
    ivr_choice: str | None = Field(default=None, max_length=64)
    agent: str | None = Field(default=None, max_length=256)
    answered: bool | None = None
    voicemail: bool = False
    duration_s: int | None = Field(default=None, ge=0, le=7 * 24 * 3600)
    wrap_up_code: str | None = Field(default=None, max_length=256)
    wrap_up_note: str | None = Field(default=None, max_length=20_000)

    def sort_key(self) -> tuple[dt.datetime, int, str]:
        """Order in which a call's events are read: time, then lifecycle rank, then key."""
        return (self.at, _KIND_RANK[self.kind], self.dedupe_key)


_KIND_RANK: dict[str, int] = {
    "started": 0,
    "ivr": 1,
    "answered": 2,
    "other": 3,
    "ended": 4,
    "wrap_up": 5,
}


@dataclass(frozen=True, slots=True)
class Normalised:
    """What one payload says: its call events and the parts deliberately ignored."""

    events: tuple[CallEvent, ...] = ()
    ignored: tuple[Ignored, ...] = ()

    def __add__(self, other: Normalised) -> Normalised:
        return Normalised(self.events + other.events, self.ignored + other.ignored)

"""Pure domain of intake_phone: telephony payloads → call events → one ``IntakeItem`` per call.

No I/O, no clock, no settings: time is always a parameter. Adapters
(:mod:`.generic`, :mod:`.ringover`, :mod:`.twilio`, :mod:`.asterisk`, one entry
point in :mod:`.normalise`) turn a raw payload into :class:`CallEvent` values
or raise :class:`PayloadRejected`; :mod:`.assembly` folds a call's events in
any order into a :class:`CallState`; :mod:`.deadlines` says when an open
call is complete on the service's own clock; :mod:`.items` builds the ``IntakeItem``
and :mod:`.perimeter` says whether it is routed.
"""

from services.intake_phone.domain.assembly import (
    DEFAULT_MAX_OPEN,
    CallFacts,
    CallState,
    CallStateCorrupted,
    Completion,
    apply,
    completion,
    due_at,
    facts,
    fold,
    mark_emitted,
)
from services.intake_phone.domain.deadlines import OpenCall, complete, observe, pending
from services.intake_phone.domain.events import (
    CallEvent,
    EventKind,
    Ignored,
    Normalised,
    PayloadRejected,
    Platform,
)
from services.intake_phone.domain.items import item_id, to_intake_item
from services.intake_phone.domain.normalise import ADAPTERS, PLATFORMS, normalise
from services.intake_phone.domain.perimeter import (
    DEFAULT_OUT_OF_PERIMETER_CODES,
    PerimeterDecision,
    perimeter,
)

__all__ = [
    "ADAPTERS",
    "DEFAULT_MAX_OPEN",
    "DEFAULT_OUT_OF_PERIMETER_CODES",
    "PLATFORMS",
    "CallEvent",
    "CallFacts",
    "CallState",
    "CallStateCorrupted",
    "Completion",
    "EventKind",
    "Ignored",
    "Normalised",
    "OpenCall",
    "PayloadRejected",
    "PerimeterDecision",
    "Platform",
    "apply",
    "complete",
    "completion",
    "due_at",
    "facts",
    "fold",
    "item_id",
    "mark_emitted",
    "normalise",
    "observe",
    "pending",
    "perimeter",
    "to_intake_item",
]

"""Call assembly: the events of one call folded into one contact (procedure 4.1, 5.1.1).

Platforms deliver a call's events late, twice, out of order, or not at all.
:class:`CallState` therefore keeps the *set* of distinct events of the call
(by ``dedupe_key``) and every fact about the call is derived from that set:
folding any permutation of the same events, with any duplicates, gives the
same state. When two events share a dedupe key but differ (a platform bug),
the smaller canonical form is kept, so the choice does not depend on order.
A call keeps at most ``MAX_EVENTS`` distinct events: the earliest ones, the
events that make the call (started, IVR, answered, ended, wrap-up) before the
"other" ones, which are cut first.

Derived facts (:func:`facts`): the start is the earliest *started* event
(else the earliest event); caller, called number and direction come from the
first event that knows them (started events first); a withheld number on any
event hides the caller; the SVI path is the choices in time order; the agent
is the last one named on an answered, ended or wrap-up event; the call is
answered when any event says so; the duration is the one the platform
reported on its last *ended* event, else end minus start; the wrap-up code
and note are the latest non-empty ones.

A call is complete (:func:`completion`) when it has ended and been wrapped
up, or has ended and ``grace`` has passed with no wrap-up, or when no end
arrived ``max_open`` after its start (closed by timeout, still emitted,
flagged). The state is a pydantic model, so ``to_json``/``from_json`` let the
service persist open calls across restarts.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas import UtcDatetime
from services.intake_phone.domain.events import CALL_ID_PATTERN, CallEvent, Direction, Platform

__all__ = [
    "DEFAULT_MAX_OPEN",
    "MAX_EVENTS",
    "CallFacts",
    "CallState",
    "CallStateCorrupted",
    "Completion",
    "CompletionReason",
    "apply",
    "completion",
    "derive_facts",
    "due_at",
    "facts",
    "fold",
    "mark_emitted",
]

MAX_EVENTS: Final = 500
DEFAULT_MAX_OPEN: Final = dt.timedelta(hours=4)

CompletionReason = Literal["ended_and_wrapped_up", "ended_grace_elapsed", "no_end_timeout"]


class CallStateCorrupted(ValueError):
    """A persisted call state could not be read back."""


class CallState(BaseModel):
    """The distinct events of one call so far, and when its item was emitted, if it was."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform: Platform
    call_id: str = Field(pattern=CALL_ID_PATTERN)
    events: tuple[CallEvent, ...] = ()
    emitted_at: UtcDatetime | None = None

    @model_validator(mode="after")
    def _one_call_in_order(self) -> CallState:
        if any((e.platform, e.call_id) != (self.platform, self.call_id) for e in self.events):
            raise ValueError("every event must belong to this call")
        if list(self.events) != sorted(self.events, key=CallEvent.sort_key):
            raise ValueError("events must be in time order")
        if len({e.dedupe_key for e in self.events}) != len(self.events):
            raise ValueError("events must have distinct dedupe keys")
        return self

    @classmethod
    def empty(cls, platform: Platform, call_id: str) -> CallState:
        """The state of a call of which nothing is known yet."""
        return cls(platform=platform, call_id=call_id)

    def to_json(self) -> str:
        """Serialise for the store (open calls survive a restart of the service)."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, data: str | bytes) -> CallState:
        """Read back a state written by :meth:`to_json`."""
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise CallStateCorrupted("stored call state is not valid") from exc


def apply(state: CallState, event: CallEvent) -> CallState:
    """Fold one event into the call's state: idempotent, commutative, order-tolerant.

    Rule of procedure 4.1 (each call is recorded once): a duplicate or retried
    event (same dedupe key) changes nothing; the events are kept sorted by
    time, so the order of arrival never matters. Raises ``ValueError`` for an
    event of another call.
    """
    if (event.platform, event.call_id) != (state.platform, state.call_id):
        raise ValueError("event belongs to another call")
    events = list(state.events)
    for index, known in enumerate(events):
        if known.dedupe_key == event.dedupe_key:
            if known == event or _canonical(known) <= _canonical(event):
                return state
            del events[index]
            break
    events.append(event)
    if len(events) > MAX_EVENTS:
        events.sort(key=_keep_first)
        del events[MAX_EVENTS:]
    events.sort(key=CallEvent.sort_key)
    return state.model_copy(update={"events": tuple(events)})


def _keep_first(event: CallEvent) -> tuple[bool, tuple[object, ...]]:
    """Which events a call over the cap keeps: those that make the call (started, IVR,
    answered, ended, wrap-up) before the noise ("other": ring attempts, queue updates),
    the earliest first. A queue ringing ten agents for five minutes used to fill the cap
    with noise and drop the answer, the end and the wrap-up: the call was never routed."""
    return (event.kind == "other", event.sort_key())


def fold(events: Iterable[CallEvent], state: CallState | None = None) -> CallState:
    """Fold events of one call, starting from ``state`` or from the first event's call.

    Rule of procedure 4.1: the same as applying the events one by one; raises
    ``ValueError`` when there is neither an event nor a state.
    """
    for event in events:
        if state is None:
            state = CallState.empty(event.platform, event.call_id)
        state = apply(state, event)
    if state is None:
        raise ValueError("nothing to fold")
    return state


def _canonical(event: CallEvent) -> str:
    return event.model_dump_json()


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the events of a call say about it (rules in the module docstring)."""

    started_at: dt.datetime
    last_event_at: dt.datetime
    ended_at: dt.datetime | None
    wrapped_up_at: dt.datetime | None
    direction: Direction | None
    caller: str | None
    caller_hidden: bool
    called: str | None
    internal: bool
    ivr_path: tuple[str, ...]
    agent: str | None
    answered: bool
    voicemail: bool
    duration_s: int
    wrap_up_code: str | None
    wrap_up_note: str | None


# The last states whose facts were derived, by identity: one batch asks for the same
# state's facts three or four times (observe, due, perimeter, item). Each entry keeps its
# state alive, so an id is never reused while it is in here.
_FACTS_SEEN: OrderedDict[int, tuple[CallState, CallFacts | None]] = OrderedDict()
_FACTS_SEEN_MAX = 1024


def facts(state: CallState) -> CallFacts | None:
    """The facts of a call (:func:`derive_facts`), derived once per state object."""
    seen = _FACTS_SEEN.get(id(state))
    if seen is not None and seen[0] is state:
        return seen[1]
    found = derive_facts(state)
    _FACTS_SEEN[id(state)] = (state, found)
    if len(_FACTS_SEEN) > _FACTS_SEEN_MAX:
        _FACTS_SEEN.popitem(last=False)
    return found


def derive_facts(state: CallState) -> CallFacts | None:
    """Derive the facts of a call from its events; ``None`` while it has no event.

    Rule of procedure 5.1.1 (what a call contact records): caller, called
    number, SVI path, agent, answered, duration and wrap-up, each derived
    from the set of events so that arrival order never changes the result.
    """
    events = state.events
    if not events:
        return None
    started = [e for e in events if e.kind == "started"]
    ended = [e for e in events if e.kind == "ended"]
    wraps = [e for e in events if e.kind == "wrap_up"]
    by_start = started + [e for e in events if e.kind != "started"]
    started_at = (started or events)[0].at
    ended_at = ended[-1].at if ended else None
    reported = [e.duration_s for e in ended if e.duration_s is not None]
    if reported:
        duration = reported[-1]
    else:
        end = ended_at or events[-1].at
        duration = max(0, int((end - started_at).total_seconds()))
    hidden = any(e.caller_hidden for e in events)
    agents = [e.agent for e in events if e.agent and e.kind in {"answered", "ended", "wrap_up"}]
    return CallFacts(
        started_at=started_at,
        last_event_at=events[-1].at,
        ended_at=ended_at,
        wrapped_up_at=wraps[-1].at if wraps else None,
        direction=next((e.direction for e in by_start if e.direction), None),
        caller=None if hidden else next((e.caller for e in by_start if e.caller), None),
        caller_hidden=hidden,
        called=next((e.called for e in by_start if e.called), None),
        internal=any(e.internal for e in events),
        ivr_path=tuple(e.ivr_choice for e in events if e.kind == "ivr" and e.ivr_choice),
        agent=agents[-1] if agents else next((e.agent for e in events if e.agent), None),
        answered=any(e.answered for e in events),
        voicemail=any(e.voicemail for e in events),
        duration_s=min(duration, 7 * 24 * 3600),
        wrap_up_code=next((e.wrap_up_code for e in reversed(wraps) if e.wrap_up_code), None),
        wrap_up_note=next((e.wrap_up_note for e in reversed(wraps) if e.wrap_up_note), None),
    )


@dataclass(frozen=True, slots=True)
class Completion:
    """Why and from when a call is complete; ``closed_by_timeout`` flags a call with no end."""

    reason: CompletionReason
    at: dt.datetime

    @property
    def closed_by_timeout(self) -> bool:
        """True when no end arrived and the call was closed by the max-open timeout."""
        return self.reason == "no_end_timeout"


def _pending(state: CallState, grace: dt.timedelta, max_open: dt.timedelta) -> Completion | None:
    found = facts(state)
    if found is None or state.emitted_at is not None:
        return None
    if found.ended_at is not None and found.wrapped_up_at is not None:
        return Completion("ended_and_wrapped_up", max(found.ended_at, found.wrapped_up_at))
    if found.ended_at is not None:
        return Completion("ended_grace_elapsed", found.ended_at + grace)
    return Completion("no_end_timeout", found.started_at + max_open)


def due_at(
    state: CallState, grace: dt.timedelta, *, max_open: dt.timedelta = DEFAULT_MAX_OPEN
) -> dt.datetime | None:
    """When the call will be complete if no other event arrives; ``None`` if emitted or empty.

    Rule of procedure 4.1 (no call is lost): the service stores this instant
    with the open call and sweeps open calls whose instant has passed, so a
    call whose end never arrives is still closed and emitted.
    """
    pending = _pending(state, grace, max_open)
    return None if pending is None else pending.at


def completion(
    state: CallState,
    now: dt.datetime,
    grace: dt.timedelta,
    *,
    max_open: dt.timedelta = DEFAULT_MAX_OPEN,
) -> Completion | None:
    """Say whether the call is complete at ``now``, and why; ``None`` while it is open.

    Rule of issue 6 on procedure 4.1: complete when ended and wrapped up (at
    once, whatever ``now``), when ended and ``grace`` has passed with no
    wrap-up, or when no end arrived ``max_open`` after the start (closed by
    timeout, still emitted, flagged). An already emitted call is never
    complete again.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    pending = _pending(state, grace, max_open)
    if pending is None:
        return None
    if pending.reason == "ended_and_wrapped_up" or now >= pending.at:
        return pending
    return None


def mark_emitted(state: CallState, at: dt.datetime) -> CallState:
    """Record that the call's item was produced, so that it is never produced twice.

    Rule of procedure 4.1 (a contact is recorded once): late events are still
    folded into the state but :func:`completion` stays ``None``.
    """
    if state.emitted_at is not None:
        return state
    return state.model_copy(update={"emitted_at": at.astimezone(dt.UTC)})

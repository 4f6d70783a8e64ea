"""When an open call is complete, counted on the service's own clock (procedure 4.1; issue 6).

:func:`..assembly.completion` reads the platform's event times: right for
what a call *was* (start, end, duration), wrong for deciding *when to stop
waiting*. A platform that retries a webhook an hour late, a clock that is a
few minutes off, or a replay of old events would close a call before its
wrap-up arrived, or the instant its first event is seen. So the service
waits on its own clock, from when it learned each fact:

==========================  =================================================
the call has                it is complete
==========================  =================================================
an end and a wrap-up        ``settle`` after its last new event
                            (``ended_and_wrapped_up``; at once when
                            ``settle`` is zero)
an end, no wrap-up          ``grace`` after the service first saw an end
                            (``ended_grace_elapsed``)
no end                      ``max_open`` after the service first saw the call
                            (``no_end_timeout``: still emitted, flagged)
==========================  =================================================

The short ``settle`` quiet period lets the stragglers of a call delivered
out of order (an SVI choice retried after the hang-up and the wrap-up) be
folded in before the item goes out. ``first_seen_at``, ``ended_seen_at`` and
``changed_at`` are stored with the open call, so the deadlines survive a
restart of the service unchanged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from services.intake_phone.domain.assembly import CallState, Completion, facts

__all__ = ["OpenCall", "complete", "observe", "pending"]


@dataclass(frozen=True, slots=True)
class OpenCall:
    """A call not yet emitted: its folded events and when the service saw what (UTC).

    ``changed_at`` is when the last new event was folded (``first_seen_at``
    when left unset).
    """

    state: CallState
    first_seen_at: dt.datetime
    ended_seen_at: dt.datetime | None = None
    changed_at: dt.datetime | None = None


def _utc(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None:
        raise ValueError("times must be aware datetimes")
    return at.astimezone(dt.UTC)


def observe(state: CallState, now: dt.datetime, previous: OpenCall | None = None) -> OpenCall:
    """Record the call's new state, noting when the service first saw it, its end, its change.

    Rule of issue 6 on procedure 4.1 (module docstring): ``first_seen_at`` is
    kept from ``previous`` (else ``now``); ``ended_seen_at`` is set to ``now``
    the first time the folded events include an end, and never moves again;
    ``changed_at`` becomes ``now`` (call it only when the state changed).
    """
    now = _utc(now)
    if previous is None:
        previous = OpenCall(state=state, first_seen_at=now)
    ended_seen_at = previous.ended_seen_at
    found = facts(state)
    if ended_seen_at is None and found is not None and found.ended_at is not None:
        ended_seen_at = now
    return replace(previous, state=state, ended_seen_at=ended_seen_at, changed_at=now)


def pending(
    call: OpenCall,
    grace: dt.timedelta,
    max_open: dt.timedelta,
    *,
    settle: dt.timedelta = dt.timedelta(0),
) -> Completion | None:
    """How and from when the call will be complete if nothing else arrives; ``None`` if empty.

    Rule of issue 6 on procedure 4.1 (module docstring). The service stores
    ``at`` as the open call's due time and sweeps the calls whose time passed;
    an already emitted state is never pending again.
    """
    found = facts(call.state)
    if found is None or call.state.emitted_at is not None:
        return None
    if found.ended_at is not None:
        ended_seen = call.ended_seen_at or call.first_seen_at
        if found.wrapped_up_at is not None:
            changed = max(ended_seen, call.changed_at or call.first_seen_at)
            return Completion("ended_and_wrapped_up", changed + settle)
        return Completion("ended_grace_elapsed", ended_seen + grace)
    return Completion("no_end_timeout", call.first_seen_at + max_open)


def complete(
    call: OpenCall,
    now: dt.datetime,
    grace: dt.timedelta,
    max_open: dt.timedelta,
    *,
    settle: dt.timedelta = dt.timedelta(0),
) -> Completion | None:
    """Say whether the call is complete at ``now`` (service clock), and why; else ``None``.

    Rule of issue 6 on procedure 4.1: ended and wrapped up → once ``settle``
    passed since its last new event (at once when zero); ended without
    wrap-up → once ``grace`` passed since the end was seen; no end → once
    ``max_open`` passed since the call was first seen (closed by timeout).
    """
    found = pending(call, grace, max_open, settle=settle)
    if found is None or _utc(now) < found.at:
        return None
    return found

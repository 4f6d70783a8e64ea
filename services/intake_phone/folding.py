"""A batch of payloads folded into the calls they touch, in memory, before one write.

The service reads every call a batch touches (one query for the open ones,
one for the emitted ones), then :class:`BatchFold` folds each payload's events
in arrival order exactly as if the payloads had been recorded one after the
other: a second payload about a call sees the state the first one left, a
payload about a call emitted by an earlier payload of the batch is *late*.
What the batch changes is collected in :class:`Changes` and written by the
service in a handful of set-wise statements, in the same transaction. No I/O
here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from schemas.topics import INTAKE_ITEMS
from services.common.logging import get_logger
from services.common.outbox import OutboxMessage
from services.intake_phone.adapters.calls import CallKey, Emitted, OpenRow, StoredCall
from services.intake_phone.dead_letters import dead_letter, outbox_message
from services.intake_phone.domain import (
    CallEvent,
    CallState,
    CallStateCorrupted,
    Completion,
    OpenCall,
    complete,
    fold,
    observe,
    pending,
    perimeter,
    to_intake_item,
)
from services.intake_phone.settings import IntakePhoneSettings

__all__ = [
    "BatchFold",
    "CallPolicy",
    "Changes",
    "Emission",
    "IngestOutcome",
    "calls_of",
    "group_by_call",
]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class CallPolicy:
    """Completion deadlines and perimeter rules (operations tune them through settings)."""

    grace: dt.timedelta
    max_open: dt.timedelta
    settle: dt.timedelta = dt.timedelta(0)
    own_numbers: tuple[str, ...] = ()
    internal_prefixes: tuple[str, ...] = ()
    out_of_perimeter_codes: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: IntakePhoneSettings) -> CallPolicy:
        """The policy the settings describe."""
        return cls(
            grace=settings.grace,
            max_open=settings.max_open,
            settle=dt.timedelta(seconds=settings.settle_s),
            own_numbers=settings.own_numbers,
            internal_prefixes=settings.internal_prefixes,
            out_of_perimeter_codes=settings.out_of_perimeter_codes,
        )

    def complete(self, call: OpenCall, now: dt.datetime) -> Completion | None:
        """Whether the call is complete at ``now`` (procedure 4.1, :mod:`..domain.deadlines`)."""
        return complete(call, now, self.grace, self.max_open, settle=self.settle)

    def due(self, call: OpenCall, now: dt.datetime) -> dt.datetime:
        """When the sweeper must look at the call again."""
        found = pending(call, self.grace, self.max_open, settle=self.settle)
        return now if found is None else found.at


@dataclass(frozen=True, slots=True)
class Emission:
    """One completed call: routed (its item is in the outbox) or counted out of perimeter."""

    platform: str
    call_id: str
    item_id: str
    routed: bool
    reason: str
    completion: str


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What recording one payload's events did (counts only: no call data)."""

    calls: int = 0
    folded: int = 0
    duplicates: int = 0
    late: int = 0
    emitted: tuple[Emission, ...] = ()


@dataclass(slots=True)
class Changes:
    """What a batch writes: open rows to delete, to save (upsert), emissions, outbox messages."""

    deleted: list[CallKey] = field(default_factory=list)
    saved: list[OpenRow] = field(default_factory=list)
    emitted: list[tuple[CallKey, Emitted]] = field(default_factory=list)
    outbox: list[OutboxMessage] = field(default_factory=list)


def group_by_call(events: Sequence[CallEvent]) -> dict[CallKey, list[CallEvent]]:
    """A payload's events by call, in call-key order (the order calls are handled in)."""
    by_call: dict[CallKey, list[CallEvent]] = {}
    for event in events:
        by_call.setdefault((event.platform, event.call_id), []).append(event)
    return dict(sorted(by_call.items()))


def calls_of(payloads: Sequence[dict[CallKey, list[CallEvent]]]) -> list[CallKey]:
    """Every call a batch touches, once, in key order."""
    return sorted({key for payload in payloads for key in payload})


@dataclass(slots=True)
class _Call:
    stored: bool  # a row exists in the store at the start of the batch
    current: OpenCall | None  # the call as open now; None: not open
    emitted: bool  # emitted before or during the batch
    rewrite: bool = False  # its row must be saved (still open) or deleted (not open now)


class BatchFold:
    """Folds a batch's payloads into the calls read from the store, collecting the changes."""

    def __init__(
        self,
        policy: CallPolicy,
        now: dt.datetime,
        stored: dict[CallKey, StoredCall],
        emitted: set[CallKey],
    ) -> None:
        self._policy = policy
        self._now = now
        self._stored = stored
        self._emitted = emitted
        self._calls: dict[CallKey, _Call] = {}
        self.changes = Changes()

    def ingest(self, payload: dict[CallKey, list[CallEvent]]) -> IngestOutcome:
        """Fold one payload (events by call) as if it were recorded alone, after the previous."""
        results = [self._fold(key, events) for key, events in payload.items()]
        return IngestOutcome(
            calls=len(results),
            folded=sum(r.folded for r in results),
            duplicates=sum(r.duplicates for r in results),
            late=sum(r.late for r in results),
            emitted=tuple(e for r in results for e in r.emitted),
        )

    def sweep(self, key: CallKey) -> Emission | None:
        """Emit a call whose due time passed if it is complete now; else move its due time."""
        run = self._call(key)
        if run.current is None:
            return None  # emitted meanwhile, or its unreadable row was set aside
        done = self._policy.complete(run.current, self._now)
        if done is not None:
            return self._emit(key, run, run.current, done)
        run.rewrite = True  # not complete after all (policy changed): its new due time
        return None

    def finish(self) -> Changes:
        """The changes of the whole batch, ready to write."""
        changes = self.changes
        for key, run in self._calls.items():
            if not run.rewrite:
                continue
            if run.current is not None:
                changes.saved.append(OpenRow(run.current, self._policy.due(run.current, self._now)))
            elif run.stored:
                changes.deleted.append(key)
        return changes

    def _call(self, key: CallKey) -> _Call:
        run = self._calls.get(key)
        if run is None:
            stored = self._stored.get(key)
            current = None if stored is None else self._load(stored)
            run = _Call(stored is not None, current, key in self._emitted)
            run.rewrite = stored is not None and current is None  # an unreadable row
            self._calls[key] = run
        return run

    def _fold(self, key: CallKey, events: list[CallEvent]) -> IngestOutcome:
        run = self._call(key)
        previous = run.current
        if previous is None and run.emitted:
            return IngestOutcome(calls=1, late=len(events))
        before = CallState.empty(events[0].platform, key[1]) if previous is None else previous.state
        state = fold(events, before)
        if previous is not None and state == previous.state:
            return IngestOutcome(calls=1, duplicates=len(events))
        folded = max(0, len(state.events) - len(before.events)) or 1
        call = observe(state, self._now, previous)
        done = self._policy.complete(call, self._now)
        if done is not None:
            emission = self._emit(key, run, call, done)
            return IngestOutcome(1, folded, len(events) - folded, 0, (emission,))
        run.current, run.rewrite = call, True
        return IngestOutcome(1, folded, len(events) - folded)

    def _load(self, stored: StoredCall) -> OpenCall | None:
        try:
            return stored.open_call()
        except CallStateCorrupted:
            # Never loop on an unreadable row: keep its bytes in the DLQ, start afresh.
            ref = f"store/phone_open_calls/{stored.platform}/{stored.call_id}"
            letter = dead_letter(
                "corrupted_call_state",
                "a stored open call could not be read back",
                ref,
                stored.state_json.encode(),
                self._now,
            )
            self.changes.outbox.append(outbox_message(letter))
            log.error("call.state_corrupted", platform=stored.platform, call_id=stored.call_id)
            return None

    def _emit(self, key: CallKey, run: _Call, call: OpenCall, done: Completion) -> Emission:
        state, policy = call.state, self._policy
        decision = perimeter(
            state,
            policy.own_numbers,
            policy.internal_prefixes,
            out_of_perimeter_codes=policy.out_of_perimeter_codes,
        )
        item = to_intake_item(state, closed_by_timeout=done.closed_by_timeout)
        if item is None:
            raise ValueError("a call with no event cannot be emitted")
        if decision.in_perimeter:
            self.changes.outbox.append(
                OutboxMessage(
                    topic=INTAKE_ITEMS, key=item.partition_key(), payload=item.model_dump_json()
                )
            )
        emitted = Emitted(
            item.item_id, decision.in_perimeter, decision.reason, done.reason, self._now
        )
        self.changes.emitted.append((key, emitted))
        run.current, run.emitted, run.rewrite = None, True, True
        return Emission(
            state.platform,
            state.call_id,
            item.item_id,
            decision.in_perimeter,
            decision.reason,
            done.reason,
        )

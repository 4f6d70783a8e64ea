"""intake_phone application layer: load → fold (domain) → save or emit, one transaction.

Both entry points (webhook, ``telephony.raw.v1``) end in :meth:`PhoneService.ingest`:
the events of each call are folded into its stored state and saved in the
transaction that records them, so an open call survives a crash. A call that
becomes complete (:mod:`..domain.deadlines`) is *emitted* in that same
transaction: its ``IntakeItem`` goes into the transactional outbox (when in
the perimeter), the call is recorded in ``phone_emitted_calls`` (primary key:
never twice) and its open row is deleted. The sweeper emits calls whose
deadline passed the same way. Nothing here waits on Kafka: the outbox relay
publishes after the commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from schemas import DeadLetter
from schemas.topics import INTAKE_ITEMS
from services.common.logging import get_logger
from services.common.outbox import OutboxMessage, add_to_outbox
from services.common.retry import retry_store
from services.common.store.engine import Store
from services.intake_phone.adapters.calls import CallRepository, Emitted, StoredCall
from services.intake_phone.dead_letters import SERVICE, dead_letter, outbox_message
from services.intake_phone.domain import (
    CallEvent,
    CallState,
    CallStateCorrupted,
    Completion,
    Normalised,
    OpenCall,
    PayloadRejected,
    complete,
    fold,
    normalise,
    observe,
    pending,
    perimeter,
    to_intake_item,
)
from services.intake_phone.metrics import PhoneMetrics
from services.intake_phone.settings import IntakePhoneSettings

__all__ = ["SERVICE", "CallPolicy", "Emission", "IngestOutcome", "PhoneService"]

DEAD_LETTER_CONSUMER = "intake_phone.dead_letters"
Clock = Callable[[], dt.datetime]
log = get_logger(__name__)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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


class PhoneService:
    """Folds call events into stored open calls and emits each completed call once."""

    def __init__(
        self,
        store: Store,
        policy: CallPolicy,
        metrics: PhoneMetrics,
        *,
        clock: Clock = _utcnow,
        on_outbox: Callable[[], None] = lambda: None,
        retry_max_s: float = 30.0,
    ) -> None:
        self._store = store
        self._policy = policy
        self._metrics = metrics
        self._clock = clock
        self._on_outbox = on_outbox
        self._retry_max_s = retry_max_s

    async def ingest_payload(
        self, platform: str, payload: bytes, *, received_at: dt.datetime
    ) -> IngestOutcome:
        """Normalise one raw payload (procedure 5.1.1) and record its events.

        Raises the domain's ``PayloadRejected`` for a payload no adapter can
        read; ignored parts (unknown event types) are counted, not errors.
        """
        normalised = normalise(platform, payload, received_at=received_at)
        self.count_ignored(platform, normalised)
        return await self.ingest(normalised.events)

    def count_ignored(self, platform: str, normalised: Normalised) -> None:
        """Count the parts of a payload an adapter deliberately ignored (issue 6)."""
        for ignored in normalised.ignored:
            self._metrics.ignored.labels(platform, ignored.reason_code).inc()

    async def ingest(self, events: Sequence[CallEvent]) -> IngestOutcome:
        """Fold events into their calls and save them, emitting complete calls (4.1, 5.1.1).

        One transaction for the whole payload, retried on transient store
        errors; calls are handled in key order (no lock-order deadlock). An
        event of an already emitted call is *late*: counted, not folded.
        """
        by_call: dict[tuple[str, str], list[CallEvent]] = {}
        for event in events:
            by_call.setdefault((event.platform, event.call_id), []).append(event)
        if not by_call:
            return IngestOutcome()

        async def attempt() -> list[IngestOutcome]:
            now = self._clock()
            async with self._store.transaction() as connection:
                repo = CallRepository(connection, postgres=self._store.is_postgres)
                return [
                    await self._fold_call(connection, repo, key, by_call[key], now)
                    for key in sorted(by_call)
                ]

        results = await retry_store(attempt, max_seconds=self._retry_max_s)
        outcome = IngestOutcome(
            calls=len(results),
            folded=sum(r.folded for r in results),
            duplicates=sum(r.duplicates for r in results),
            late=sum(r.late for r in results),
            emitted=tuple(e for r in results for e in r.emitted),
        )
        self._after_commit(next(iter(by_call))[0], outcome)
        return outcome

    async def _fold_call(
        self,
        connection: AsyncConnection,
        repo: CallRepository,
        key: tuple[str, str],
        events: list[CallEvent],
        now: dt.datetime,
    ) -> IngestOutcome:
        platform, call_id = key
        await repo.lock_call(platform, call_id)
        stored = await repo.open_call(platform, call_id)
        previous = None if stored is None else await self._load(connection, repo, stored, now)
        if previous is None and await repo.emitted(platform, call_id) is not None:
            return IngestOutcome(calls=1, late=len(events))
        empty = CallState.empty(events[0].platform, call_id)
        before = empty if previous is None else previous.state
        state = fold(events, before)
        if previous is not None and state == previous.state:
            return IngestOutcome(calls=1, duplicates=len(events))
        folded = max(0, len(state.events) - len(before.events)) or 1
        call = observe(state, now, previous)
        done = self._complete(call, now)
        if done is not None:
            emission = await self._emit(connection, repo, call, done, now)
            return IngestOutcome(1, folded, len(events) - folded, 0, (emission,))
        await repo.save_open(call, due_at=self._due(call, now), new=previous is None)
        return IngestOutcome(1, folded, len(events) - folded)

    def _complete(self, call: OpenCall, now: dt.datetime) -> Completion | None:
        policy = self._policy
        return complete(call, now, policy.grace, policy.max_open, settle=policy.settle)

    def _due(self, call: OpenCall, now: dt.datetime) -> dt.datetime:
        policy = self._policy
        found = pending(call, policy.grace, policy.max_open, settle=policy.settle)
        return now if found is None else found.at

    async def _load(
        self,
        connection: AsyncConnection,
        repo: CallRepository,
        stored: StoredCall,
        now: dt.datetime,
    ) -> OpenCall | None:
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
                now,
            )
            await add_to_outbox(connection, [outbox_message(letter)], now)
            await repo.delete_open(stored.platform, stored.call_id)
            log.error("call.state_corrupted", platform=stored.platform, call_id=stored.call_id)
            return None

    async def _emit(
        self,
        connection: AsyncConnection,
        repo: CallRepository,
        call: OpenCall,
        done: Completion,
        now: dt.datetime,
    ) -> Emission:
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
            message = OutboxMessage(
                topic=INTAKE_ITEMS, key=item.partition_key(), payload=item.model_dump_json()
            )
            await add_to_outbox(connection, [message], now)
        emitted = Emitted(item.item_id, decision.in_perimeter, decision.reason, done.reason, now)
        await repo.record_emitted(state.platform, state.call_id, emitted)
        await repo.delete_open(state.platform, state.call_id)
        return Emission(
            state.platform,
            state.call_id,
            item.item_id,
            decision.in_perimeter,
            decision.reason,
            done.reason,
        )

    async def sweep(self, *, limit: int = 200) -> list[Emission]:
        """Emit the open calls whose deadline passed (grace or max-open timeout, issue 6).

        Rule of procedure 4.1 (no call is lost): each due call is held (a
        call another instance holds is left for the next sweep), re-read,
        re-checked and emitted in one transaction; a call not complete after
        all (the policy changed, or new events came) gets its new due time.
        """

        async def attempt() -> list[Emission]:
            now = self._clock()
            emissions: list[Emission] = []
            async with self._store.transaction() as connection:
                repo = CallRepository(connection, postgres=self._store.is_postgres)
                for platform, call_id in await repo.due(now, limit):
                    if not await repo.lock_call(platform, call_id, wait=False):
                        continue  # another instance is handling this call right now
                    stored = await repo.open_call(platform, call_id)
                    if stored is None:
                        continue  # emitted meanwhile
                    call = await self._load(connection, repo, stored, now)
                    if call is None:
                        continue
                    done = self._complete(call, now)
                    if done is not None:
                        emissions.append(await self._emit(connection, repo, call, done, now))
                        continue
                    await repo.save_open(call, due_at=self._due(call, now), new=False)
            return emissions

        emissions = await retry_store(attempt, max_seconds=self._retry_max_s)
        if emissions:
            self._after_commit(emissions[0].platform, IngestOutcome(emitted=tuple(emissions)))
        return emissions

    async def purge_emitted(self, retention: dt.timedelta) -> int:
        """Forget emitted calls older than ``retention`` (their late events then reopen them)."""
        before = self._clock() - retention
        async with self._store.transaction() as connection:
            return await CallRepository(connection, postgres=self._store.is_postgres).purge_emitted(
                before
            )

    async def dead_letter(
        self, platform: str, payload: bytes, rejected: PayloadRejected, *, source: str
    ) -> DeadLetter:
        """Keep a rejected webhook payload as a ``DeadLetter`` (via the outbox), once per body.

        Rule of issue 6 (malformed payloads get a 4xx and a dead letter):
        the dead letter's id derives from the body's SHA-256, so a platform
        retrying the same bad body records it once.
        """
        now = self._clock()
        digest = hashlib.sha256(payload).hexdigest()
        letter = dead_letter(
            rejected.reason_code,
            rejected.reason,
            f"{source}/{platform}/sha256:{digest}",
            payload,
            now,
        )

        async def attempt() -> bool:
            async with self._store.transaction() as connection:
                repo = CallRepository(connection, postgres=self._store.is_postgres)
                if not await repo.remember_once(
                    DEAD_LETTER_CONSUMER, letter.original_ref, rejected.reason_code[:40], now
                ):
                    return False
                await add_to_outbox(connection, [outbox_message(letter)], now)
                return True

        if await retry_store(attempt, max_seconds=self._retry_max_s):
            self._on_outbox()
        self._metrics.rejected.labels(platform, rejected.reason_code).inc()
        log.warning("payload.dead_lettered", platform=platform, reason_code=rejected.reason_code)
        return letter

    async def counts(self) -> dict[str, int]:
        """Open calls and emitted calls per perimeter reason."""
        async with self._store.transaction() as connection:
            return await CallRepository(connection, postgres=self._store.is_postgres).counts()

    def _after_commit(self, platform: str, outcome: IngestOutcome) -> None:
        metrics = self._metrics
        for name, count in (
            ("folded", outcome.folded),
            ("duplicate", outcome.duplicates),
            ("late", outcome.late),
        ):
            if count:
                metrics.events.labels(platform, name).inc(count)
        for emission in outcome.emitted:
            metrics.calls.labels(
                emission.platform, str(emission.routed).lower(), emission.reason
            ).inc()
            log.info(
                "call.routed" if emission.routed else "call.out_of_perimeter",
                item_id=emission.item_id,
                platform=emission.platform,
                reason=emission.reason,
                completion=emission.completion,
            )
        if any(e.routed for e in outcome.emitted):
            self._on_outbox()

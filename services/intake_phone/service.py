"""intake_phone application layer: load → fold (domain) → save or emit, one transaction.

Both entry points (webhook, ``telephony.raw.v1``) end in :meth:`PhoneService.ingest`:
the events of each call are folded into its stored state and saved in the
transaction that records them, so an open call survives a crash. Concurrent
payloads share that transaction (group commit, :mod:`.group_commit`): the
calls of the batch are locked, read and written set-wise, each payload folded
as if it were recorded alone (:mod:`.folding`), and each caller gets its own
outcome once the batch committed. A call that
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
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection

from schemas import DeadLetter
from services.common.logging import get_logger
from services.common.outbox import add_to_outbox
from services.common.retry import retry_store
from services.common.store.engine import Store
from services.intake_phone.adapters.calls import CallKey, CallRepository
from services.intake_phone.dead_letters import SERVICE, dead_letter, outbox_message
from services.intake_phone.domain import CallEvent, Normalised, PayloadRejected
from services.intake_phone.folding import (
    BatchFold,
    CallPolicy,
    Changes,
    Emission,
    IngestOutcome,
    calls_of,
    group_by_call,
)
from services.intake_phone.group_commit import GroupCommit
from services.intake_phone.metrics import PhoneMetrics

__all__ = ["SERVICE", "CallPolicy", "Emission", "IngestOutcome", "PhoneService"]

Payload = dict[CallKey, list[CallEvent]]

DEAD_LETTER_CONSUMER = "intake_phone.dead_letters"
Clock = Callable[[], dt.datetime]
log = get_logger(__name__)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class WriterConnection:
    """A group-commit writer's store connection, kept for the batches it writes in a row.

    Taken from the pool at the first batch (and again after an error) and
    returned when the writer has nothing left to write: consecutive batches
    skip the pool's checkout and its liveness ping.
    """

    def __init__(self, store: Store) -> None:
        self._engine = store.engine
        self._connection: AsyncConnection | None = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One transaction on the kept connection; on any error the connection is dropped."""
        if self._connection is None:
            self._connection = await self._engine.connect()
        connection = self._connection
        try:
            async with connection.begin():
                yield connection
        except BaseException:
            self._connection = None
            await connection.invalidate()
            await connection.close()
            raise

    async def __aenter__(self) -> WriterConnection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()


class PhoneService:
    """Folds call events into stored open calls and emits each completed call once."""

    def __init__(
        self,
        store: Store,
        policy: CallPolicy,
        metrics: PhoneMetrics,
        *,
        clock: Clock = _utcnow,
        on_outbox: Callable[[Sequence[int]], None] = lambda ids: None,
        retry_max_s: float = 30.0,
        max_batch: int = 256,
        writers: int = 1,
    ) -> None:
        self._store = store
        self._policy = policy
        self._metrics = metrics
        self._clock = clock
        self._on_outbox = on_outbox
        self._retry_max_s = retry_max_s
        self._commits: GroupCommit[WriterConnection, Payload, IngestOutcome] = GroupCommit(
            self._ingest_batch,
            lambda: WriterConnection(store),
            max_items=max_batch,
            # SQLite has one writer at a time anyway (BEGIN IMMEDIATE).
            max_writers=writers if store.is_postgres else 1,
        )

    def count_ignored(self, platform: str, normalised: Normalised) -> None:
        """Count the parts of a payload an adapter deliberately ignored (issue 6)."""
        for ignored in normalised.ignored:
            self._metrics.ignored.labels(platform, ignored.reason_code).inc()

    async def ingest(self, events: Sequence[CallEvent]) -> IngestOutcome:
        """Fold events into their calls and save them, emitting complete calls (4.1, 5.1.1).

        The payload joins the next group commit (one transaction for every
        payload waiting, retried on transient store errors; calls locked in
        key order, so no lock-order deadlock); this returns once it is
        committed, with this payload's own outcome. An event of an already
        emitted call is *late*: counted, not folded.
        """
        payload = group_by_call(events)
        if not payload:
            return IngestOutcome()
        return await self._commits.submit(payload)

    async def _ingest_batch(
        self, writer: WriterConnection, payloads: Sequence[Payload]
    ) -> list[IngestOutcome]:
        keys = calls_of(payloads)

        async def attempt() -> tuple[list[IngestOutcome], list[int]]:
            now = self._clock()
            async with writer.transaction() as connection:
                repo = CallRepository(connection, postgres=self._store.is_postgres)
                await repo.lock_calls(keys)
                stored, emitted = await repo.read_calls(keys)
                batch = BatchFold(self._policy, now, stored, emitted)
                outcomes = [batch.ingest(payload) for payload in payloads]
                written = await self._write(connection, repo, batch.finish(), now)
                return outcomes, written

        outcomes, written = await retry_store(attempt, max_seconds=self._retry_max_s)
        for payload, outcome in zip(payloads, outcomes, strict=True):
            self._after_commit(next(iter(payload))[0], outcome)
        if written:
            self._on_outbox(written)
        return outcomes

    @staticmethod
    async def _write(
        connection: AsyncConnection, repo: CallRepository, changes: Changes, now: dt.datetime
    ) -> list[int]:
        """Write a folded batch's changes; return its outbox row ids."""
        await repo.delete_open_many(changes.deleted)
        await repo.save_open_many(changes.saved)
        await repo.record_emitted_many(changes.emitted)
        return await add_to_outbox(connection, changes.outbox, now)

    async def sweep(self, *, limit: int = 200) -> list[Emission]:
        """Emit the open calls whose deadline passed (grace or max-open timeout, issue 6).

        Rule of procedure 4.1 (no call is lost): each due call is held (a
        call another instance holds is left for the next sweep), re-read,
        re-checked and emitted in one transaction; a call not complete after
        all (the policy changed, or new events came) gets its new due time.
        """

        async def attempt() -> tuple[list[Emission], list[int]]:
            now = self._clock()
            async with self._store.transaction() as connection:
                repo = CallRepository(connection, postgres=self._store.is_postgres)
                # A call another instance (or the writer) holds is left for the next sweep.
                held = await repo.try_lock_calls(await repo.due(now, limit))
                stored, emitted = await repo.read_calls(held)
                batch = BatchFold(self._policy, now, stored, emitted)
                emissions = [e for key in held if (e := batch.sweep(key)) is not None]
                written = await self._write(connection, repo, batch.finish(), now)
            return emissions, written

        emissions, written = await retry_store(attempt, max_seconds=self._retry_max_s)
        if emissions:
            self._after_commit(emissions[0].platform, IngestOutcome(emitted=tuple(emissions)))
        if written:
            self._on_outbox(written)
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

        async def attempt() -> list[int]:
            async with self._store.transaction() as connection:
                repo = CallRepository(connection, postgres=self._store.is_postgres)
                if not await repo.remember_once(
                    DEAD_LETTER_CONSUMER, letter.original_ref, rejected.reason_code[:40], now
                ):
                    return []  # this body was dead-lettered already
                return await add_to_outbox(connection, [outbox_message(letter)], now)

        if written := await retry_store(attempt, max_seconds=self._retry_max_s):
            self._on_outbox(written)
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

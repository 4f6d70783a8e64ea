"""Transactional outbox: write events with the effects, publish them after the commit.

Rows are claimed in id order (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
several relays never publish the same row at once), published and awaited,
then deleted: the table holds only what is still to publish (marked rows used
to pile up, and the claim slowed down as they did). A crash between publishing
and deleting republishes the row: delivery is at least once and every event
carries a deterministic id for consumers to drop duplicates.

Two ways to claim. A service publishes what it has just committed by the row
ids :func:`add_to_outbox` returned (``flush(ids)``): a primary-key lookup,
whatever the table holds. The periodic sweep (``flush()``) claims every pending
row, whoever wrote it: rows left by a crash, a failed publication or another
process. A queue table is all deleted rows until it is vacuumed: with
autovacuum late or off, the sweep's ``ORDER BY id`` read every dead row (a
sequential scan of 10,000 pages after 50,000 routed items, 3-36 ms per claim),
so it stays out of each transaction's path.

Rows go straight to the aiokafka producer under FastStream's broker, in
record batches (:mod:`services.common.outbox_kafka`); with FastStream's
in-memory test broker, which has no aiokafka producer, rows still go through
``broker.publish``.

A row the broker can never take (larger than the producer's
``KAFKA_MAX_REQUEST_SIZE``, or than the broker's own ``message.max.bytes``:
1 MiB on a default Apache Kafka, while an item's text may hold a million
characters) would fail every publication after it, for ever: every later row
of the service would wait behind it. Such a row is *parked* instead: it stays
in the table with ``parked_at`` and its reason, the claims skip it, and a
``DeadLetter`` (reason ``outbox_row_too_large``, the row's first 64 KiB) goes
to the DLQ through the outbox itself, so ops see it where they look for bad
input. ``aiguillage outbox parked`` lists parked rows, ``aiguillage outbox
release`` puts them back in the queue once the broker's limit is raised.

The rows after a parked one, its key's included, are still published: a
released row then reaches Kafka after them, out of its key's order. That is
chosen, not overlooked. What grows that large is an intake item's text (a long
letter), and a customer's next contacts are independent items that should be
routed now, not held until an operator acts; holding the key would also hold
every later event of that customer's dossiers. The dead letter says which row
and key; a consumer reading a released row gets it as a late duplicate-free
event (ids are deterministic) and applies it by its own timestamps.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from faststream.exceptions import IncorrectState
from faststream.kafka import KafkaBroker
from pydantic import BaseModel
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.topics import DEAD_LETTERS
from services.common.dlq import build_dead_letter
from services.common.logging import get_logger
from services.common.metrics import metrics
from services.common.outbox_kafka import TOO_LARGE, raw_producer, send_batches
from services.common.retry import OUTAGE
from services.common.store.engine import Store
from services.common.store.tables import outbox

__all__ = [
    "OutboxMessage",
    "OutboxRelay",
    "add_to_outbox",
    "document_outbox_topics",
    "publish_pending",
]

log = get_logger(__name__)

PARKED_EXCERPT_BYTES = 64 * 1024  # of a parked row, in its dead letter (the row stays whole)


class OutboxMessage(BaseModel):
    """One message to publish: topic, partition key and contract."""

    topic: str
    key: str | None
    payload: str


_INSERT_UNNEST = sa.text(  # ids follow the messages' order: the publication order
    "INSERT INTO outbox (topic, key, payload, created_at) "
    "SELECT topic, key, payload, CAST(:now AS timestamptz) FROM unnest("
    "CAST(:topics AS varchar[]), CAST(:keys AS varchar[]), CAST(:payloads AS text[])"
    ") WITH ORDINALITY AS message(topic, key, payload, n) ORDER BY n RETURNING id"
)


async def add_to_outbox(
    connection: AsyncConnection, messages: Iterable[OutboxMessage], now: dt.datetime
) -> list[int]:
    """Insert messages into the outbox inside the caller's transaction; return their row ids.

    Once the transaction is committed, ``relay.flush(ids)`` publishes them
    without scanning the queue.
    """
    rows = [(m.topic, m.key, m.payload) for m in messages]
    if not rows:
        return []
    if connection.dialect.name == "postgresql":
        # One statement text whatever the count, prepared once: an INSERT ... RETURNING of
        # n rows is otherwise rendered as n VALUES tuples, a new statement per batch size.
        topics, keys, payloads = (list(column) for column in zip(*rows, strict=True))
        inserted = await connection.execute(
            _INSERT_UNNEST, {"topics": topics, "keys": keys, "payloads": payloads, "now": now}
        )
    else:
        inserted = await connection.execute(
            outbox.insert().returning(outbox.c.id),
            [{"topic": t, "key": k, "payload": p, "created_at": now} for t, k, p in rows],
        )
    return list(inserted.scalars())


def document_outbox_topics(
    broker: KafkaBroker, service: str, topics: Mapping[str, tuple[Any, str]]
) -> None:
    """Declare, for the service's AsyncAPI document, what it publishes outside FastStream.

    The outbox relay and the dead-letter publisher write to the producer
    directly, so FastStream never sees these publications; ``topics`` maps each
    topic to its contract and a description. The publishers declared are never
    used to send.
    """
    for topic, (contract, description) in topics.items():
        broker.publisher(
            topic, title=f"{service}/{topic}", description=description, schema=contract
        )


_ID_ARRAY = postgresql.ARRAY(sa.BigInteger)


def _ids(ids: list[int]) -> sa.BindParameter[Any]:
    return sa.bindparam("ids", ids, type_=_ID_ARRAY)


class OutboxRelay:
    """Publishes pending outbox rows to Kafka, in order, and deletes them once acknowledged."""

    def __init__(
        self,
        store: Store,
        broker: KafkaBroker,
        *,
        service: str = "aiguillage",
        batch_size: int = 500,
    ) -> None:
        self._store = store
        self._broker = broker
        self._service = service
        self._batch_size = batch_size
        self._lock = asyncio.Lock()
        self._behind = False  # a publication failed: rows older than the next ones may wait

    async def flush(self, ids: Collection[int] | None = None) -> int:
        """Publish pending rows; return how many were published.

        With ``ids`` (rows this process has just committed), only those rows,
        claimed by primary key; those another relay holds or has already
        published are skipped. Without, every pending row (the sweep). After a
        publication failed, ``flush(ids)`` sweeps instead until a sweep went
        through: the rows the failure left are older than these, and a key's
        events must reach Kafka in order (a dossier opened before it is closed).
        """
        async with self._lock:
            try:
                if ids is not None and not self._behind:
                    return await self._publish_ids(sorted(set(ids)))
                published = await self._sweep()
            except BaseException:
                self._behind = True
                raise
            self._behind = False
            return published

    async def publish_committed(self, ids: Collection[int]) -> bool:
        """Publish the rows a transaction of this process has just committed; never raise
        for an unavailable broker or store (False, logged): the commit stands and the
        periodic sweep publishes the rows, so a failed publication is never the caller's
        error (raising would redeliver a handled message or fail a pass that succeeded)."""
        if not ids:
            return True
        try:
            await self.flush(ids)
        except OUTAGE as error:
            log.warning("outbox.publish_failed", error=type(error).__name__, rows=len(ids))
            return False
        except IncorrectState:  # the broker is stopping: the next start's sweep has them
            log.info("outbox.publish_after_broker_stop", rows=len(ids))
            return False
        return True

    async def _publish_ids(self, ordered: list[int]) -> int:
        total = 0
        for start in range(0, len(ordered), self._batch_size):
            total += await self._publish_batch(ordered[start : start + self._batch_size])
        return total

    async def _sweep(self) -> int:
        total = 0
        while True:
            published = await self._publish_batch(None)
            total += published
            if published < self._batch_size:
                return total

    def _claim(self, ids: list[int] | None) -> sa.Select[Any]:
        query = (
            sa.select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.payload)
            .where(outbox.c.published_at.is_(None), outbox.c.parked_at.is_(None))
            .order_by(outbox.c.id)
        )
        if ids is None:
            return query.limit(self._batch_size)
        if self._store.is_postgres:  # one statement text whatever the count (prepared once)
            return query.where(outbox.c.id == sa.any_(_ids(ids)))
        return query.where(outbox.c.id.in_(ids))

    async def _publish_batch(self, ids: list[int] | None) -> int:
        query = self._claim(ids)
        if self._store.is_postgres:
            # Rows stay locked while they are published: other relays skip them.
            async with self._store.transaction() as connection:
                rows = (await connection.execute(query.with_for_update(skip_locked=True))).all()
                refused = await self._send_all_but_too_large(rows)
                await self._settle(connection, rows, refused, postgres=True)
        else:
            # SQLite has one write lock for the whole file: never hold it while
            # waiting on Kafka. A crash between send and delete republishes (ids dedupe).
            async with self._store.transaction() as connection:
                rows = (await connection.execute(query)).all()
            refused = await self._send_all_but_too_large(rows)
            async with self._store.transaction() as connection:
                await self._settle(connection, rows, refused, postgres=False)
        if rows:
            log.debug("outbox.published", count=len(rows) - len(refused))
        for row in rows:  # committed: now they are parked (a failed commit retries them)
            if row.id in refused:
                log.error(
                    "outbox.row_parked", row_id=row.id, topic=row.topic, reason=refused[row.id]
                )
                metrics.dead_letters.labels(
                    service=self._service, reason_code="outbox_row_too_large"
                ).inc()
        return len(rows)

    async def _send_all_but_too_large(self, rows: Sequence[Any]) -> dict[int, str]:
        """Publish the rows; return those the producer or broker refuses for their size.

        A size refusal of a batch does not say which row: the rows are then
        sent again one by one, in id order (those the batch had delivered
        arrive twice; every event carries its id for consumers to drop the
        copy). Any other error propagates: the rows stay for a retry.
        """
        try:
            await self._send(rows)
        except TOO_LARGE as error:
            log.warning("outbox.batch_too_large", rows=len(rows), error=type(error).__name__)
        else:
            return {}
        refused: dict[int, str] = {}
        for row in rows:
            try:
                await self._send([row])
            except TOO_LARGE as error:
                size = len(row.payload.encode()) + len((row.key or "").encode())
                refused[row.id] = f"{size} bytes for {row.topic}: {type(error).__name__}"
        return refused

    async def _settle(
        self,
        connection: AsyncConnection,
        rows: Sequence[Any],
        refused: Mapping[int, str],
        *,
        postgres: bool,
    ) -> None:
        """Delete the published rows; park the refused ones and dead-letter them."""
        if not refused:
            await self._forget(connection, rows, postgres=postgres)
            return
        await self._forget(connection, [r for r in rows if r.id not in refused], postgres=postgres)
        parked = [row for row in rows if row.id in refused]
        now = dt.datetime.now(dt.UTC)
        for row in parked:
            await connection.execute(
                outbox.update()
                .where(outbox.c.id == row.id)
                .values(parked_at=now, parked_reason=refused[row.id])
            )
        letters = [
            OutboxMessage(
                topic=DEAD_LETTERS,
                key=f"outbox/{row.id}",
                payload=build_dead_letter(
                    self._service,
                    reason_code="outbox_row_too_large",
                    reason=f"the broker refuses this message ({refused[row.id]}); the "
                    "row is parked in the outbox: `aiguillage outbox release` once the "
                    "broker's limit is raised",
                    original_ref=f"outbox/{row.id}",
                    payload=row.payload.encode(),
                    max_payload_bytes=PARKED_EXCERPT_BYTES,
                    original_topic=row.topic,
                    original_key=row.key,
                    now=now,
                ).model_dump_json(),
            )
            for row in parked
            if row.topic != DEAD_LETTERS  # a refused dead letter is parked, not re-lettered
        ]
        await add_to_outbox(connection, letters, now)

    async def _send(self, rows: Sequence[Any]) -> None:
        if (producer := raw_producer(self._broker)) is not None:
            await send_batches(producer, rows)
            return
        # Enqueue in id order (per-partition order is kept), then await every ack.
        pending = [
            await self._broker.publish(
                row.payload.encode(),
                topic=row.topic,
                key=row.key.encode() if row.key else None,
                no_confirm=True,
            )
            for row in rows
        ]
        # (FastStream's in-memory test broker returns the result at once.)
        await asyncio.gather(*(ack for ack in pending if inspect.isawaitable(ack)))

    @staticmethod
    async def _forget(connection: AsyncConnection, rows: Sequence[Any], *, postgres: bool) -> None:
        if not rows:
            return
        ids = [row.id for row in rows]
        if postgres:  # one statement text whatever the count (prepared once)
            await connection.execute(outbox.delete().where(outbox.c.id == sa.any_(_ids(ids))))
        else:
            await connection.execute(outbox.delete().where(outbox.c.id.in_(ids)))

    async def run_forever(self, interval_s: float = 1.0) -> None:
        """Sweep the outbox periodically (rows left by a crash, or by another process)."""
        while True:
            try:
                await self.flush()
            except OUTAGE as error:  # retried next round
                log.warning("outbox.sweep_failed", error=type(error).__name__)
            except IncorrectState:  # the broker is not connected (yet, or any more)
                log.info("outbox.sweep_waits_for_the_broker")
            await asyncio.sleep(interval_s)


_FINAL_SWEEP_FAILURES: tuple[type[BaseException], ...] = (TimeoutError, *OUTAGE)


async def publish_pending(relay: OutboxRelay, *, timeout_s: float = 5.0) -> int:
    """The last sweep at shutdown, before the broker stops: publish what is still pending.

    Bounded: a broker or store that does not answer within ``timeout_s`` leaves
    the rows where they are, for the next start's sweep (or another instance's).
    """
    try:
        return await asyncio.wait_for(relay.flush(), timeout_s)
    except _FINAL_SWEEP_FAILURES as error:
        log.warning("outbox.final_sweep_failed", error=type(error).__name__)
        return 0

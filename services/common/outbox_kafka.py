"""The outbox relay's Kafka side: rows straight to the aiokafka producer, in record batches.

One record batch per (topic, partition), partitioned by key exactly as the
producer's own default partitioner does (so a key lands where every other
publisher of the pipeline puts it). FastStream's per-message ``publish``
(middlewares, a correlation id per message) cost more than the rest of the
relay. A row the broker can never take raises one of :data:`TOO_LARGE`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from aiokafka.partitioner import murmur2
from faststream.kafka import KafkaBroker

__all__ = ["TOO_LARGE", "RowTooLarge", "raw_producer", "send_batches"]


def raw_producer(broker: KafkaBroker) -> AIOKafkaProducer | None:
    """The connected aiokafka producer under FastStream's broker (None in its test broker)."""
    fast_producer = getattr(broker.config, "producer", None)
    producer = getattr(getattr(fast_producer, "_producer", None), "producer", None)
    return producer if isinstance(producer, AIOKafkaProducer) else None


class RowTooLarge(ValueError):
    """One outbox row does not fit in a record batch of the producer."""

    def __init__(self, row_id: int, size: int) -> None:
        super().__init__(f"outbox row {row_id} ({size} bytes) is larger than a record batch")


# A batch's header and one record's varints, at most: what aiokafka adds to key + value.
_BATCH_OVERHEAD = 61 + 21

# What a broker or producer answers for a record it will never take, whatever the retries.
TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError, RowTooLarge)


async def send_batches(producer: AIOKafkaProducer, rows: Sequence[Any]) -> None:
    """Publish rows as one record batch per (topic, partition), in row order; await the acks.

    A row over the producer's ``max_request_size`` raises :class:`RowTooLarge`
    before anything is sent (aiokafka checks it in ``send`` but lets a batch's
    first record be any size, and tansu takes a record of 20 MB).
    """
    limit = getattr(producer, "_max_request_size", None) or sys.maxsize
    encoded = [(row, row.key.encode() if row.key else b"", row.payload.encode()) for row in rows]
    for row, key, value in encoded:
        if len(key) + len(value) + _BATCH_OVERHEAD > limit:
            raise RowTooLarge(row.id, len(key) + len(value))
    partitions: dict[str, list[int]] = {}
    hashes: dict[bytes, int] = {}
    batches: dict[tuple[str, int], Any] = {}
    acks: list[asyncio.Future[Any]] = []
    for row, key, value in encoded:
        if not key:  # no key, no order to keep: the producer picks the partition
            acks.append(await producer.send(row.topic, value))
            continue
        if (known := partitions.get(row.topic)) is None:
            known = partitions[row.topic] = sorted(await producer.partitions_for(row.topic))
        if (hashed := hashes.get(key)) is None:  # a dossier's task and event share a key
            hashed = hashes[key] = murmur2(key) & 0x7FFFFFFF
        partition = known[hashed % len(known)]  # = DefaultPartitioner()(key, known, known)
        batch = batches.get((row.topic, partition))
        if batch is None or batch.append(key=key, value=value, timestamp=None) is None:
            if batch is not None:  # full: send it, start the next one
                acks.append(await producer.send_batch(batch, row.topic, partition=partition))
            batch = batches[(row.topic, partition)] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise RowTooLarge(row.id, len(key) + len(value))
    for (topic, partition), batch in batches.items():
        acks.append(await producer.send_batch(batch, topic, partition=partition))
    await asyncio.gather(*acks)

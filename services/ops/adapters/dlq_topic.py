"""The dead-letter topic: read every ``DeadLetter`` on it, put a fixed message back.

Reading goes from each partition's log start to its high watermark (from the
fetch responses, right on tansu and Kafka alike) with a group-less consumer,
so listing the DLQ never moves anybody's offsets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka import KafkaBroker
from pydantic import ValidationError

from schemas import DeadLetter
from services.common.lag import kafka_client_options, topic_partitions
from services.common.logging import get_logger
from services.common.settings import ServiceSettings

__all__ = ["DlqContents", "KafkaReplayPublisher", "StoredLetter", "read_dead_letters"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class StoredLetter:
    """A dead letter and where it sits on the DLQ topic."""

    letter: DeadLetter
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class DlqContents:
    """Every distinct dead letter (first copy kept), and what could not be read."""

    letters: tuple[StoredLetter, ...]
    unreadable: int = 0
    duplicates: int = 0


async def read_dead_letters(
    settings: ServiceSettings, topic: str, *, timeout_s: float = 30.0
) -> DlqContents:
    """Read the DLQ topic from its log start to its high watermark."""
    admin = AIOKafkaAdminClient(**kafka_client_options(settings, "aiguillage-dlq"))
    await admin.start()
    try:
        partitions = (await topic_partitions(admin, [topic])).get(topic, [])
    finally:
        await admin.close()
    if not partitions:
        return DlqContents(())
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer = AIOKafkaConsumer(
        **kafka_client_options(settings, "aiguillage-dlq"),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=settings.kafka_max_request_size,
    )
    await consumer.start()
    try:
        starts = await consumer.beginning_offsets(tps)
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, starts[tp])
        records = await _read_to_end(consumer, tps, timeout_s)
    finally:
        await consumer.stop()
    return _parse(records)


async def _read_to_end(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], timeout_s: float
) -> list[tuple[int, int, bytes]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    found: list[tuple[int, int, bytes]] = []
    pending = set(tps)
    while pending:
        if loop.time() > deadline:
            raise TimeoutError(f"DLQ not read to its end within {timeout_s} s")
        batches = await consumer.getmany(*pending, timeout_ms=200)
        for tp, records in batches.items():
            found += [(tp.partition, r.offset, r.value) for r in records if r.value is not None]
        for tp in list(pending):
            mark = consumer.highwater(tp)
            if mark is not None and await consumer.position(tp) >= mark:
                pending.discard(tp)
    return found


def _parse(records: list[tuple[int, int, bytes]]) -> DlqContents:
    letters: dict[str, StoredLetter] = {}
    unreadable = duplicates = 0
    for partition, offset, value in sorted(records, key=lambda r: (r[0], r[1])):
        try:
            letter = DeadLetter.model_validate_json(value)
        except ValidationError:
            unreadable += 1
            log.warning("dlq.unreadable_record", partition=partition, offset=offset)
            continue
        if letter.dead_letter_id in letters:
            duplicates += 1
            continue
        letters[letter.dead_letter_id] = StoredLetter(letter, partition, offset)
    ordered = sorted(letters.values(), key=lambda s: (s.letter.occurred_at, s.partition, s.offset))
    return DlqContents(tuple(ordered), unreadable, duplicates)


class KafkaReplayPublisher:
    """Publishes a replayed message and waits for Kafka's acknowledgement."""

    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker

    async def __call__(
        self, topic: str, key: bytes | None, value: bytes, headers: Mapping[str, str]
    ) -> None:
        """Publish ``value`` on ``topic`` with ``key`` and ``headers``; return once acked."""
        await self._broker.publish(value, topic=topic, key=key, headers=dict(headers))

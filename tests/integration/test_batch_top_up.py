"""A batch topped up with the records fetched meanwhile is acknowledged, or rewound, whole."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from services.common.kafka import top_up_batch
from services.common.settings import ServiceSettings

pytestmark = [pytest.mark.kafka]
TOPIC = "telephony.raw.v1"


async def test_a_failed_topped_up_batch_is_redelivered_whole(
    kafka: str, topics: ServiceSettings
) -> None:
    # Seven records on each of three partitions, all there before the consumer starts.
    sent = [f"p{p}-{n}".encode() for p in range(3) for n in range(7)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka)
    await producer.start()
    try:
        for value in sent:
            await producer.send_and_wait(TOPIC, value, partition=int(value[1:2]))
    finally:
        await producer.stop()

    attempts: list[list[tuple[int, bytes]]] = []
    handled: list[bytes] = []
    finished = asyncio.Event()
    broker = KafkaBroker(kafka)

    @broker.subscriber(
        TOPIC,
        batch=True,
        max_records=4,
        group_id="top-up-test",
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        fetch_max_wait_ms=50,
    )
    async def handle(message: KafkaMessage) -> None:
        records = await top_up_batch(message, max_records=16, wait_ms=200)
        attempts.append([(r.partition, r.value or b"") for r in records])
        if len(attempts) == 1:
            raise RuntimeError("the store is gone")  # the whole topped-up batch must come back
        handled.extend(r.value or b"" for r in records)
        if len(handled) >= len(sent):
            finished.set()

    async with broker:
        await broker.start()
        await asyncio.wait_for(finished.wait(), 30)

    first = attempts[0]
    assert len(first) > 4  # the batch of 4 was topped up...
    assert len({partition for partition, _ in first}) > 1  # ...across partitions
    assert sorted(handled) == sorted(sent)  # nothing lost, nothing handled twice
    assert {value for _, value in first} <= set(handled)
    # The acks committed every record handled, topped-up ones included: a restart of the
    # group resumes after them (nothing handled twice across a restart either).
    assert await _committed(kafka, "top-up-test") == {0: 7, 1: 7, 2: 7}


async def _committed(kafka: str, group: str) -> dict[int, int | None]:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=group)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(TOPIC, p)) for p in range(3)}
    finally:
        await consumer.stop()

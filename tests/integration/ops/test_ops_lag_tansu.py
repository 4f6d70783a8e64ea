"""Consumer lag on tansu equals produced minus consumed, batched produces included.

tansu's ListOffsets(latest) is wrong after a batched produce (it answers the
last batch's first offset + 1); the lag reader takes the high watermark from
fetch responses, so single sends, aiokafka ``send_batch`` and FastStream
``publish_batch`` all count.
"""

from __future__ import annotations

import datetime as dt

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream.kafka import KafkaBroker

from services.common.lag import LagReader
from services.common.settings import ServiceSettings

pytestmark = [pytest.mark.kafka]

TOPIC = "ops.lag.test.v1"
DLQ = "ops.lag.dlq.v1"
GROUP = "ops-lag-halfway"
T_SINGLE = 1_790_000_000_000  # explicit record timestamps (ms) of the first two segments
T_BATCH = 1_790_000_100_000
NOW = dt.datetime.fromtimestamp(1_790_000_500, dt.UTC)
# per partition: single sends, records in one aiokafka batch, records in one FastStream batch
PLAN = {0: (3, 10, 7), 1: (0, 25, 0), 2: (5, 0, 12)}
CONSUMED = {0: 6, 1: 11, 2: 2}  # stop halfway: inside the first two segments


@pytest.fixture
async def settings(kafka: str) -> ServiceSettings:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    await admin.create_topics([NewTopic(TOPIC, 3, 1), NewTopic(DLQ, 2, 1)])
    await admin.close()
    return ServiceSettings(kafka_bootstrap_servers=kafka)


async def _produce(bootstrap: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for partition, (singles, batched, _) in PLAN.items():
            for n in range(singles):
                await producer.send_and_wait(
                    TOPIC, b"single", partition=partition, timestamp_ms=T_SINGLE + n * 1000
                )
            if batched:
                batch = producer.create_batch()
                for n in range(batched):
                    batch.append(key=b"k", value=b"batched", timestamp=T_BATCH + n * 1000)
                batch.close()
                await (await producer.send_batch(batch, TOPIC, partition=partition))
        await producer.send_and_wait(DLQ, b"letter", partition=1)
    finally:
        await producer.stop()
    broker = KafkaBroker(bootstrap, max_batch_size=1 << 20)
    async with broker:
        for partition, (_, _, fast) in PLAN.items():
            if fast:
                await broker.publish_batch(
                    *[b"fast"] * fast, topic=TOPIC, partition=partition, no_confirm=False
                )


async def _consume_halfway(bootstrap: str) -> None:
    """A group member that processes CONSUMED[p] records per partition, commits, stops."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=GROUP,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(TOPIC, p) for p in PLAN]
        consumer.assign(tps)
        done = dict.fromkeys(PLAN, 0)
        while any(done[p] < CONSUMED[p] for p in PLAN):
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                done[tp.partition] += len(records)
        await consumer.commit({tp: CONSUMED[tp.partition] for tp in tps if CONSUMED[tp.partition]})
    finally:
        await consumer.stop()


def _timestamp_at(partition: int, offset: int) -> dt.datetime:
    singles = PLAN[partition][0]
    ms = T_SINGLE + offset * 1000 if offset < singles else T_BATCH + (offset - singles) * 1000
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


async def test_ops_lag_matches_produced_minus_consumed_after_batched_produces(
    settings: ServiceSettings, kafka: str
) -> None:
    await _produce(kafka)
    await _consume_halfway(kafka)

    async with LagReader(settings) as reader:
        snapshot = await reader.snapshot({GROUP: [TOPIC]}, extra_topics=[DLQ], now=NOW)

    lags = {p.partition: p for p in snapshot.partitions}
    for partition, segments in PLAN.items():
        produced = sum(segments)
        assert lags[partition].high_watermark == produced, partition
        assert lags[partition].committed == CONSUMED[partition]
        assert lags[partition].lag == produced - CONSUMED[partition], partition
        oldest = _timestamp_at(partition, CONSUMED[partition])
        assert lags[partition].oldest_timestamp == oldest
    assert snapshot.group_lag(GROUP) == sum(map(sum, PLAN.values())) - sum(CONSUMED.values())
    assert snapshot.oldest_age(GROUP, TOPIC) == NOW - _timestamp_at(2, CONSUMED[2])
    assert snapshot.topic_size(DLQ) == 1


async def test_ops_a_group_that_never_committed_lags_by_everything_and_a_caught_up_one_by_nothing(
    settings: ServiceSettings, kafka: str
) -> None:
    await _produce(kafka)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id="ops-caught-up")
    await consumer.start()
    tps = [TopicPartition(TOPIC, p) for p in PLAN]
    consumer.assign(tps)
    await consumer.commit({TopicPartition(TOPIC, p): sum(s) for p, s in PLAN.items() if sum(s)})
    await consumer.stop()

    async with LagReader(settings) as reader:
        snapshot = await reader.snapshot(
            {"ops-never-started": [TOPIC], "ops-caught-up": [TOPIC], "ops-gone": ["no.such.v1"]},
            now=NOW,
        )

    assert snapshot.group_lag("ops-never-started") == sum(map(sum, PLAN.values()))
    assert all(p.committed is None for p in snapshot.partitions if p.group == "ops-never-started")
    assert snapshot.group_lag("ops-caught-up") == 0
    assert snapshot.oldest_age("ops-caught-up", TOPIC) == dt.timedelta(0)
    assert snapshot.group_lag("ops-gone") == 0  # a missing topic is skipped, never created
    async with LagReader(settings) as reader:
        assert "no.such.v1" not in await reader.partitions(["no.such.v1"])

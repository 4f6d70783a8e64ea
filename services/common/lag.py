"""Consumer lag per group, topic and partition, and how old the oldest waiting item is.

lag = high watermark − committed offset, where:

- the committed offset comes from ``list_consumer_group_offsets`` with the
  partitions named explicitly (tansu drops the connection without them); a
  partition with nothing committed counts from the log start, since every
  consumer group of the pipeline resets to ``earliest``;
- the high watermark is the one carried by a *fetch response*, not
  ``end_offsets()``: tansu answers ListOffsets(latest) with the first offset
  of the last batch + 1 after batched produces, while its fetch responses,
  like Kafka's, carry the true high watermark. Kafka gets both right, so the
  fetch path is correct on both brokers.

The fetch starts at the committed offset, so the first record it returns is
the oldest item the group has not processed: its timestamp gives "how late
are we" per topic. The reader uses a group-less consumer: it never joins or
disturbs the groups it measures.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.common.kafka import security_for
from services.common.settings import ServiceSettings

__all__ = [
    "LagReader",
    "LagSnapshot",
    "LagUnavailable",
    "PartitionLag",
    "TopicHead",
    "consumption_rates",
    "kafka_client_options",
    "production_rates",
    "topic_partitions",
]

_HEAD_FETCH_BYTES = 64 * 1024  # brokers return at least one whole batch anyway (KIP-74)


class LagUnavailable(RuntimeError):
    """The broker did not answer the fetches that carry the high watermarks in time."""


@dataclass(frozen=True, slots=True)
class TopicHead:
    """One partition's bounds: first retained offset and high watermark."""

    topic: str
    partition: int
    log_start: int
    high_watermark: int

    @property
    def size(self) -> int:
        """Records currently retained on the partition."""
        return max(0, self.high_watermark - self.log_start)


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """Lag of one consumer group on one partition, and its oldest waiting record."""

    group: str
    topic: str
    partition: int
    committed: int | None  # None: the group never committed on this partition
    log_start: int
    high_watermark: int
    oldest_timestamp: dt.datetime | None = None  # timestamp of the record at ``position``

    @property
    def position(self) -> int:
        """Where the group resumes: its committed offset, else the log start (earliest);
        never before the log start (records retention deleted are nobody's to process)."""
        return max(self.committed, self.log_start) if self.committed is not None else self.log_start

    @property
    def lag(self) -> int:
        """Records written and not yet processed by the group (never negative)."""
        return max(0, self.high_watermark - self.position)

    def age(self, now: dt.datetime) -> dt.timedelta:
        """How long the oldest unprocessed record has waited (zero when caught up)."""
        if self.lag == 0 or self.oldest_timestamp is None:
            return dt.timedelta(0)
        return max(dt.timedelta(0), now - self.oldest_timestamp)


@dataclass(frozen=True, slots=True)
class LagSnapshot:
    """Lag of every watched group, and the bounds of extra topics (the DLQ), at one instant."""

    taken_at: dt.datetime
    partitions: tuple[PartitionLag, ...]
    heads: tuple[TopicHead, ...] = ()

    def group_lag(self, group: str) -> int:
        """Total lag of a group over its topics and partitions."""
        return sum(p.lag for p in self.partitions if p.group == group)

    def oldest_age(self, group: str, topic: str) -> dt.timedelta:
        """Age of the oldest record ``group`` has not processed on ``topic``."""
        ages = [
            p.age(self.taken_at) for p in self.partitions if (p.group, p.topic) == (group, topic)
        ]
        return max(ages, default=dt.timedelta(0))

    def group_topics(self) -> list[tuple[str, str]]:
        """The (group, topic) pairs measured, in order."""
        return list(dict.fromkeys((p.group, p.topic) for p in self.partitions))

    def topic_size(self, topic: str) -> int:
        """Records retained on an extra topic (e.g. the DLQ), over its partitions."""
        return sum(h.size for h in self.heads if h.topic == topic)


def consumption_rates(before: LagSnapshot, after: LagSnapshot) -> dict[str, float]:
    """Records per second each group committed between two snapshots (items/s)."""
    seconds = (after.taken_at - before.taken_at).total_seconds()
    if seconds <= 0:
        return {}
    previous = {(p.group, p.topic, p.partition): p.position for p in before.partitions}
    rates: dict[str, float] = {}
    for p in after.partitions:
        done = p.position - previous.get((p.group, p.topic, p.partition), p.position)
        rates[p.group] = rates.get(p.group, 0.0) + max(0, done) / seconds
    return rates


def production_rates(before: LagSnapshot, after: LagSnapshot) -> dict[str, float]:
    """Records per second written to each measured topic between two snapshots."""
    seconds = (after.taken_at - before.taken_at).total_seconds()
    if seconds <= 0:
        return {}

    def marks(snapshot: LagSnapshot) -> dict[tuple[str, int], int]:
        found = {(p.topic, p.partition): p.high_watermark for p in snapshot.partitions}
        found.update({(h.topic, h.partition): h.high_watermark for h in snapshot.heads})
        return found

    previous, current = marks(before), marks(after)
    rates: dict[str, float] = {}
    for (topic, partition), mark in current.items():
        written = mark - previous.get((topic, partition), mark)
        rates[topic] = rates.get(topic, 0.0) + max(0, written) / seconds
    return rates


def kafka_client_options(settings: ServiceSettings, client_id: str) -> dict[str, Any]:
    """Keyword arguments of raw aiokafka clients: bootstrap servers and security."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers.split(","),
        "client_id": client_id,
    }
    security = security_for(settings)
    if security is not None:
        from faststream.kafka.security import parse_security

        options.update(parse_security(security))
    return options


async def topic_partitions(
    admin: AIOKafkaAdminClient, topics: Iterable[str]
) -> dict[str, list[int]]:
    """Partition numbers of the existing ``topics``; missing ones are left out, never created.

    Topics are listed first: a metadata request naming an unknown topic makes
    tansu (and Kafka with auto-creation on) create it.
    """
    existing = set(await admin.list_topics())
    wanted = [topic for topic in dict.fromkeys(topics) if topic in existing]
    if not wanted:
        return {}
    found: dict[str, list[int]] = {}
    for description in await admin.describe_topics(wanted):
        numbers = sorted(p["partition"] for p in description["partitions"])
        if description["error_code"] == 0 and numbers:
            found[description["topic"]] = numbers
    return found


def _partitions_of(topics: Iterable[str], known: Mapping[str, list[int]]) -> list[TopicPartition]:
    return [TopicPartition(t, p) for t in dict.fromkeys(topics) if t in known for p in known[t]]


def _utc(timestamp_ms: int | None) -> dt.datetime | None:
    if timestamp_ms is None or timestamp_ms < 0:
        return None
    return dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC)


class LagReader:
    """Measures consumer lag with an admin client and a group-less consumer (reused)."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        client_id: str = "aiguillage-lag",
        timeout_s: float = 10.0,
        head_wait_s: float = 1.0,
    ) -> None:
        options = kafka_client_options(settings, client_id)
        self._admin = AIOKafkaAdminClient(**options)
        self._consumer = AIOKafkaConsumer(
            **options,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
            max_partition_fetch_bytes=_HEAD_FETCH_BYTES,
        )
        self._timeout_s = timeout_s
        self._head_wait_s = head_wait_s
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> LagReader:
        await self._admin.start()
        await self._consumer.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def partitions(self, topics: Iterable[str]) -> dict[str, list[int]]:
        """Partition numbers of each existing topic (missing topics are left out)."""
        return await topic_partitions(self._admin, topics)

    async def snapshot(
        self,
        groups: Mapping[str, Sequence[str]],
        *,
        extra_topics: Sequence[str] = (),
        now: dt.datetime | None = None,
    ) -> LagSnapshot:
        """Lag of each group on its topics, plus the bounds of ``extra_topics``.

        Committed offsets are read first, so the high watermarks fetched
        afterwards are never below them. Reads of distinct partitions share
        one fetch pass; a partition measured for two groups takes two passes.
        """
        async with self._lock:
            wanted = [t for ts in groups.values() for t in ts] + [*extra_topics]
            known = await self.partitions(wanted)
            committed: dict[tuple[str, TopicPartition], int | None] = {}
            for group, topics in groups.items():
                committed.update(await self._committed(group, _partitions_of(topics, known)))
            heads = _partitions_of(extra_topics, known)
            every = list(dict.fromkeys([tp for _, tp in committed] + heads))
            starts = await self._consumer.beginning_offsets(every) if every else {}
            reads: dict[tuple[str | None, TopicPartition], int] = {
                key: offset if offset is not None else starts[key[1]]
                for key, offset in committed.items()
            }
            reads.update({(None, tp): starts[tp] for tp in heads})
            marks, first = await self._read_passes(reads)
            # Stop fetching until the next snapshot (unsubscribe() would make stop() hang).
            self._consumer.pause(*self._consumer.assignment())
        lags = tuple(
            PartitionLag(
                group=group,
                topic=tp.topic,
                partition=tp.partition,
                committed=offset,
                log_start=starts[tp],
                high_watermark=marks[group, tp],
                oldest_timestamp=first.get((group, tp)),
            )
            for (group, tp), offset in committed.items()
        )
        bounds = tuple(
            TopicHead(tp.topic, tp.partition, starts[tp], marks[None, tp]) for tp in heads
        )
        return LagSnapshot(now or dt.datetime.now(dt.UTC), lags, bounds)

    async def _committed(
        self, group: str, tps: list[TopicPartition]
    ) -> dict[tuple[str, TopicPartition], int | None]:
        """The group's committed offset per partition (None: nothing committed)."""
        if not tps:
            return {}
        offsets = await self._admin.list_consumer_group_offsets(group, partitions=tps)
        found: dict[tuple[str, TopicPartition], int | None] = {}
        for tp in tps:
            meta = offsets.get(tp)
            found[group, tp] = meta.offset if meta is not None and meta.offset >= 0 else None
        return found

    async def _read_passes(
        self, reads: Mapping[tuple[str | None, TopicPartition], int]
    ) -> tuple[
        dict[tuple[str | None, TopicPartition], int],
        dict[tuple[str | None, TopicPartition], dt.datetime],
    ]:
        """Fetch every (reader, partition) position, in passes of distinct partitions."""
        passes: list[dict[TopicPartition, tuple[str | None, TopicPartition]]] = []
        for key in reads:
            free = next((p for p in passes if key[1] not in p), None)
            if free is None:
                free = {}
                passes.append(free)
            free[key[1]] = key
        marks: dict[tuple[str | None, TopicPartition], int] = {}
        first: dict[tuple[str | None, TopicPartition], dt.datetime] = {}
        for keys in passes:
            found, stamps = await self._fetch_heads({tp: reads[key] for tp, key in keys.items()})
            marks.update({keys[tp]: mark for tp, mark in found.items()})
            first.update({keys[tp]: stamp for tp, stamp in stamps.items()})
        return marks, first

    async def _fetch_heads(
        self, positions: Mapping[TopicPartition, int]
    ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, dt.datetime]]:
        """Fetch from each position: the response's high watermark and the first record's time."""
        consumer = self._consumer
        consumer.assign(list(positions))  # fresh partition states: no stale high watermark
        for tp, offset in positions.items():
            consumer.seek(tp, offset)
        marks: dict[TopicPartition, int] = {}
        first: dict[TopicPartition, dt.datetime] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        heads_until: float | None = None
        while True:
            waiting = [
                tp
                for tp in positions
                if tp not in marks or (tp not in first and marks[tp] > positions[tp])
            ]
            if not waiting:
                break
            if len(marks) == len(positions):
                heads_until = heads_until or loop.time() + self._head_wait_s
                if loop.time() > heads_until:
                    break  # control records only (transactions): the age stays unknown
            elif loop.time() > deadline:
                raise LagUnavailable(f"no fetch response for {len(waiting)} partition(s)")
            batches = await consumer.getmany(*waiting, timeout_ms=100)
            for tp, records in batches.items():
                stamp = _utc(records[0].timestamp) if records else None
                if stamp is not None:
                    first.setdefault(tp, stamp)
            for tp in waiting:
                mark = consumer.highwater(tp)
                if mark is not None:
                    marks[tp] = mark
        return marks, first

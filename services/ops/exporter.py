"""The lag exporter's loop: measure every pipeline group, publish the gauges.

Per group, topic and partition it sets the committed offset, the lag and the
topic's high watermark (``rate()`` over those gives items/s consumed and
produced); per group and topic the age of the oldest unprocessed item; the
DLQ's size; and, from the store, open dossiers, replayed dead letters,
deadlines and the outbox's backlog (rows not yet on Kafka, rows parked). A
failed cycle is counted and logged; the next one starts afresh.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from aiokafka.errors import KafkaError

from services.common.lag import LagReader, LagSnapshot, LagUnavailable
from services.common.logging import get_logger
from services.common.metrics import PipelineMetrics
from services.common.retry import STORE_OUTAGE
from services.ops.adapters.store_views import StoreViews
from services.ops.settings import OpsSettings

__all__ = ["LagExporter", "export_snapshot"]

log = get_logger(__name__)


def export_snapshot(registry: PipelineMetrics, snapshot: LagSnapshot, dlq_topic: str) -> None:
    """Set the lag gauges of ``registry`` from one snapshot."""
    for p in snapshot.partitions:
        labels = {"group": p.group, "topic": p.topic, "partition": str(p.partition)}
        registry.consumer_lag.labels(**labels).set(p.lag)
        registry.committed_offset.labels(**labels).set(p.position)
        registry.high_watermark.labels(topic=p.topic, partition=str(p.partition)).set(
            p.high_watermark
        )
    for head in snapshot.heads:
        registry.high_watermark.labels(topic=head.topic, partition=str(head.partition)).set(
            head.high_watermark
        )
    for group, topic in snapshot.group_topics():
        age = snapshot.oldest_age(group, topic).total_seconds()
        registry.oldest_unprocessed_age.labels(group=group, topic=topic).set(age)
    registry.dlq_messages.set(snapshot.topic_size(dlq_topic))


class LagExporter:
    """Collects a lag snapshot (and store counts) and exports them as metrics."""

    def __init__(
        self,
        reader: LagReader,
        settings: OpsSettings,
        registry: PipelineMetrics,
        views: StoreViews | None = None,
    ) -> None:
        self._reader = reader
        self._settings = settings
        self._metrics = registry
        self._views = views
        self._services: set[str] = set()

    async def collect(self) -> LagSnapshot:
        """One cycle: lag of every configured group, the DLQ size, then the store counts."""
        snapshot = await self._reader.snapshot(
            self._settings.groups, extra_topics=(self._settings.dlq_topic,)
        )
        export_snapshot(self._metrics, snapshot, self._settings.dlq_topic)
        self._metrics.lag_collections.labels(result="ok").inc()
        self._metrics.lag_last_success.set(snapshot.taken_at.timestamp())
        if self._views is not None:
            await self._export_store_counts(self._views)
        return snapshot

    async def _export_store_counts(self, views: StoreViews) -> None:
        now = dt.datetime.now(dt.UTC)
        try:
            dossiers = await views.open_dossiers()
            replayed = await views.replayed()
            window = dt.timedelta(hours=self._settings.at_risk_window_h)
            deadlines = await views.deadlines(now, window)
            outbox = await views.outbox(now)
        except STORE_OUTAGE as error:
            log.warning("lag_exporter.store_unavailable", error=type(error).__name__)
            return
        counts = dossiers or {}
        self._services.update(counts)
        for service in self._services:  # a queue emptied since the last cycle drops to 0
            self._metrics.open_dossiers.labels(service=service).set(counts.get(service, 0))
        if replayed is not None:
            self._metrics.dlq_replayed.set(len(replayed))
        if deadlines is not None:  # totals; sla_watch keeps no per-basis summary column
            self._metrics.open_deadlines.labels(basis="all").set(deadlines.open)
            self._metrics.deadlines_at_risk.labels(basis="all").set(deadlines.at_risk)
            self._metrics.deadlines_breached.labels(basis="all").set(deadlines.breached)
        if outbox is not None:
            age = outbox.oldest_pending_age
            self._metrics.outbox_pending.set(outbox.pending)
            self._metrics.outbox_parked.set(outbox.parked)
            self._metrics.outbox_oldest_pending_age.set(0 if age is None else age.total_seconds())

    async def run_forever(self, interval_s: float) -> None:
        """Collect every ``interval_s`` seconds until cancelled."""
        while True:
            started = dt.datetime.now(dt.UTC)
            try:
                await self.collect()
            except (KafkaError, LagUnavailable, OSError, TimeoutError) as error:
                self._metrics.lag_collections.labels(result="error").inc()
                log.warning("lag_exporter.collection_failed", error=type(error).__name__)
            spent = (dt.datetime.now(dt.UTC) - started).total_seconds()
            await asyncio.sleep(max(0.0, interval_s - spent))

"""The lag exporter's outbox gauges, from a real store on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import pytest

from schemas.topics import INTAKE_ITEMS
from services.common.lag import LagReader, LagSnapshot
from services.common.metrics import PipelineMetrics
from services.common.outbox import OutboxMessage, add_to_outbox
from services.common.store import Store
from services.common.store.tables import outbox
from services.ops.adapters.store_views import StoreViews
from services.ops.exporter import LagExporter
from services.ops.settings import OpsSettings


class FixedReader(LagReader):
    """A lag reader answering one snapshot, without Kafka: the store is under test here."""

    def __init__(self) -> None:  # no admin client nor consumer to start
        self.taken = LagSnapshot(dt.datetime.now(dt.UTC), ())

    async def snapshot(
        self,
        groups: Mapping[str, Sequence[str]],
        *,
        extra_topics: Sequence[str] = (),
        now: dt.datetime | None = None,
    ) -> LagSnapshot:
        return self.taken


def gauge(registry: PipelineMetrics, name: str) -> float | None:
    return registry.registry.get_sample_value(name)


async def test_ops_exporter_sets_the_outbox_gauges(store: Store) -> None:
    registry = PipelineMetrics()
    exporter = LagExporter(FixedReader(), OpsSettings(), registry, StoreViews(store))
    now = dt.datetime.now(dt.UTC)
    message = OutboxMessage(topic=INTAKE_ITEMS, key="ref:200000001", payload="{}")
    async with store.transaction() as connection:  # Kafka unreachable: nothing was relayed
        await add_to_outbox(connection, [message, message], now - dt.timedelta(minutes=10))
        parked = await add_to_outbox(connection, [message], now - dt.timedelta(minutes=30))
        await connection.execute(
            outbox.update()
            .where(outbox.c.id.in_(parked))
            .values(parked_at=now, parked_reason="MessageSizeTooLargeError")
        )

    await exporter.collect()
    assert gauge(registry, "aiguillage_outbox_pending_rows") == 2
    assert gauge(registry, "aiguillage_outbox_parked_rows") == 1
    age = gauge(registry, "aiguillage_outbox_oldest_pending_age_seconds")
    assert age == pytest.approx(600, abs=30)  # the pending rows, not the older parked one

    async with store.transaction() as connection:  # the relay caught up, ops released the rest
        await connection.execute(outbox.delete())
    await exporter.collect()
    assert gauge(registry, "aiguillage_outbox_pending_rows") == 0
    assert gauge(registry, "aiguillage_outbox_parked_rows") == 0
    assert gauge(registry, "aiguillage_outbox_oldest_pending_age_seconds") == 0

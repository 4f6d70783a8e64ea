"""The lag exporter as its own process, readiness on real dependencies, the status view on tansu."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from faststream.kafka import KafkaBroker
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from schemas.topics import INTAKE_ITEMS
from services.common.embedded import free_port
from services.common.lag import LagReader
from services.common.metrics import MetricsServer, PipelineMetrics, broker_probe, store_probe
from services.common.settings import ServiceSettings
from services.common.store import Store, create_store, migrate
from services.common.testing import ServiceProcess, eventually, produce
from services.ops.adapters.store_views import DeadlineCounts, OutboxCounts, StoreViews
from services.ops.settings import OpsSettings
from services.ops.status import collect_status, render_status

pytestmark = [pytest.mark.kafka]


async def http_get(port: int, path: str) -> tuple[int, str]:
    """One HTTP/1.1 GET on the loopback: (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body.decode()


def total(text: str, name: str, **labels: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


@pytest.fixture
async def sqlite_store(sqlite_url: str) -> AsyncIterator[Store]:
    store = create_store(sqlite_url)
    await migrate(store)
    yield store
    await store.dispose()


def _items(start: int, count: int) -> list[tuple[bytes, bytes]]:
    return [(f"k{n}".encode(), b"{}") for n in range(start, start + count)]


async def test_ops_lag_exporter_metrics_move_as_items_wait(
    topics: ServiceSettings,
    kafka_env: dict[str, str],
    sqlite_url: str,
    sqlite_store: Store,
    kafka: str,
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {
        **kafka_env,
        "DATABASE_URL": sqlite_url,
        "METRICS_PORT": str(port),
        "OPS_LAG_INTERVAL_S": "0.3",
    }
    exporter = ServiceProcess("lag-exporter", env, tmp_path).start()
    try:
        await produce(kafka, INTAKE_ITEMS, _items(0, 5))
        scrapes: list[str] = []

        async def router_lag_is(expected: int) -> bool:
            try:
                status, body = await http_get(port, "/metrics")
            except OSError:
                return False
            scrapes.append(body)
            return (
                status == 200 and total(body, "aiguillage_consumer_lag", group="router") == expected
            )

        await eventually(lambda: router_lag_is(5), timeout=30)
        first = scrapes[-1]
        await produce(kafka, INTAKE_ITEMS, _items(5, 3))
        await eventually(lambda: router_lag_is(8), timeout=30)
        last = scrapes[-1]

        ok = {"result": "ok"}
        assert total(last, "aiguillage_lag_collections_total", **ok) > total(
            first, "aiguillage_lag_collections_total", **ok
        )
        assert total(last, "aiguillage_topic_high_watermark", topic=INTAKE_ITEMS) == 8
        assert total(last, "aiguillage_oldest_unprocessed_age_seconds", group="router") > 0
        assert total(last, "aiguillage_consumer_lag", group="sla-watch") == 0
        assert total(last, "aiguillage_service_info", service="lag-exporter") == 1
        assert await http_get(port, "/healthz") == (200, "ok\n")
        status, body = await http_get(port, "/readyz")
        assert (status, json.loads(body)["checks"]) == (200, {"broker": True, "store": True})
    finally:
        assert exporter.stop() == 0, exporter.output()
    assert "lag_exporter.collection_failed" not in exporter.output()


async def test_ops_readyz_reports_a_store_outage_as_503(
    topics: ServiceSettings, kafka: str, sqlite_store: Store
) -> None:
    dead_port = free_port()  # nothing listens there: PostgreSQL is "down"
    down = create_store(f"postgresql+asyncpg://postgres@127.0.0.1:{dead_port}/aiguillage")
    broker = KafkaBroker(kafka)
    await broker.connect()
    registry = PipelineMetrics()
    healthy = MetricsServer(
        registry, {"broker": broker_probe(broker), "store": store_probe(sqlite_store)}
    )
    outage = MetricsServer(registry, {"broker": broker_probe(broker), "store": store_probe(down)})
    await healthy.start()
    await outage.start()
    try:
        status_ok, body_ok = await http_get(healthy.port, "/readyz")
        status_down, body_down = await http_get(outage.port, "/readyz")
        alive, _ = await http_get(outage.port, "/healthz")
    finally:
        await healthy.stop()
        await outage.stop()
        await broker.stop()
        await down.dispose()
    assert status_ok == 200
    assert json.loads(body_ok) == {"ready": True, "checks": {"broker": True, "store": True}}
    assert status_down == 503
    assert json.loads(body_down)["checks"] == {"broker": True, "store": False}
    assert alive == 200  # the process is alive, just not ready


async def test_ops_status_view_on_tansu_and_sqlite(
    topics: ServiceSettings, kafka_env: dict[str, str], sqlite_store: Store, kafka: str
) -> None:
    settings = OpsSettings.model_validate(kafka_env)
    await produce(kafka, INTAKE_ITEMS, _items(0, 4))
    async with LagReader(settings) as reader:
        before = await reader.snapshot(settings.groups, extra_topics=(settings.dlq_topic,))
        await produce(kafka, INTAKE_ITEMS, _items(4, 2))
        report = await collect_status(settings, reader, StoreViews(sqlite_store), before)
    console = Console(record=True, width=160, color_system=None)
    console.print(render_status(report))
    text = console.export_text()

    assert report.snapshot.group_lag("router") == 6
    assert report.produced_per_s[INTAKE_ITEMS] > 0
    assert report.open_dossiers == {}
    assert report.deadlines == DeadlineCounts(open=0, at_risk=0, breached=0)
    assert report.replayed == 0
    assert report.outbox == OutboxCounts(pending=0, parked=0, oldest_pending_age=None)
    assert "router" in text
    assert "0 (0s) / 0" in text
    assert report.snapshot.taken_at <= dt.datetime.now(dt.UTC)

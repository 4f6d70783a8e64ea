"""The lag exporter app: ``aiguillage run lag-exporter``.

A FastStream app with no subscribers: its lifespan runs the collection loop
(:mod:`services.ops.exporter`) and serves the metrics on ``METRICS_PORT``
with readiness probes on the broker and the store. It only reads: it joins
no consumer group and applies no migration.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from faststream import FastStream
from faststream.specification import AsyncAPI

from services.common.kafka import build_broker
from services.common.lag import LagReader
from services.common.lifecycle import CrashWatch, background
from services.common.logging import configure_logging, get_logger
from services.common.metrics import broker_probe, metrics, serve_metrics, store_probe
from services.common.store import create_store
from services.common.version import SERVICE_VERSION
from services.ops.adapters.store_views import StoreViews
from services.ops.exporter import LagExporter
from services.ops.settings import OpsSettings

__all__ = ["create_app"]

log = get_logger(__name__)


def create_app(settings: OpsSettings | None = None) -> FastStream:
    """Wire the lag exporter: broker (for readiness), lag reader, store views, metrics."""
    settings = settings or OpsSettings()
    configure_logging(settings.log_level, settings.log_format)
    broker = build_broker(settings, client_id="aiguillage-lag-exporter")

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        store = create_store(settings.resolved_database_url())
        metrics.service_info.info({"service": "lag-exporter", "version": SERVICE_VERSION})
        probes = {"broker": broker_probe(broker), "store": store_probe(store)}
        async with LagReader(settings, timeout_s=settings.lag_timeout_s) as reader:
            views = StoreViews(store, deadlines_table=settings.deadlines_table)
            exporter = LagExporter(reader, settings, metrics, views)
            crashes = CrashWatch(lambda: app.exit())
            async with (
                serve_metrics(settings, probes),
                background(exporter.run_forever(settings.lag_interval_s), crashes=crashes),
            ):
                log.info("service.started", service="lag-exporter", version=SERVICE_VERSION)
                yield
        await store.dispose()
        crashes.raise_if_crashed()

    app = FastStream(
        broker,
        logger=logging.getLogger("aiguillage.app"),
        lifespan=lifespan,
        specification=AsyncAPI(title="aiguillage lag-exporter", version=SERVICE_VERSION),
    )
    return app

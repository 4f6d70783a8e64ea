"""Prometheus metrics of the pipeline and the tiny HTTP server that exposes them.

Every service process has one registry (``metrics``) holding every family of
the pipeline, with stable names and labels, so that dashboards and alerts do
not depend on which service exports what. Labels carry channels, outcomes,
reason codes, topics and groups, never ids or personal data (cardinality and
GDPR, procedure 7).

``serve_metrics(settings, probes)`` serves, on ``METRICS_PORT`` (0 = off):

- ``GET /metrics``: the Prometheus text (or OpenMetrics when asked for);
- ``GET /healthz``: 200 while the process's event loop answers (liveness);
- ``GET /readyz``: 200 when every injected async probe (broker, store…) says
  yes within its timeout, else 503 with the failing checks (readiness).

The server is plain asyncio (no aiohttp, no thread), so probes run on the
service's own event loop and reach its own broker and store objects.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

from services.common.logging import get_logger

if TYPE_CHECKING:
    from faststream.kafka import KafkaBroker

    from services.common.store.engine import Store

__all__ = [
    "LATENCY_BUCKETS",
    "MetricsConfig",
    "MetricsServer",
    "PipelineMetrics",
    "Probe",
    "broker_probe",
    "metrics",
    "serve_metrics",
    "store_probe",
]

log = get_logger(__name__)

Probe = Callable[[], Awaitable[bool]]
"""An async readiness check: True when the dependency answers."""

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
CONFIDENCE_BUCKETS = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100)
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}


class PipelineMetrics:
    """Every metric family of the pipeline, on one registry per process.

    Services increment what they do (``items_in.labels(channel="email").inc()``);
    the lag exporter sets the lag gauges; sla_watch sets the deadline gauges.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self._included: list[CollectorRegistry] = []
        r = self.registry
        # Throughput (intake services: taken from the source; router: consumed / routed).
        self.items_in = Counter(
            "aiguillage_items_in", "Contacts taken in, by channel", ("channel",), registry=r
        )
        self.items_out = Counter(
            "aiguillage_items_out",
            "Contacts handed on (published, opened, attached, out_of_perimeter, duplicate)",
            ("channel", "outcome"),
            registry=r,
        )
        self.handler_seconds = Histogram(
            "aiguillage_handler_seconds",
            "Handler latency, by handler name (on_<event>)",
            ("handler",),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.handler_failures = Counter(
            "aiguillage_handler_failures",
            "Handler runs that raised and leave the message for redelivery",
            ("handler",),
            registry=r,
        )
        self.dead_letters = Counter(
            "aiguillage_dead_letters",
            "Messages dead-lettered, by refusing service and stable reason code",
            ("service", "reason_code"),
            registry=r,
        )
        # Letters (intake_scan).
        self.ocr_pages = Counter(
            "aiguillage_ocr_pages",
            "Letter pages read, by method (text_layer, ocr)",
            ("method",),
            registry=r,
        )
        self.ocr_confidence = Histogram(
            "aiguillage_ocr_confidence",
            "Mean tesseract word confidence per OCR page (0-100)",
            buckets=CONFIDENCE_BUCKETS,
            registry=r,
        )
        # Outbound mail (intake_mail acknowledgements 4.1; sla_watch holding mails 4.12).
        self.acknowledgements_sent = Counter(
            "aiguillage_acknowledgements_sent",
            "Acknowledgements of receipt sent, by channel",
            ("channel",),
            registry=r,
        )
        self.holding_mails_sent = Counter(
            "aiguillage_holding_mails_sent",
            "Holding mails sent, by medium (email, outbound_call)",
            ("medium",),
            registry=r,
        )
        # SLA (sla_watch; basis is the deadline kind: 48h, 5wd, 15wd).
        self.open_deadlines = Gauge(
            "aiguillage_open_deadlines",
            "Running response deadlines, by basis",
            ("basis",),
            registry=r,
        )
        self.deadlines_at_risk = Gauge(
            "aiguillage_deadlines_at_risk",
            "Running deadlines whose holding mail is due within a day, by basis",
            ("basis",),
            registry=r,
        )
        self.deadlines_breached = Gauge(
            "aiguillage_deadlines_breached",
            "Open deadlines already past due with no reply, by basis",
            ("basis",),
            registry=r,
        )
        self.sla_breaches = Counter(
            "aiguillage_sla_breaches", "SLA breaches declared, by basis", ("basis",), registry=r
        )
        # Consumer lag (the lag exporter; see services.common.lag).
        self.consumer_lag = Gauge(
            "aiguillage_consumer_lag",
            "High watermark minus committed offset",
            ("group", "topic", "partition"),
            registry=r,
        )
        self.committed_offset = Gauge(
            "aiguillage_consumer_committed_offset",
            "Committed offset (the log start when nothing is committed)",
            ("group", "topic", "partition"),
            registry=r,
        )
        self.high_watermark = Gauge(
            "aiguillage_topic_high_watermark",
            "Offset of the next record to be written",
            ("topic", "partition"),
            registry=r,
        )
        self.oldest_unprocessed_age = Gauge(
            "aiguillage_oldest_unprocessed_age_seconds",
            "Age of the oldest record a group has not processed yet (0 when caught up)",
            ("group", "topic"),
            registry=r,
        )
        self.dlq_messages = Gauge(
            "aiguillage_dlq_messages", "Records on the dead-letter topic", registry=r
        )
        self.dlq_replayed = Gauge(
            "aiguillage_dlq_replayed", "Dead letters replayed (ops_dlq_replays)", registry=r
        )
        self.open_dossiers = Gauge(
            "aiguillage_open_dossiers",
            "Open dossiers, by owning service queue",
            ("service",),
            registry=r,
        )
        # Transactional outbox (the lag exporter, from the store; see services.common.outbox):
        # committed events not yet on Kafka, which no consumer lag can show.
        self.outbox_pending = Gauge(
            "aiguillage_outbox_pending_rows",
            "Outbox rows committed but not yet published to Kafka",
            registry=r,
        )
        self.outbox_parked = Gauge(
            "aiguillage_outbox_parked_rows",
            "Outbox rows parked: refused by the broker for their size (aiguillage outbox parked)",
            registry=r,
        )
        self.outbox_oldest_pending_age = Gauge(
            "aiguillage_outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox row not yet published (0 when nothing is pending)",
            registry=r,
        )
        self.lag_collections = Counter(
            "aiguillage_lag_collections",
            "Lag collection cycles, by result (ok, error)",
            ("result",),
            registry=r,
        )
        self.lag_last_success = Gauge(
            "aiguillage_lag_last_success_timestamp_seconds",
            "Unix time of the last successful lag collection",
            registry=r,
        )
        self.service_info = Info(
            "aiguillage_service", "The service and version of this process", registry=r
        )

    def exported_names(self) -> frozenset[str]:
        """Every sample name this registry can expose (``…_total``, ``…_bucket``…)."""
        names: set[str] = set()
        for family in self.registry.collect():
            names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
        return frozenset(names)

    def include(self, registry: CollectorRegistry) -> None:
        """Expose a service's own registry too (e.g. ``PhoneMetrics().registry``)."""
        if registry is not self.registry and registry not in self._included:
            self._included.append(registry)

    def collect(self) -> Iterator[Metric]:
        """Every family of this registry and of the included ones (what ``/metrics`` shows)."""
        for registry in (self.registry, *self._included):
            yield from registry.collect()

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition body and its content type, in the format the scraper accepts."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self), content_type  # encoders only call collect()


metrics = PipelineMetrics()
"""The process's registry: services increment it, ``serve_metrics`` exposes it."""


class MetricsConfig(Protocol):
    """The two settings the server reads (shared: ``METRICS_PORT``, ``METRICS_HOST``)."""

    @property
    def metrics_port(self) -> int:
        """TCP port of the metrics server; 0 turns it off."""
        ...

    @property
    def metrics_host(self) -> str:
        """Listen address (``0.0.0.0`` in containers)."""
        ...


def store_probe(store: Store) -> Probe:
    """Readiness of the dossier store: a trivial query answers."""
    return store.ping


def broker_probe(broker: KafkaBroker, timeout_s: float = 2.0) -> Probe:
    """Readiness of Kafka: the broker describes its cluster within ``timeout_s``."""

    async def probe() -> bool:
        return await broker.ping(timeout_s)

    return probe


class MetricsServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` over HTTP/1.1, one request per connection."""

    def __init__(
        self,
        registry: PipelineMetrics,
        probes: Mapping[str, Probe] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        probe_timeout_s: float = 2.0,
    ) -> None:
        self._metrics = registry
        self._probes = dict(probes or {})
        self._host = host
        self._port = port
        self._probe_timeout_s = probe_timeout_s
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0 in tests)."""
        if self._server is None:
            raise RuntimeError("metrics server not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> MetricsServer:
        """Bind and start accepting connections."""
        self._server = await asyncio.start_server(self._handle, self._host, self._port)
        return self

    async def stop(self) -> None:
        """Stop accepting connections and close the listening socket."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def readiness(self) -> dict[str, bool]:
        """Run every probe concurrently; a probe that fails, raises or times out is False."""
        names = list(self._probes)
        results = await asyncio.gather(*(self._check(self._probes[n]) for n in names))
        return dict(zip(names, results, strict=True))

    async def _check(self, probe: Probe) -> bool:
        try:
            return bool(await asyncio.wait_for(probe(), self._probe_timeout_s))
        except Exception:  # noqa: BLE001 - any failure of a dependency means "not ready"
            return False

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            status, content_type, body = await self._respond(head)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            status, content_type, body = 400, "text/plain", b"bad request\n"
        try:
            writer.write(
                f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except ConnectionError:
            pass  # the scraper went away; nothing to answer
        finally:
            writer.close()

    async def _respond(self, head: bytes) -> tuple[int, str, bytes]:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            return 400, "text/plain", b"bad request\n"
        method, target, _ = parts
        if method not in {"GET", "HEAD"}:
            return 405, "text/plain", b"method not allowed\n"
        path = target.split("?", 1)[0]
        if path == "/metrics":
            accept = next(
                (ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("accept:")),
                "",
            )
            body, content_type = self._metrics.render(accept)
            return 200, content_type, b"" if method == "HEAD" else body
        if path == "/healthz":
            return 200, "text/plain", b"ok\n"
        if path == "/readyz":
            checks = await self.readiness()
            ready = all(checks.values())
            payload = json.dumps({"ready": ready, "checks": checks}).encode() + b"\n"
            return (200 if ready else 503), "application/json", payload
        return 404, "text/plain", b"not found\n"


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


@asynccontextmanager
async def serve_metrics(
    settings: MetricsConfig,
    probes: Mapping[str, Probe] | None = None,
    *,
    registry: PipelineMetrics | None = None,
) -> AsyncIterator[MetricsServer | None]:
    """Serve the metrics and health endpoints for the duration of the block.

    Yields None (and serves nothing) when ``METRICS_PORT`` is 0. Mount it in a
    service's lifespan, around the ``yield``, with the service's own probes.
    """
    if settings.metrics_port == 0:
        yield None
        return
    server = MetricsServer(
        registry or metrics, probes, host=settings.metrics_host, port=settings.metrics_port
    )
    await server.start()
    log.info("metrics.serving", port=server.port)
    try:
        yield server
    finally:
        await server.stop()

"""The metric families (stable names and labels) and the /metrics, /healthz, /readyz server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from services.common.embedded import free_port
from services.common.metrics import MetricsServer, PipelineMetrics, Probe, serve_metrics

FAMILIES = [
    pytest.param("items_in", "aiguillage_items_in", ("channel",), id="items_in"),
    pytest.param("items_out", "aiguillage_items_out", ("channel", "outcome"), id="items_out"),
    pytest.param("handler_seconds", "aiguillage_handler_seconds", ("handler",), id="latency"),
    pytest.param("dead_letters", "aiguillage_dead_letters", ("service", "reason_code"), id="dlq"),
    pytest.param("ocr_pages", "aiguillage_ocr_pages", ("method",), id="ocr_pages"),
    pytest.param("ocr_confidence", "aiguillage_ocr_confidence", (), id="ocr_confidence"),
    pytest.param(
        "acknowledgements_sent", "aiguillage_acknowledgements_sent", ("channel",), id="ack"
    ),
    pytest.param("holding_mails_sent", "aiguillage_holding_mails_sent", ("medium",), id="holding"),
    pytest.param("open_deadlines", "aiguillage_open_deadlines", ("basis",), id="open_deadlines"),
    pytest.param("deadlines_at_risk", "aiguillage_deadlines_at_risk", ("basis",), id="at_risk"),
    pytest.param("deadlines_breached", "aiguillage_deadlines_breached", ("basis",), id="breached"),
    pytest.param(
        "consumer_lag", "aiguillage_consumer_lag", ("group", "topic", "partition"), id="lag"
    ),
    pytest.param(
        "oldest_unprocessed_age",
        "aiguillage_oldest_unprocessed_age_seconds",
        ("group", "topic"),
        id="oldest_age",
    ),
    pytest.param("outbox_pending", "aiguillage_outbox_pending_rows", (), id="outbox_pending"),
    pytest.param("outbox_parked", "aiguillage_outbox_parked_rows", (), id="outbox_parked"),
    pytest.param(
        "outbox_oldest_pending_age",
        "aiguillage_outbox_oldest_pending_age_seconds",
        (),
        id="outbox_age",
    ),
]


@dataclass
class Reply:
    status: int
    content_type: str
    body: str


async def http_get(port: int, path: str, accept: str | None = None) -> Reply:
    """One HTTP/1.1 GET on the loopback, read to the end (the server closes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    extra = f"Accept: {accept}\r\n" if accept else ""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return Reply(int(lines[0].split(" ")[1]), headers["Content-Type"], body.decode())


async def get(server: MetricsServer, path: str, accept: str | None = None) -> Reply:
    return await http_get(server.port, path, accept)


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


@dataclass(frozen=True)
class Config:
    metrics_port: int
    metrics_host: str = "127.0.0.1"


def _ok() -> Probe:
    async def probe() -> bool:
        return True

    return probe


def _fails() -> Probe:
    async def probe() -> bool:
        return False

    return probe


def _raises() -> Probe:
    async def probe() -> bool:
        raise ConnectionRefusedError("down")

    return probe


def _hangs() -> Probe:
    async def probe() -> bool:
        await asyncio.sleep(60)
        return True

    return probe


@pytest.fixture
async def registry() -> PipelineMetrics:
    return PipelineMetrics()


@pytest.fixture
async def server(registry: PipelineMetrics) -> AsyncIterator[MetricsServer]:
    async with serve_metrics(Config(free_port()), {"broker": _ok()}, registry=registry) as s:
        assert s is not None
        yield s


@pytest.mark.parametrize(("attribute", "name", "labels"), FAMILIES)
def test_ops_metric_families_keep_their_names_and_labels(
    attribute: str, name: str, labels: tuple[str, ...]
) -> None:
    family = getattr(PipelineMetrics(), attribute)
    assert family._name == name
    assert tuple(family._labelnames) == labels


def test_ops_exported_names_carry_the_sample_suffixes() -> None:
    names = PipelineMetrics().exported_names()
    assert {
        "aiguillage_items_in_total",
        "aiguillage_handler_seconds_bucket",
        "aiguillage_handler_seconds_count",
        "aiguillage_consumer_lag",
        "aiguillage_service_info",
    } <= names
    assert "aiguillage_items_in" not in names  # a counter is exposed as ..._total


def test_ops_each_process_registry_is_independent() -> None:
    first, second = PipelineMetrics(), PipelineMetrics()
    first.items_in.labels(channel="email").inc()
    assert (
        second.registry.get_sample_value("aiguillage_items_in_total", {"channel": "email"}) is None
    )


async def test_ops_metrics_endpoint_shows_counters_moving(
    server: MetricsServer, registry: PipelineMetrics
) -> None:
    registry.items_in.labels(channel="letter").inc()
    with registry.handler_seconds.labels(handler="on_intake_item").time():
        pass
    first = await get(server, "/metrics")
    registry.items_in.labels(channel="letter").inc(2)
    registry.dead_letters.labels(service="router", reason_code="invalid_contract").inc()
    second = await get(server, "/metrics")

    assert first.status == second.status == 200
    assert first.content_type.startswith("text/plain")
    assert sample(first.body, "aiguillage_items_in_total", channel="letter") == 1
    assert sample(second.body, "aiguillage_items_in_total", channel="letter") == 3
    assert sample(second.body, "aiguillage_handler_seconds_count", handler="on_intake_item") == 1
    assert sample(second.body, "aiguillage_dead_letters_total", reason_code="invalid_contract") == 1


async def test_ops_metrics_speak_openmetrics_when_asked(server: MetricsServer) -> None:
    reply = await get(server, "/metrics", accept="application/openmetrics-text; version=1.0.0")
    assert reply.content_type.startswith("application/openmetrics-text")
    assert reply.body.rstrip().endswith("# EOF")


async def test_ops_healthz_answers_while_the_loop_runs(server: MetricsServer) -> None:
    reply = await get(server, "/healthz")
    assert (reply.status, reply.body) == (200, "ok\n")


@pytest.mark.parametrize(
    ("probes", "status", "failing"),
    [
        pytest.param({"broker": _ok(), "store": _ok()}, 200, [], id="all-ready"),
        pytest.param({}, 200, [], id="no-probes"),
        pytest.param({"broker": _ok(), "store": _fails()}, 503, ["store"], id="store-down"),
        pytest.param({"broker": _raises(), "store": _ok()}, 503, ["broker"], id="probe-raises"),
        pytest.param({"broker": _ok(), "store": _hangs()}, 503, ["store"], id="probe-hangs"),
    ],
)
async def test_ops_readyz_reports_each_dependency(
    registry: PipelineMetrics, probes: dict[str, Probe], status: int, failing: list[str]
) -> None:
    server = await MetricsServer(registry, probes, probe_timeout_s=0.3).start()
    try:
        reply = await get(server, "/readyz")
    finally:
        await server.stop()
    assert reply.status == status
    assert reply.content_type == "application/json"
    checks = json.loads(reply.body)["checks"]
    assert sorted(name for name, ok in checks.items() if not ok) == failing


async def test_ops_unknown_paths_and_methods_are_refused(server: MetricsServer) -> None:
    assert (await get(server, "/nope")).status == 404
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 405 ")


async def test_ops_metrics_port_zero_serves_nothing() -> None:
    async with serve_metrics(Config(0), {}) as server:
        assert server is None


async def test_ops_a_service_registry_can_be_exposed_alongside(registry: PipelineMetrics) -> None:
    own = CollectorRegistry()
    Counter("aiguillage_phone_calls", "calls", ("platform",), registry=own).labels("generic").inc()
    registry.include(own)
    registry.include(own)  # once is enough
    server = await MetricsServer(registry).start()
    try:
        body = (await get(server, "/metrics")).body
    finally:
        await server.stop()
    assert sample(body, "aiguillage_phone_calls_total", platform="generic") == 1
    assert body.count("# TYPE aiguillage_phone_calls_total counter") == 1

"""Router alone on tansu + PostgreSQL: items/s per instance, intake→task latency, peak RSS.

50,000 realistic items (texts of the labelled set, 1 in 3 customers writing
twice) are produced first, then one router process drains them: items/s is
measured from the first to the last item routed. Then items are produced at a
steady rate and each one's latency is the task record's timestamp minus the
moment the bench sent the item. The router process's CPU time (user + system,
from ``/proc``) over the drain, divided by the items drained, is reported too:
on a shared machine it is steadier than wall-clock figures.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.common import CpuMeter, Figure, peak_rss_mb, percentile, scratch_postgres, service_env
from schemas import IntakeItem, SenderHints, Task
from schemas.topics import INTAKE_ITEMS, SERVICE_QUEUES, task_topic
from services.common.embedded import EmbeddedBroker
from services.common.kafka import ensure_topics
from services.common.settings import ServiceSettings
from services.common.store import Store, create_store, migrate
from services.common.store.tables import processed_messages
from services.common.testing import ServiceProcess

__all__ = ["run"]

DATASET = Path(__file__).resolve().parents[1] / "tests/data/contacts/labelled.jsonl"


def _items(prefix: str, count: int) -> list[IntakeItem]:
    examples = [json.loads(line) for line in DATASET.read_text(encoding="utf-8").splitlines()]
    now = dt.datetime.now(dt.UTC)
    items = []
    for n in range(count):
        example = examples[n % len(examples)]
        items.append(
            IntakeItem(
                item_id=f"{prefix}:{n}",
                channel="letter" if example["channel"] == "letter" else "email",
                received_at=now,
                source_ref=f"bench/{prefix}/{n}",
                sender=SenderHints(customer_ref=f"{(n % max(1, count * 2 // 3)) + 100_000_000}"),
                subject=example.get("subject"),
                text=example["text"],
                tsa_box=example.get("tsa_box"),
            )
        )
    return items


async def _produce(
    bootstrap: str, items: list[IntakeItem], rate: float | None = None
) -> dict[str, float]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    sent: dict[str, float] = {}
    try:
        pending = []
        started = time.monotonic()
        for n, item in enumerate(items):
            if rate is not None:
                delay = started + n / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            sent[item.item_id] = time.time()
            pending.append(
                await producer.send(
                    INTAKE_ITEMS, item.model_dump_json().encode(), key=item.partition_key().encode()
                )
            )
            if len(pending) >= 1000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


async def _routed(store: Store) -> int:
    async with store.engine.connect() as connection:
        count = await connection.scalar(sa.select(sa.func.count()).select_from(processed_messages))
    return int(count or 0)


async def _drain(
    store: Store, total: int, timeout: float, meter: CpuMeter
) -> tuple[float, int, dict[str, float]]:
    """Seconds from the first item routed to the last, items routed then, and the CPU
    seconds each group of processes spent meanwhile."""
    deadline = time.monotonic() + timeout
    while (first := await _routed(store)) == 0:
        if time.monotonic() > deadline:
            raise TimeoutError("the router routed nothing")
        await asyncio.sleep(0.02)
    meter.start()
    while (done := await _routed(store)) < total:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {done}/{total} routed")
        await asyncio.sleep(0.1)
    cpu, seconds = meter.stop()
    return seconds, total - first, cpu


async def _latencies(bootstrap: str, sent: dict[str, float], timeout: float) -> list[float]:
    consumer = AIOKafkaConsumer(
        *(task_topic(s) for s in SERVICE_QUEUES),
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(seen) < len(sent) and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    task = Task.model_validate_json(record.value)
                    if task.item_id in sent and task.item_id not in seen:
                        seen[task.item_id] = record.timestamp / 1000 - sent[task.item_id]
    finally:
        await consumer.stop()
    return [seconds * 1000 for seconds in seen.values()]


async def run(items: int = 50_000, rate: int = 1_000, steady_s: int = 10) -> list[Figure]:
    """Measure the router; return its figures."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedBroker(log_path=Path(tmp) / "tansu.log") as broker,
    ):
        async with scratch_postgres() as url:
            env = service_env(
                broker.bootstrap_servers,
                url,
                KAFKA_DEFAULT_PARTITIONS="6",
            )
            await ensure_topics(ServiceSettings.model_validate(env))
            store = create_store(url)
            await migrate(store)
            await _produce(broker.bootstrap_servers, _items("bulk", items))
            router = ServiceProcess("router", env, Path(tmp)).start()
            try:
                assert router.process is not None
                assert broker.pid is not None
                meter = CpuMeter(
                    pids={"router": router.process.pid, "tansu": broker.pid, "bench": os.getpid()},
                    children={"classifier": router.process.pid},
                    names={"postgres": "postgres"},
                )
                seconds, counted, cpu = await _drain(
                    store, items, timeout=items / 50 + 120, meter=meter
                )
                steady = _items("steady", rate * steady_s)
                sent = await _produce(broker.bootstrap_servers, steady, rate=rate)
                latencies = await _latencies(broker.bootstrap_servers, sent, timeout=120)
                rss = peak_rss_mb(router.process.pid)
            finally:
                router.stop()
                await store.dispose()
    return [
        Figure("router items/s (one instance, batches)", counted / seconds, "items/s", 10_000),
        Figure(
            f"router p50 intake→task at {rate}/s",
            percentile(latencies, 50),
            "ms",
            100,
            higher=False,
        ),
        Figure(
            f"router p99 intake→task at {rate}/s",
            percentile(latencies, 99),
            "ms",
            100,
            higher=False,
        ),
        Figure("router peak RSS", rss, "MiB", None, higher=False),
        Figure(
            "router CPU time per item drained (user+sys, one instance)",
            cpu["router"] * 1_000_000 / counted,
            "µs",
            None,
            higher=False,
        ),
        *(
            Figure(
                f"{label} CPU time per item drained, beside the router",
                cpu[group] * 1_000_000 / counted,
                "µs",
                None,
                higher=False,
            )
            for group, label in (
                ("classifier", "classifier workers (2 processes)"),
                ("postgres", "PostgreSQL backends"),
                ("tansu", "broker (tansu)"),
                ("bench", "bench process (polling)"),
            )
        ),
        Figure(
            "share of the machine's cores busy during the drain (all of the above)",
            100 * sum(cpu.values()) / (seconds * (os.cpu_count() or 1)),
            "%",
            None,
        ),
        # What the CPU costs above allow on this machine, whatever the code's overlap: its
        # cores divided by the CPU every process spends per routed item (bench excluded).
        Figure(
            "ceiling of this machine at these CPU costs (its cores / CPU per routed item)",
            (os.cpu_count() or 1) * counted / sum(v for k, v in cpu.items() if k != "bench"),
            "items/s",
            None,
        ),
        Figure(
            "ceiling of one router process on a core of its own (classifier, store and "
            "broker elsewhere)",
            counted / cpu["router"],
            "items/s",
            None,
        ),
    ]


if __name__ == "__main__":
    import sys

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    for figure in asyncio.run(run(items=count)):
        print(f"{figure.name}: {figure.measured:.1f} {figure.unit} (target {figure.target})")

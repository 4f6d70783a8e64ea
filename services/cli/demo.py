"""``aiguillage up --demo``: feed sample contacts, wait for the router, print dossiers and tasks."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from importlib import resources
from typing import Any

import sqlalchemy as sa
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console
from rich.table import Table

from schemas import IntakeItem, Task
from schemas.topics import INTAKE_ITEMS, SERVICE_QUEUES, task_topic
from services.common.store import create_store
from services.common.store.tables import dossiers, processed_messages

__all__ = ["demo_items", "run_demo"]


def demo_items(now: dt.datetime) -> list[IntakeItem]:
    """The bundled synthetic contacts as intake items, dated relative to ``now``."""
    raw = resources.files("services.cli").joinpath("demo_contacts.yaml").read_text("utf-8")
    items = []
    for entry in yaml.safe_load(raw):
        hours = entry.pop("hours_ago")
        items.append(
            IntakeItem.model_validate(
                {
                    **entry,
                    "received_at": now - dt.timedelta(hours=hours),
                    "source_ref": f"demo/{entry['item_id']}",
                }
            )
        )
    return items


async def _publish(bootstrap: str, items: list[IntakeItem]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for item in items:
            await producer.send_and_wait(
                INTAKE_ITEMS, item.model_dump_json().encode(), key=item.partition_key().encode()
            )
    finally:
        await producer.stop()


async def _wait_routed(database_url: str, item_ids: set[str], timeout: float) -> int:
    store = create_store(database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            async with store.engine.connect() as connection:
                done = await connection.scalar(
                    sa.select(sa.func.count())
                    .select_from(processed_messages)
                    .where(processed_messages.c.message_id.in_(item_ids))
                )
            if (done or 0) >= len(item_ids) or time.monotonic() > deadline:
                return int(done or 0)
            await asyncio.sleep(0.3)
    finally:
        await store.dispose()


async def _dossier_rows(database_url: str) -> list[Any]:
    store = create_store(database_url)
    try:
        async with store.engine.connect() as connection:
            query = sa.select(dossiers).order_by(dossiers.c.contact_date)
            return list((await connection.execute(query)).all())
    finally:
        await store.dispose()


async def _tasks(bootstrap: str, timeout: float = 3.0) -> list[Task]:
    consumer = AIOKafkaConsumer(
        *(task_topic(s) for s in SERVICE_QUEUES),
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    tasks: list[Task] = []
    try:
        batches = await consumer.getmany(timeout_ms=int(timeout * 1000))
        while batches:
            for records in batches.values():
                tasks += [Task.model_validate_json(r.value) for r in records]
            batches = await consumer.getmany(timeout_ms=1000)
    finally:
        await consumer.stop()
    return tasks


def _print(rows: list[Any], tasks: list[Task], routed: int, fed: int) -> None:
    console = Console(width=max(Console().width, 150))
    table = Table(title=f"Dossiers ({routed}/{fed} contacts routed)")
    for column in ("dossier", "canal", "type", "nature", "urgence", "service", "sensible"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.dossier_id, row.channel, row.dossier_type, row.kind, row.urgency,
            row.service, row.sensitive or "-",
        )  # fmt: skip
    console.print(table)
    task_table = Table(title=f"Tasks ({len(tasks)})")
    for column in ("topic", "action", "dossier", "urgence", "reasons"):
        task_table.add_column(column)
    for task in sorted(tasks, key=lambda t: (t.service, t.task_id)):
        task_table.add_row(
            task_topic(task.service), task.action, task.dossier_id or "-", task.urgency,
            "; ".join(task.reasons[:3]),
        )  # fmt: skip
    console.print(task_table)


async def run_demo(env: dict[str, str], timeout: float = 90.0) -> int:
    """Feed the sample contacts and print what the pipeline made of them; 0 when all routed."""
    items = demo_items(dt.datetime.now(dt.UTC))
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    await _publish(bootstrap, items)
    routed = await _wait_routed(env["DATABASE_URL"], {i.item_id for i in items}, timeout)
    _print(await _dossier_rows(env["DATABASE_URL"]), await _tasks(bootstrap), routed, len(items))
    return 0 if routed == len(items) else 1

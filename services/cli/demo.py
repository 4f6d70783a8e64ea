"""``aiguillage up --demo``: feed sample contacts, wait for the router, print dossiers and tasks."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console
from rich.table import Table

from schemas import IntakeItem, Task
from schemas.topics import INTAKE_ITEMS, SERVICE_QUEUES, task_topic
from services.cli.demo_setup import drop_letter, post_calls, write_mails
from services.cli.registry import SERVICES
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


async def _routed_count(database_url: str) -> int:
    store = create_store(database_url)
    try:
        async with store.engine.connect() as connection:
            done = await connection.scalar(
                sa.select(sa.func.count())
                .select_from(processed_messages)
                .where(processed_messages.c.consumer == "router.items")
            )
        return int(done or 0)
    finally:
        await store.dispose()


async def _wait_routed(database_url: str, expected: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        done = await _routed_count(database_url)
        if done >= expected or time.monotonic() > deadline:
            return done
        await asyncio.sleep(0.5)


async def _deadlines(database_url: str) -> list[Any]:
    store = create_store(database_url)
    try:
        async with store.engine.connect() as connection:
            if not await connection.run_sync(lambda c: sa.inspect(c).has_table("sla_dossiers")):
                return []
            query = sa.text(
                "SELECT dossier_id, deadline_id, due_at, holding_mail_at FROM sla_dossiers "
                "WHERE due_at IS NOT NULL ORDER BY due_at"
            )
            return list((await connection.execute(query)).all())
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


def _print(rows: list[Any], tasks: list[Task], deadlines: list[Any], routed: int, fed: int) -> None:
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
    sla = Table(title=f"Response deadlines and planned holding mails ({len(deadlines)})")
    for column in ("dossier", "deadline", "due (UTC)", "holding mail (UTC)"):
        sla.add_column(column)
    for row in deadlines:
        sla.add_row(
            row.dossier_id,
            str(row.deadline_id),
            str(row.due_at)[:16],
            str(row.holding_mail_at or "-")[:16],
        )
    console.print(sla)


async def run_demo(env: dict[str, str], timeout: float = 150.0) -> int:
    """Feed the sample contacts through every channel; print the outcome; 0 when all routed.

    Normalised sample contacts go straight onto ``intake.items.v1``; two
    e-mails go through intake_mail (local Maildir), a rendered letter through
    intake_scan's OCR, and sample calls through intake_phone's webhook.
    """
    now = dt.datetime.now(dt.UTC)
    items = demo_items(now)
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    await _publish(bootstrap, items)
    expected = len(items)
    if "intake-mail" in SERVICES:
        expected += write_mails(Path(env["INTAKE_MAIL_MAILDIR"]), now)
    if "intake-scan" in SERVICES:
        expected += drop_letter(Path(env["INTAKE_SCAN_INBOX_DIR"]), now)
    if "intake-phone" in SERVICES:
        expected += await _post_when_listening(env)
    routed = await _wait_routed(env["DATABASE_URL"], expected, timeout)
    await asyncio.sleep(2)  # let sla_watch fold the last dossier events
    _print(
        await _dossier_rows(env["DATABASE_URL"]),
        await _tasks(bootstrap),
        await _deadlines(env["DATABASE_URL"]),
        routed,
        expected,
    )
    return 0 if routed >= expected else 1


async def _post_when_listening(env: dict[str, str], timeout: float = 60.0) -> int:
    port = int(env["INTAKE_PHONE_LISTEN_PORT"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.3)
            continue
        writer.close()
        return await asyncio.to_thread(post_calls, env)
    raise TimeoutError("intake-phone did not listen")

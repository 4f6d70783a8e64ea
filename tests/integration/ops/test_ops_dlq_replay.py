"""DLQ replay after a fix: a real router dead-letters a bad item, the fixed item is routed once.

The router runs as its own process on tansu + PostgreSQL. The bad item (no
``received_at``) is dead-lettered; the operator replays a corrected payload
with ``aiguillage dlq replay ID --payload-file``; the replay marker refuses a
second replay; a forced one reaches the router, which drops it by item id.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas import IntakeItem, SenderHints
from schemas.topics import INTAKE_ITEMS
from services.common.lag import LagReader
from services.common.settings import ServiceSettings
from services.common.store import Store, create_store, migrate
from services.common.store.tables import dossier_contacts, dossiers, outbox, processed_messages
from services.common.testing import ServiceProcess, eventually, produce
from services.ops.dlq import list_dead_letters, replay_dead_letters
from services.ops.replay import REPLAY_HEADER, Selection
from services.ops.settings import OpsSettings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(180)]

ITEM = IntakeItem(
    item_id="test:email:dlq-1",
    channel="email",
    received_at=dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC),
    source_ref="test/dlq-1",
    sender=SenderHints(customer_ref="200000042", email="client42@example.test"),
    subject="Facture",
    text="Je conteste ma facture, le montant est beaucoup trop élevé.",
)


@pytest.fixture
def env(kafka_env: dict[str, str], pg_url: str) -> dict[str, str]:
    return {**kafka_env, "DATABASE_URL": pg_url}


@pytest.fixture
async def pg_store(pg_url: str) -> AsyncIterator[Store]:
    store = create_store(pg_url)
    await migrate(store)
    yield store
    await store.dispose()


@pytest.fixture
def router(
    topics: ServiceSettings, env: dict[str, str], pg_store: Store, tmp_path: Path
) -> Iterator[ServiceProcess]:
    process = ServiceProcess("router", env, tmp_path).start()
    yield process
    assert process.stop() == 0, process.output()


async def cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    """``aiguillage ARGS`` as the operator types it (its own process)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli.main",
        *args,
        env={**os.environ, **env, "COLUMNS": "250", "LOG_LEVEL": "WARNING"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, output.decode()


async def count(store: Store, table: sa.Table, **where: str) -> int:
    query = sa.select(sa.func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    async with store.engine.connect() as connection:
        return int(await connection.scalar(query) or 0)


async def replayed_records(settings: OpsSettings) -> list[tuple[bytes | None, dict[str, bytes]]]:
    """(key, headers) of every record on intake.items that carries the replay header."""
    async with LagReader(settings) as reader:
        marks = (await reader.snapshot({"nobody": [INTAKE_ITEMS]})).partitions
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(INTAKE_ITEMS, p.partition) for p in marks])
        await consumer.seek_to_beginning()
        found: list[tuple[bytes | None, dict[str, bytes]]] = []
        remaining = sum(p.high_watermark for p in marks)
        while remaining > 0:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                remaining -= len(records)
                found += [(r.key, dict(r.headers)) for r in records]
    finally:
        await consumer.stop()
    return [(key, headers) for key, headers in found if REPLAY_HEADER in headers]


async def router_caught_up(settings: OpsSettings) -> bool:
    async with LagReader(settings) as reader:
        snapshot = await reader.snapshot({"router": [INTAKE_ITEMS]})
    return snapshot.group_lag("router") == 0


async def test_ops_replay_of_a_fixed_item_routes_it_exactly_once(
    router: ServiceProcess, env: dict[str, str], pg_store: Store, kafka: str, tmp_path: Path
) -> None:
    settings = OpsSettings.model_validate(env)
    key = ITEM.partition_key().encode()
    broken = json.loads(ITEM.model_dump_json())
    del broken["received_at"]
    await produce(kafka, INTAKE_ITEMS, [(key, json.dumps(broken).encode())])

    async def dead_lettered() -> bool:
        listing = await list_dead_letters(settings, Selection(topics=frozenset({INTAKE_ITEMS})))
        return len(listing.selected) == 1

    await eventually(dead_lettered, timeout=60)
    listing = await list_dead_letters(
        settings, Selection(reason_codes=frozenset({"invalid_contract"}))
    )
    letter = listing.selected[0].letter
    assert (letter.service, letter.original_topic) == ("router", INTAKE_ITEMS)
    assert letter.original_key == key.decode()
    assert "received_at" in letter.reason
    assert listing.replayed == {}

    code, shown = await cli(env, "dlq", "list", "--reason", "invalid_contract")
    assert code == 0, shown
    assert letter.dead_letter_id in shown
    fixed = tmp_path / "fixed.json"
    fixed.write_text(ITEM.model_dump_json(), encoding="utf-8")
    code, replayed = await cli(
        env, "dlq", "replay", letter.dead_letter_id, "--payload-file", str(fixed)
    )
    assert code == 0, replayed
    assert "replayed" in replayed

    async def routed() -> bool:
        return await count(pg_store, processed_messages, message_id=ITEM.item_id) == 1

    await eventually(routed, timeout=60)
    outbox_rows = await count(pg_store, outbox)

    # The same letter again, by id and by reason: the replay marker refuses both.
    again = await replay_dead_letters(settings, Selection(ids=frozenset({letter.dead_letter_id})))
    by_reason = await replay_dead_letters(
        settings, Selection(reason_codes=frozenset({"invalid_contract"}))
    )
    assert [r.outcome for r in again + by_reason] == ["already_replayed", "already_replayed"]
    # Forced, it reaches the router again, which drops it by item id.
    forced = await replay_dead_letters(
        settings,
        Selection(ids=frozenset({letter.dead_letter_id})),
        corrected=fixed.read_bytes(),
        force=True,
    )
    assert [r.outcome for r in forced] == ["replayed"]
    await eventually(lambda: router_caught_up(settings), timeout=60)

    assert await count(pg_store, dossiers, item_id=ITEM.item_id) == 1
    assert await count(pg_store, dossier_contacts, item_id=ITEM.item_id) == 1
    assert await count(pg_store, processed_messages, message_id=ITEM.item_id) == 1
    assert await count(pg_store, outbox) == outbox_rows  # the duplicate produced nothing
    records = await replayed_records(settings)
    assert len(records) == 2  # the replay and the forced replay, nothing more
    assert {k for k, _ in records} == {key}  # original key: same partition, same order
    after = await list_dead_letters(settings, Selection(topics=frozenset({INTAKE_ITEMS})))
    assert len(after.selected) == 1  # the fixed item was not dead-lettered again
    assert after.replayed == {letter.dead_letter_id: 2}

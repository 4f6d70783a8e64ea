"""intake_scan on FastStream's in-memory broker and a SQLite store, with real files and readers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from schemas import DeadLetter, IntakeItem
from schemas.topics import DEAD_LETTERS, INTAKE_ITEMS
from services.common.store import create_store, migrate
from services.intake_scan.harness import Captured, ScanHarness


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[ScanHarness]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    store = create_store(url)
    await migrate(store)
    broker = KafkaBroker("in-memory:9092")
    captured = Captured()

    @broker.subscriber(INTAKE_ITEMS, group_id="test-items")
    async def on_item(item: IntakeItem, message: KafkaMessage) -> None:
        captured.items.append((getattr(message.raw_message, "key", None), item))

    @broker.subscriber(DEAD_LETTERS, group_id="test-dlq")
    async def on_dead_letter(letter: DeadLetter) -> None:
        captured.dead.append(letter)

    async with TestKafkaBroker(broker):
        yield ScanHarness(tmp_path, url, store, broker, captured)
    await store.dispose()

"""The app's wiring: the lifespan starts the watcher once the broker is up and stops it first."""

from __future__ import annotations

import shutil
from pathlib import Path

from faststream import TestApp
from faststream.kafka import KafkaBroker, TestKafkaBroker

from schemas import IntakeItem
from schemas.topics import INTAKE_ITEMS
from services.common.testing import eventually
from services.intake_scan.app import create_app
from services.intake_scan.settings import ScanSettings
from services.intake_scan.testing import text_pdf_batch


async def test_scan_app_watches_the_inbox_with_its_reader_pool(tmp_path: Path) -> None:
    settings = ScanSettings.model_validate(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "in-memory:9092",
            "KAFKA_CREATE_TOPICS": "false",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'store.db'}",
            "LOG_FORMAT": "json",
            "inbox_dir": tmp_path / "inbox",
            "work_dir": tmp_path / "work",
            "archive_dir": tmp_path / "archive",
            "quarantine_dir": tmp_path / "quarantine",
            "settle_s": 0,
            "poll_interval_s": 0.05,
            "ocr_workers": 1,
            "instance_id": "app-test",
        }
    )
    app = create_app(settings)
    broker = app.broker
    assert isinstance(broker, KafkaBroker)
    items: list[IntakeItem] = []

    @broker.subscriber(INTAKE_ITEMS, group_id="test")
    async def on_item(item: IntakeItem) -> None:
        items.append(item)

    text_pdf_batch(tmp_path / "staging" / "B1", ["200000031", "200000032"])

    async def both_published() -> bool:
        return len(items) == 2

    async with TestKafkaBroker(broker), TestApp(app):
        shutil.move(tmp_path / "staging" / "B1", tmp_path / "inbox" / "B1")
        await eventually(both_published, timeout=30)

    assert sorted(item.sender.customer_ref or "" for item in items) == ["200000031", "200000032"]
    assert list((tmp_path / "work").iterdir()) == []  # the stopped instance left its folder clean

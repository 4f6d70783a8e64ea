"""sla-watch publishes what its outbox still holds when it stops, not at its next start."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import sqlalchemy as sa
from faststream import TestApp
from faststream.kafka import KafkaBroker, TestKafkaBroker

from schemas.topics import OUTBOUND_CONTACTS
from services.common.outbox import OutboxMessage, add_to_outbox
from services.common.store import create_store, migrate
from services.common.store.tables import outbox
from services.sla_watch.app import create_app
from services.sla_watch.domain import PARIS
from services.sla_watch.settings import SlaWatchSettings
from services.sla_watch.testing import ClockFile

NOW = dt.datetime(2026, 6, 8, 10, 0, tzinfo=PARIS)


async def test_sla_the_outbox_is_swept_once_more_at_shutdown(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    store = create_store(url)
    await migrate(store)
    settings = SlaWatchSettings.model_validate(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "in-memory:9092",
            "KAFKA_CREATE_TOPICS": "false",
            "DATABASE_URL": url,
            "LOG_FORMAT": "json",
            "smtp_host": "127.0.0.1",
            "smtp_port": 9,  # never reached: nothing is due
            "mail_from": "Service Client <service.client@eau.example>",
            "clock_file": ClockFile(tmp_path / "clock", NOW).path,
            "outbox_sweep_interval_s": 3600,  # the periodic sweep runs at start, then sleeps
        }
    )
    app = create_app(settings)
    assert isinstance(app.broker, KafkaBroker)
    try:
        async with TestKafkaBroker(app.broker), TestApp(app):
            await asyncio.sleep(0.2)  # past the start-up sweep
            async with store.transaction() as connection:  # committed, publication pending
                message = OutboxMessage(topic=OUTBOUND_CONTACTS, key="D1", payload="{}")
                await add_to_outbox(connection, [message], NOW)
        async with store.engine.connect() as connection:
            left = await connection.scalar(sa.select(sa.func.count()).select_from(outbox))
    finally:
        await store.dispose()
    assert left == 0

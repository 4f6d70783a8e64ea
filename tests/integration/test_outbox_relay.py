"""A crash between commit and publish loses nothing: the relay publishes what was left."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from faststream.kafka import KafkaBroker

from services.common.outbox import OutboxMessage, OutboxRelay, add_to_outbox
from services.common.settings import ServiceSettings
from services.common.store import Store
from services.common.store.tables import outbox
from services.common.testing import read_topic

pytestmark = [pytest.mark.kafka]
NOW = dt.datetime(2026, 4, 1, 12, tzinfo=dt.UTC)


async def test_rows_left_by_a_crash_are_published_in_order_once(
    store: Store, topics: ServiceSettings, kafka: str
) -> None:
    # A transaction committed its outbox rows, then the process died before publishing.
    async with store.transaction() as connection:
        messages = [
            OutboxMessage(topic="dossier.events.v1", key="D1", payload=f'{{"n": {n}}}')
            for n in range(25)
        ]
        await add_to_outbox(connection, messages, NOW)

    broker = KafkaBroker(kafka)
    async with broker:
        await broker.start()
        relay = OutboxRelay(store, broker, batch_size=10)
        assert await relay.flush() == 25
        assert await relay.flush() == 0

    values = await read_topic(kafka, "dossier.events.v1", expect=25)
    assert values == [f'{{"n": {n}}}'.encode() for n in range(25)]
    async with store.engine.connect() as connection:
        pending = await connection.scalar(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        )
    assert pending == 0

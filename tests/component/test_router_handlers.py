"""The router app's handlers on FastStream's in-memory broker with a SQLite store.

A unit test of the wiring only: the real flow is proven on tansu and
PostgreSQL in tests/integration/router/.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa
from faststream import TestApp
from faststream.kafka import KafkaBroker, TestKafkaBroker

from schemas import DeadLetter, IntakeItem, SenderHints
from schemas.topics import DEAD_LETTERS, INTAKE_ITEMS
from services.common.store import create_store, migrate
from services.common.store.tables import dossiers
from services.router.app import create_app
from services.router.settings import RouterSettings


async def test_valid_item_opens_a_dossier_and_bad_input_is_dead_lettered(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    store = create_store(url)
    await migrate(store)
    settings = RouterSettings.model_validate(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "in-memory:9092",
            "DATABASE_URL": url,
            "KAFKA_CREATE_TOPICS": "false",
            "LOG_FORMAT": "json",
        }
    )
    app = create_app(settings)
    item = IntakeItem(
        item_id="email:component-1",
        channel="email",
        received_at=dt.datetime(2026, 2, 3, 10, tzinfo=dt.UTC),
        source_ref="INBOX/1",
        sender=SenderHints(customer_ref="300000001"),
        text="Je souhaite résilier mon contrat, je déménage le mois prochain.",
    )
    dead_letters: list[DeadLetter] = []

    broker = app.broker
    assert isinstance(broker, KafkaBroker)

    @broker.subscriber(DEAD_LETTERS)
    async def on_dead_letter(letter: DeadLetter) -> None:
        dead_letters.append(letter)

    async with TestKafkaBroker(broker), TestApp(app):
        await broker.publish(item.model_dump(mode="json"), INTAKE_ITEMS)
        await broker.publish({"item_id": "x"}, INTAKE_ITEMS)

    async with store.engine.connect() as connection:
        rows = (await connection.execute(sa.select(dossiers.c.dossier_type))).scalars().all()
    await store.dispose()
    assert rows == ["RESILIATION"]
    assert [letter.reason_code for letter in dead_letters] == ["invalid_contract"]
    assert "received_at" in dead_letters[0].reason

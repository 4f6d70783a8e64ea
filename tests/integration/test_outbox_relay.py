"""A crash between commit and publish loses nothing: the relay publishes what was left."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaConnectionError
from faststream.kafka import KafkaBroker

from services.common.outbox import OutboxMessage, OutboxRelay, add_to_outbox
from services.common.outbox_kafka import raw_producer
from services.common.settings import ServiceSettings
from services.common.store import Store, create_store, migrate
from services.common.store.tables import outbox
from services.common.testing import read_topic

pytestmark = [pytest.mark.kafka]
NOW = dt.datetime(2026, 4, 1, 12, tzinfo=dt.UTC)


async def _relayed_partitions(kafka: str, topic: str, expect: int) -> dict[str, int]:
    """Partition of each outbox record on ``topic``, by its payload's key."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: dict[str, int] = {}
    try:
        for _ in range(100):
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    payload = json.loads(record.value or b"{}")
                    if payload.get("via") == "outbox":
                        found[payload["k"]] = record.partition
            if len(found) >= expect:
                break
    finally:
        await consumer.stop()
    return found


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


async def test_a_key_lands_where_every_other_publisher_puts_it(
    store: Store, topics: ServiceSettings, kafka: str
) -> None:
    # Per-customer order holds only if the relay partitions a key as FastStream's own
    # publish does (the DLQ replay, for one, republishes items with broker.publish).
    keys = [f"customer-{n}" for n in range(40)]
    async with store.transaction() as connection:
        messages = [
            OutboxMessage(
                topic="intake.items.v1", key=key, payload=f'{{"via": "outbox", "k": "{key}"}}'
            )
            for key in keys
        ]
        await add_to_outbox(connection, messages, NOW)

    broker = KafkaBroker(kafka)
    async with broker:
        await broker.start()
        assert raw_producer(broker) is not None  # the batched path, not the fallback
        assert await OutboxRelay(store, broker).flush() == len(keys)
        direct = {
            key: (await broker.publish(b"{}", topic="intake.items.v1", key=key.encode())).partition
            for key in keys
        }

    relayed = await _relayed_partitions(kafka, "intake.items.v1", expect=len(keys))
    assert relayed == direct
    assert len(set(direct.values())) > 1  # the keys are spread: the check has teeth


async def test_published_rows_leave_the_table(
    store: Store, topics: ServiceSettings, kafka: str
) -> None:
    async with store.transaction() as connection:
        messages = [OutboxMessage(topic="dossier.events.v1", key="D2", payload="{}")] * 3
        await add_to_outbox(connection, messages, NOW)

    broker = KafkaBroker(kafka)
    async with broker:
        await broker.start()
        assert await OutboxRelay(store, broker).flush() == 3

    async with store.engine.connect() as connection:
        assert await connection.scalar(sa.select(sa.func.count()).select_from(outbox)) == 0


async def test_committed_rows_are_published_by_their_ids(
    store: Store, topics: ServiceSettings, kafka: str
) -> None:
    """``flush(ids)`` publishes those rows only, once; the sweep publishes the rest."""

    def messages(name: str, count: int) -> list[OutboxMessage]:
        return [
            OutboxMessage(topic="dossier.events.v1", key="D3", payload=f'{{"{name}": {n}}}')
            for n in range(count)
        ]

    async with store.transaction() as connection:  # left by a crash, or by another process
        await add_to_outbox(connection, messages("left", 3), NOW)
    async with store.transaction() as connection:
        written = await add_to_outbox(connection, messages("mine", 4), NOW)

    broker = KafkaBroker(kafka)
    async with broker:
        await broker.start()
        relay = OutboxRelay(store, broker, batch_size=3)  # the ids span two claims
        assert await relay.flush(written) == 4
        assert await relay.flush(written) == 0  # published rows are gone: never twice
        mine = await read_topic(kafka, "dossier.events.v1", expect=4)
        assert mine == [f'{{"mine": {n}}}'.encode() for n in range(4)]
        assert await relay.flush() == 3

    values = await read_topic(kafka, "dossier.events.v1", expect=7)
    assert values[4:] == [f'{{"left": {n}}}'.encode() for n in range(3)]


async def test_after_a_failed_publication_older_rows_go_out_first(
    store: Store, topics: ServiceSettings, kafka: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A dossier opened in one transaction, closed in the next; the first publication fails.
    async def write(payload: str) -> list[int]:
        async with store.transaction() as connection:
            message = OutboxMessage(topic="dossier.events.v1", key="D5", payload=payload)
            return await add_to_outbox(connection, [message], NOW)

    opened, closed = await write('"opened"'), await write('"closed"')
    broker = KafkaBroker(kafka)
    async with broker:
        await broker.start()
        relay = OutboxRelay(store, broker)
        send = relay._send

        async def broker_blip(rows: Any) -> None:
            monkeypatch.setattr(relay, "_send", send)  # only this once
            raise KafkaConnectionError()

        monkeypatch.setattr(relay, "_send", broker_blip)
        with pytest.raises(KafkaConnectionError):
            await relay.flush(opened)
        assert await relay.flush(closed) == 2  # the row left behind goes first
        assert await relay.flush(closed) == 0

    values = await read_topic(kafka, "dossier.events.v1", expect=2)
    assert values == [b'"opened"', b'"closed"']


@pytest.mark.postgres
async def test_rows_another_relay_holds_are_skipped_by_id(
    pg_url: str, topics: ServiceSettings, kafka: str
) -> None:
    # Row locks are PostgreSQL's (SQLite serialises whole write transactions).
    store = create_store(pg_url)
    await migrate(store)
    async with store.transaction() as connection:
        written = await add_to_outbox(
            connection,
            [OutboxMessage(topic="dossier.events.v1", key="D4", payload="{}")] * 2,
            NOW,
        )
    broker = KafkaBroker(kafka)
    async with broker, store.transaction() as other_relay:
        await broker.start()
        held = sa.select(outbox.c.id).where(outbox.c.id == written[0]).with_for_update()
        await other_relay.execute(held)
        assert await OutboxRelay(store, broker).flush(written) == 1  # not the held one
    async with store.engine.connect() as connection:
        left = (await connection.execute(sa.select(outbox.c.id))).scalars().all()
    await store.dispose()
    assert left == [written[0]]


async def _upgrade_with_a_marked_row(url: str) -> list[str]:
    store = create_store(url)
    try:
        await migrate(store, "0001")
        async with store.transaction() as connection:
            await connection.execute(
                outbox.insert(),
                [
                    {
                        "topic": "t",
                        "key": "k",
                        "payload": "sent",
                        "created_at": NOW,
                        "published_at": NOW,
                    },
                    {
                        "topic": "t",
                        "key": "k",
                        "payload": "pending",
                        "created_at": NOW,
                        "published_at": None,
                    },
                ],
            )

        await migrate(store)

        async with store.engine.connect() as connection:
            return list((await connection.execute(sa.select(outbox.c.payload))).scalars())
    finally:
        await store.dispose()


async def test_the_upgrade_drops_rows_an_older_relay_marked_published_sqlite(
    sqlite_url: str,
) -> None:
    assert await _upgrade_with_a_marked_row(sqlite_url) == ["pending"]


async def test_the_upgrade_drops_rows_an_older_relay_marked_published_postgres(
    pg_url: str,
) -> None:
    assert await _upgrade_with_a_marked_row(pg_url) == ["pending"]

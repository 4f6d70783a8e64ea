"""A row the broker refuses for its size is parked and dead-lettered; the rows after it flow."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa
from faststream.kafka import KafkaBroker

from schemas import DeadLetter
from schemas.topics import DEAD_LETTERS
from services.common import outbox as outbox_module
from services.common.kafka import MAX_BATCH_BYTES, build_broker
from services.common.metrics import metrics
from services.common.outbox import OutboxMessage, OutboxRelay, add_to_outbox
from services.common.settings import ServiceSettings
from services.common.store import Store, create_store, migrate
from services.common.store.tables import outbox
from services.common.testing import read_topic
from services.ops.adapters.parked_rows import parked_rows, release_parked

pytestmark = [pytest.mark.kafka]
NOW = dt.datetime(2026, 4, 1, 12, tzinfo=dt.UTC)
LIMIT = 2048  # the producer's max_request_size in these tests
BIG = "é" * 1500  # 3,000 bytes: over the limit


def _events(*payloads: str, key: str | None = "D1") -> list[OutboxMessage]:
    return [OutboxMessage(topic="dossier.events.v1", key=key, payload=p) for p in payloads]


async def _write(store: Store, messages: list[OutboxMessage]) -> list[int]:
    async with store.transaction() as connection:
        return await add_to_outbox(connection, messages, NOW)


async def _pending(store: Store) -> list[str]:
    async with store.engine.connect() as connection:
        query = sa.select(outbox.c.payload).where(outbox.c.parked_at.is_(None))
        return list((await connection.execute(query)).scalars())


async def test_a_row_too_large_is_parked_and_those_after_it_are_published_in_order(
    store: Store, topics: ServiceSettings, kafka: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_module, "PARKED_EXCERPT_BYTES", 256)  # letters fit the limit
    written = await _write(
        store,
        [
            *_events('{"n": 0}', f'{{"big": "{BIG}"}}', '{"n": 2}'),
            *_events(f'{{"unkeyed": "{BIG}"}}', key=None),
            *_events('{"n": 4}'),
        ],
    )

    labels = {"service": "router", "reason_code": "outbox_row_too_large"}
    counted = metrics.registry.get_sample_value("aiguillage_dead_letters_total", labels) or 0
    async with KafkaBroker(kafka, max_request_size=LIMIT) as broker:
        await broker.start()
        relay = OutboxRelay(store, broker, service="router")
        assert await relay.flush(written) == 5  # 3 published, 2 parked
        assert await relay.flush() == 2  # the 2 dead letters, written with the parking
        assert await relay.flush() == 0  # parked rows are not claimed again

    assert await read_topic(kafka, "dossier.events.v1", expect=3) == [
        b'{"n": 0}',
        b'{"n": 2}',
        b'{"n": 4}',
    ]
    parked = await parked_rows(store)
    assert [row.id for row in parked] == [written[1], written[3]]
    assert all("bytes for dossier.events.v1" in row.reason for row in parked)
    assert [row.key for row in parked] == ["D1", None]
    letters = [
        DeadLetter.model_validate_json(v) for v in await read_topic(kafka, DEAD_LETTERS, expect=2)
    ]
    assert sorted(letter.original_ref for letter in letters) == [
        f"outbox/{written[1]}",
        f"outbox/{written[3]}",
    ]
    for letter in letters:
        assert letter.reason_code == "outbox_row_too_large"
        assert letter.original_topic == "dossier.events.v1"
        assert letter.service == "router"
        assert letter.payload_truncated
        assert letter.payload_b64 is not None
        assert len(base64.b64decode(letter.payload_b64)) == 256
    assert await _pending(store) == []  # only the parked rows are left
    assert metrics.registry.get_sample_value("aiguillage_dead_letters_total", labels) == (
        counted + 2
    )


async def test_released_rows_are_published_once_the_limit_allows_them(
    store: Store, topics: ServiceSettings, kafka: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_module, "PARKED_EXCERPT_BYTES", 256)
    big = f'{{"big": "{BIG}"}}'
    written = await _write(store, _events(big))
    async with KafkaBroker(kafka, max_request_size=LIMIT) as broker:
        await broker.start()
        assert await OutboxRelay(store, broker).flush(written) == 1
    assert [row.id for row in await parked_rows(store)] == written

    assert await release_parked(store, [written[0] + 1000]) == 0  # not a parked row
    assert await release_parked(store, written) == 1
    async with KafkaBroker(kafka, max_request_size=1024 * 1024) as broker:
        await broker.start()
        assert await OutboxRelay(store, broker).flush() == 2  # the row and its dead letter

    assert await read_topic(kafka, "dossier.events.v1", expect=1) == [big.encode()]
    assert await parked_rows(store) == []
    async with store.engine.connect() as connection:
        assert await connection.scalar(sa.select(sa.func.count()).select_from(outbox)) == 0


async def test_a_dead_letter_too_large_is_parked_without_a_letter_about_it(
    store: Store, topics: ServiceSettings, kafka: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The letter carries the row's first bytes: over the limit too, it is parked; a
    # letter about the letter would be as large, and so on for ever.
    monkeypatch.setattr(outbox_module, "PARKED_EXCERPT_BYTES", 4096)
    written = await _write(store, _events(f'{{"big": "{BIG}"}}'))
    async with KafkaBroker(kafka, max_request_size=LIMIT) as broker:
        await broker.start()
        relay = OutboxRelay(store, broker)
        assert await relay.flush(written) == 1
        assert await relay.flush() == 1  # the letter, parked in turn
        assert await relay.flush() == 0

    parked = await parked_rows(store)
    assert [row.topic for row in parked] == ["dossier.events.v1", DEAD_LETTERS]


def test_ops_list_and_release_parked_rows_from_the_command_line(sqlite_url: str) -> None:
    async def park_one() -> list[int]:
        store = create_store(sqlite_url)
        try:
            await migrate(store)
            written = await _write(store, _events('{"customer": "secret"}'))
            async with store.transaction() as connection:
                await connection.execute(
                    outbox.update().values(parked_at=NOW, parked_reason="3000 bytes for t: X")
                )
            return written
        finally:
            await store.dispose()

    written = asyncio.run(park_one())
    env = {**os.environ, "DATABASE_URL": sqlite_url, "COLUMNS": "200", "LOG_LEVEL": "WARNING"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "services.cli.main", "outbox", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    listing = cli("parked")
    assert listing.returncode == 0, listing.stderr
    assert str(written[0]) in listing.stdout
    assert "3000 bytes for t" in listing.stdout
    assert "secret" not in listing.stdout + listing.stderr  # payloads are never printed

    assert cli("release").returncode != 0  # ids or --all
    assert cli("release", str(written[0] + 7)).returncode == 1
    released = cli("release", str(written[0]))
    assert released.returncode == 0, released.stderr
    assert "1 row(s) released" in released.stdout

    async def pending() -> list[str]:
        store = create_store(sqlite_url)
        try:
            return await _pending(store)
        finally:
            await store.dispose()

    assert asyncio.run(pending()) == ['{"customer": "secret"}']


async def test_the_upgrade_keeps_pending_rows_and_tunes_the_queues_vacuum(pg_url: str) -> None:
    store = create_store(pg_url)
    try:
        await migrate(store, "0002")
        async with store.transaction() as connection:
            await connection.execute(
                sa.text(
                    "INSERT INTO outbox (topic, key, payload, created_at) "
                    "VALUES ('t', 'k', 'pending', now())"
                )
            )
        await migrate(store)
        assert await _pending(store) == ["pending"]
        async with store.engine.connect() as connection:
            options = await connection.scalar(
                sa.text("SELECT reloptions FROM pg_class WHERE relname = 'outbox'")
            )
        assert "autovacuum_vacuum_scale_factor=0" in options
    finally:
        await store.dispose()


async def test_rows_of_one_key_over_a_batch_are_split_into_batches_and_kept_in_order(
    store: Store, topics: ServiceSettings, kafka: str
) -> None:
    # 48 rows of 24 KiB for one key: more than one record batch of the services' producer
    # (build_broker caps a batch at MAX_BATCH_BYTES, under a default Kafka's 1 MiB).
    filler = "x" * (24 * 1024)
    payloads = [f'{{"n": {n}, "fill": "{filler}"}}' for n in range(48)]
    assert len(payloads) * len(filler) > MAX_BATCH_BYTES
    written = await _write(store, _events(*payloads))
    async with build_broker(topics, client_id="test") as broker:
        await broker.start()
        assert await OutboxRelay(store, broker).flush(written) == len(payloads)

    received = await read_topic(kafka, "dossier.events.v1", expect=len(payloads))
    assert received == [p.encode() for p in payloads]
    assert await parked_rows(store) == []

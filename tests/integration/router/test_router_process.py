"""The router as its own OS process on tansu + PostgreSQL: route, redeliver, dead-letter."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from schemas import DeadLetter, IntakeItem, SenderHints, Task
from schemas.dossiers import DossierEventAdapter
from schemas.topics import DEAD_LETTERS, DOSSIER_EVENTS, INTAKE_ITEMS, task_topic
from services.common.settings import ServiceSettings
from services.common.store import Store, create_store, migrate
from services.common.store.tables import dossier_contacts, dossiers, outbox, processed_messages
from services.common.testing import ServiceProcess, eventually, produce, read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

NOW = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)


def _item(n: int, *, ref: str, text: str, subject: str = "Demande") -> IntakeItem:
    return IntakeItem(
        item_id=f"test:email:{n}",
        channel="email",
        received_at=NOW + dt.timedelta(minutes=n),
        source_ref=f"test/{n}",
        sender=SenderHints(customer_ref=ref, email=f"client{n}@example.test"),
        subject=subject,
        text=text,
    )


ITEMS = [
    _item(1, ref="200000001", text="Je conteste ma facture, le montant est beaucoup trop élevé."),
    _item(
        2, ref="200000002", text="Il y a une fuite importante sur le compteur, la cave est inondée."
    ),
    _item(3, ref="200000001", text="Je vous relance pour la contestation de ma facture."),
    _item(4, ref="200000003", text="Je souhaite passer à la mensualisation de mes factures."),
]


@pytest.fixture
async def pg_store(pg_url: str) -> AsyncIterator[Store]:
    store = create_store(pg_url)
    await migrate(store)
    yield store
    await store.dispose()


@pytest.fixture
def router(
    topics: ServiceSettings, kafka_env: dict[str, str], pg_url: str, tmp_path: Path
) -> Iterator[ServiceProcess]:
    process = ServiceProcess("router", {**kafka_env, "DATABASE_URL": pg_url}, tmp_path).start()
    yield process
    assert process.stop() == 0, process.output()


def _encode(item: IntakeItem) -> tuple[bytes, bytes]:
    return item.partition_key().encode(), item.model_dump_json().encode()


async def _count(store: Store, table: sa.Table) -> int:
    async with store.engine.connect() as connection:
        return int(await connection.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


async def _dossiers_and_published_events(store: Store, kafka: str) -> tuple[int, int]:
    """Dossiers stored and dossier events published, once the outbox is drained.

    The relay deletes a row once it is published, so what the router ever wrote
    to the outbox is what reached the topic.
    """

    async def drained() -> bool:
        return await _count(store, outbox) == 0

    await eventually(drained, timeout=30)
    events = await read_topic(kafka, DOSSIER_EVENTS, quiet_s=1.0)
    return await _count(store, dossiers), len(events)


async def _routed(store: Store, n: int) -> None:
    async def probe() -> bool:
        return await _count(store, processed_messages) >= n

    await eventually(probe, timeout=60)


async def test_items_open_dossiers_attach_multicontacts_and_dispatch_tasks(
    router: ServiceProcess, pg_store: Store, kafka: str
) -> None:
    await produce(kafka, INTAKE_ITEMS, [_encode(i) for i in ITEMS])
    await _routed(pg_store, len(ITEMS))

    async with pg_store.engine.connect() as connection:
        rows = (await connection.execute(sa.select(dossiers))).all()
        contacts = (await connection.execute(sa.select(dossier_contacts))).all()
    assert len(rows) == 3
    by_customer = {row.customer_ref: row for row in rows}
    assert by_customer["200000001"].dossier_type == "FACTURE"
    assert by_customer["200000001"].kind == "reclamation"
    assert by_customer["200000002"].urgency == "urgent"
    roles = sorted((c.item_id, c.role) for c in contacts)
    assert roles == [
        ("test:email:1", "initial"),
        ("test:email:2", "initial"),
        ("test:email:3", "multi_contact"),
        ("test:email:4", "initial"),
    ]

    supervisor = [
        Task.model_validate_json(v)
        for v in await read_topic(kafka, task_topic("supervisor"), expect=1)
    ]
    assert [t.action for t in supervisor] == ["prioritise_multicontact"]
    assert supervisor[0].dossier_id == by_customer["200000001"].dossier_id
    events = [
        DossierEventAdapter.validate_json(v)
        for v in await read_topic(kafka, DOSSIER_EVENTS, expect=4)
    ]
    assert sorted(e.type for e in events) == ["contact_attached", *["dossier_opened"] * 3]


async def test_redelivered_items_change_nothing(
    router: ServiceProcess,
    pg_store: Store,
    kafka: str,
    kafka_env: dict[str, str],
    pg_url: str,
    tmp_path: Path,
) -> None:
    await produce(kafka, INTAKE_ITEMS, [_encode(i) for i in ITEMS])
    await _routed(pg_store, len(ITEMS))
    before = await _dossiers_and_published_events(pg_store, kafka)

    # The same items again, and a second router in a new consumer group that
    # re-reads the whole topic from the start: every item is delivered again.
    await produce(kafka, INTAKE_ITEMS, [_encode(i) for i in ITEMS])
    second = ServiceProcess(
        "router",
        {
            **kafka_env,
            "DATABASE_URL": pg_url,
            "ROUTER_GROUP_ID": "router-replay",
            "ROUTER_COMMANDS_GROUP_ID": "router-replay-commands",
        },
        tmp_path / "second",
    )
    (tmp_path / "second").mkdir()
    second.start()
    try:
        await eventually(
            lambda: _group_caught_up(kafka, "router-replay", 2 * len(ITEMS)), timeout=60
        )
    finally:
        assert second.stop() == 0, second.output()
    assert await _dossiers_and_published_events(pg_store, kafka) == before
    tasks = await read_topic(kafka, task_topic("billing"), quiet_s=1.0)
    assert len({Task.model_validate_json(v).task_id for v in tasks}) == len(tasks)


async def _group_caught_up(bootstrap: str, group: str, total: int) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.structs import TopicPartition

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        partitions = [TopicPartition(INTAKE_ITEMS, p) for p in range(3)]
        offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
        committed: int = sum(max(o.offset, 0) for o in offsets.values())
        return committed >= total
    finally:
        await admin.close()


async def test_malformed_messages_go_to_the_dlq_and_the_next_item_is_routed(
    router: ServiceProcess, pg_store: Store, kafka: str
) -> None:
    future_version = json.loads(ITEMS[3].model_dump_json()) | {"schema_version": "2.0"}
    missing_field = json.loads(ITEMS[3].model_dump_json())
    del missing_field["received_at"]
    bad = [
        (b"k1", b"this is not json"),
        (b"k1", json.dumps(future_version).encode()),
        (b"k1", json.dumps(missing_field).encode()),
    ]
    await produce(kafka, INTAKE_ITEMS, [*bad, (b"k1", ITEMS[0].model_dump_json().encode())])
    await _routed(pg_store, 1)

    letters = [
        DeadLetter.model_validate_json(v) for v in await read_topic(kafka, DEAD_LETTERS, expect=3)
    ]
    assert sorted(letter.reason_code for letter in letters) == [
        "invalid_contract",
        "invalid_contract",
        "unsupported_schema_version",
    ]
    assert all(
        letter.original_topic == INTAKE_ITEMS and letter.service == "router" for letter in letters
    )
    assert any("received_at" in letter.reason for letter in letters)
    assert await _count(pg_store, dossiers) == 1


async def test_rows_a_crash_left_in_the_outbox_are_published_at_start(
    topics: ServiceSettings, kafka_env: dict[str, str], pg_url: str, tmp_path: Path
) -> None:
    # The previous process committed a batch, then died before publishing it: only the
    # periodic sweep, from its first round (before the broker was connected, it used to
    # die on that first round, silently), publishes those rows.
    store = create_store(pg_url)
    await migrate(store)
    topic = task_topic("billing")
    async with store.transaction() as connection:
        await connection.execute(
            outbox.insert(),
            [
                {"topic": topic, "key": "D-left", "payload": f'{{"left": {n}}}', "created_at": NOW}
                for n in range(3)
            ],
        )
    process = ServiceProcess("router", {**kafka_env, "DATABASE_URL": pg_url}, tmp_path).start()
    try:
        values = await read_topic(topics.kafka_bootstrap_servers, topic, expect=3, max_s=20)
        assert values == [f'{{"left": {n}}}'.encode() for n in range(3)]
        assert await _count(store, outbox) == 0
    finally:
        assert process.stop() == 0, process.output()
        await store.dispose()

"""The router app's handlers on FastStream's in-memory broker with a SQLite store.

A unit test of the wiring only: the real flow is proven on tansu and
PostgreSQL in tests/integration/router/.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Collection
from pathlib import Path
from typing import cast

import pytest
import sqlalchemy as sa
from aiokafka.errors import KafkaConnectionError
from faststream import FastStream, TestApp
from faststream.kafka import KafkaBroker, TestKafkaBroker

from schemas import AccountAction, DeadLetter, IntakeItem, SenderHints
from schemas.dossiers import CloseDossier
from schemas.topics import ACCOUNT_ACTIONS, DEAD_LETTERS, INTAKE_ITEMS
from services.common.outbox import OutboxRelay
from services.common.store import Store, create_store, migrate
from services.common.store.tables import dossiers, outbox
from services.router.app import create_app
from services.router.rules_loader import load_rules
from services.router.service import RouterService
from services.router.settings import RouterSettings


async def _router_on_sqlite(tmp_path: Path) -> tuple[Store, FastStream]:
    """A migrated SQLite store and the router app on it (broker to be tested in memory)."""
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
    return store, create_app(settings)


async def test_valid_item_opens_a_dossier_and_bad_input_is_dead_lettered(tmp_path: Path) -> None:
    store, app = await _router_on_sqlite(tmp_path)
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


async def test_one_batch_sees_its_own_earlier_dossiers(tmp_path: Path) -> None:
    """A bill opened then cancelled in one batch: the cancel finds it and lifts its dunning block.

    The batch is one transaction; the second contact must see the dossier the
    first one opened, with its dunning block (4.13, 5.1.7.2 a).
    """
    store, app = await _router_on_sqlite(tmp_path)
    texts = (
        "Je conteste ma facture, le montant est beaucoup trop élevé.",
        "J'annule ma demande concernant ma facture, le problème est résolu.",
    )
    items = [
        IntakeItem(
            item_id=f"email:component-batch-{n}",
            channel="email",
            received_at=dt.datetime(2026, 2, 3, 10, n, tzinfo=dt.UTC),
            source_ref=f"INBOX/{n}",
            sender=SenderHints(customer_ref="300000002"),
            text=text,
        )
        for n, text in enumerate(texts)
    ]
    actions: list[AccountAction] = []
    broker = app.broker
    assert isinstance(broker, KafkaBroker)

    @broker.subscriber(ACCOUNT_ACTIONS)
    async def on_account_action(action: AccountAction) -> None:
        actions.append(action)

    async with TestKafkaBroker(broker), TestApp(app):
        await broker.publish_batch(*(i.model_dump(mode="json") for i in items), topic=INTAKE_ITEMS)

    async with store.engine.connect() as connection:
        rows = (
            await connection.execute(sa.select(dossiers.c.dossier_type, dossiers.c.status))
        ).all()
    await store.dispose()
    assert [tuple(row) for row in rows] == [("FACTURE", "cancelled")]
    assert [a.action for a in actions] == ["block_dunning", "unblock_dunning"]


class _HeldRelay(OutboxRelay):
    """An outbox relay whose flushes wait until released, or fail like a lost broker."""

    def __init__(self, error: Exception | None = None) -> None:
        super().__init__(cast(Store, None), KafkaBroker())
        self.flushed: list[list[int]] = []
        self.release = asyncio.Event()
        self.error = error

    async def flush(self, ids: Collection[int] | None = None) -> int:
        self.flushed.append(sorted(ids or []))
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return len(ids or [])


@pytest.mark.parametrize("error", [None, OSError("broker gone")], ids=["published", "failed"])
async def test_publication_runs_once_at_a_time_and_drains(
    tmp_path: Path, error: Exception | None
) -> None:
    """Committed rows are published in the background, one flush at a time; rows committed
    meanwhile go in the next flush together; after a failure they are left to the sweep."""
    store = create_store(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    relay = _HeldRelay(error)
    service = RouterService(store, load_rules(), cast(OutboxRelay, relay))
    service.publish_soon([1, 2])
    await asyncio.sleep(0)
    service.publish_soon([3])
    service.publish_soon([4])
    await asyncio.sleep(0)
    assert relay.flushed == [[1, 2]]
    relay.release.set()
    await service.drain()  # never raises: the rows stay in the outbox for the relay's sweep
    # ... and ends with one more sweep (the empty list) before the broker stops
    assert relay.flushed == ([[1, 2], [3, 4], []] if error is None else [[1, 2], []])
    await service.stop_publishing()
    await store.dispose()


class _BrokerDownRelay(OutboxRelay):
    """An outbox relay on a broker that is down: every publication fails."""

    def __init__(self) -> None:
        super().__init__(cast(Store, None), KafkaBroker())
        self.flushes = 0

    async def flush(self, ids: Collection[int] | None = None) -> int:
        self.flushes += 1
        raise KafkaConnectionError("broker down")


async def test_a_command_committed_while_the_broker_is_down_is_not_redelivered(
    tmp_path: Path,
) -> None:
    """The command's effects and events are committed: a failed publication is the sweep's,
    and the handler must not fail (its command would be redelivered and logged as an error)."""
    store = create_store(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    await migrate(store)
    relay = _BrokerDownRelay()
    service = RouterService(store, load_rules(), cast(OutboxRelay, relay))
    item = IntakeItem(
        item_id="test:email:cmd",
        channel="email",
        received_at=dt.datetime(2026, 5, 4, 9, tzinfo=dt.UTC),
        source_ref="test/cmd",
        sender=SenderHints(customer_ref="200000042", email="client@example.test"),
        subject="Facture",
        text="Je conteste ma facture, le montant est trop élevé.",
    )
    (outcome,) = await service.route([item])
    await service.drain()
    assert outcome.dossier_id is not None
    close = CloseDossier(
        command_id="close-1",
        dossier_id=outcome.dossier_id,
        issued_at=dt.datetime(2026, 5, 5, 9, tzinfo=dt.UTC),
        issued_by="billing",
    )
    effects = await service.apply(close)  # does not raise
    assert effects.outcome != "duplicate"
    async with store.engine.connect() as connection:
        status = await connection.scalar(
            sa.select(dossiers.c.status).where(dossiers.c.dossier_id == outcome.dossier_id)
        )
        pending = await connection.scalar(sa.select(sa.func.count()).select_from(outbox))
    assert status == "closed"
    assert (pending or 0) > 0  # kept for the sweep
    await service.stop_publishing()
    await store.dispose()

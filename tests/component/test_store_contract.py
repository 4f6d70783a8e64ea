"""One contract for the dossier store, run on SQLite and on PostgreSQL (never mocked)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from services.common.outbox import OutboxMessage, add_to_outbox
from services.common.store import Store, migrate
from services.common.store.registry import all_tables
from services.common.store.tables import dossiers, outbox
from services.router.adapters.repository import DossierRepository

NOW = dt.datetime(2026, 5, 4, 8, 0, tzinfo=dt.UTC)


def _dossier(
    dossier_id: str, *, customer_key: str | None = "ref:1", status: str = "open"
) -> dict[str, object]:
    return {
        "dossier_id": dossier_id,
        "customer_key": customer_key,
        "customer_ref": "100000001",
        "dossier_type": "FACTURE",
        "kind": "reclamation",
        "urgency": "normale",
        "service": "billing",
        "channel": "email",
        "status": status,
        "item_id": f"item-{dossier_id}",
        "contact_date": NOW,
        "opened_at": NOW,
    }


class TestStoreContract:
    async def test_migrations_are_idempotent(self, store: Store) -> None:
        await migrate(store)
        assert await store.ping()

    async def test_migrations_create_exactly_the_declared_tables(self, store: Store) -> None:
        def differences(connection: sa.Connection) -> list[object]:
            context = MigrationContext.configure(connection)
            return list(compare_metadata(context, all_tables()))

        async with store.engine.connect() as connection:
            assert await connection.run_sync(differences) == []

    async def test_processed_messages_are_remembered_per_consumer(self, store: Store) -> None:
        async with store.transaction() as connection:
            repo = DossierRepository(connection, postgres=store.is_postgres)
            await repo.mark_processed("router.items", "m1", "opened", "D1", NOW)
        async with store.transaction() as connection:
            repo = DossierRepository(connection, postgres=store.is_postgres)
            assert await repo.is_processed("router.items", "m1")
            assert not await repo.is_processed("sla.events", "m1")

    async def test_recording_a_message_twice_fails_the_transaction(self, store: Store) -> None:
        async with store.transaction() as connection:
            await DossierRepository(connection, postgres=store.is_postgres).mark_processed(
                "c", "m", "opened", None, NOW
            )
        with pytest.raises(sa.exc.IntegrityError):
            async with store.transaction() as connection:
                await DossierRepository(connection, postgres=store.is_postgres).mark_processed(
                    "c", "m", "opened", None, NOW
                )

    async def test_at_most_one_open_dossier_per_customer_and_type(self, store: Store) -> None:
        async with store.transaction() as connection:
            repo = DossierRepository(connection, postgres=store.is_postgres)
            await repo.insert_dossier(_dossier("D1"))
            await repo.insert_dossier(_dossier("D0", status="closed"))
            await repo.insert_dossier(_dossier("D2", customer_key=None))
            await repo.insert_dossier(_dossier("D3", customer_key=None))
        with pytest.raises(sa.exc.IntegrityError):
            async with store.transaction() as connection:
                repo = DossierRepository(connection, postgres=store.is_postgres)
                await repo.insert_dossier(_dossier("D4"))

    async def test_customer_dossiers_lists_open_and_recently_closed_ones(
        self, store: Store
    ) -> None:
        async with store.transaction() as connection:
            repo = DossierRepository(connection, postgres=store.is_postgres)
            await repo.insert_dossier(_dossier("D1"))
            await repo.insert_dossier(_dossier("D0", status="closed") | {"closed_at": NOW})
            old = NOW - dt.timedelta(days=400)
            await repo.insert_dossier(_dossier("D9", status="closed") | {"closed_at": old})
            await repo.insert_dossier(_dossier("D8", status="cancelled") | {"closed_at": NOW})
            await repo.update_dossier("D1", {"urgency": "urgent"})
            views = await repo.customer_dossiers("ref:1", NOW - dt.timedelta(days=60))
            row = await repo.get("D1")
        assert sorted((v.dossier_id, v.status) for v in views) == [("D0", "closed"), ("D1", "open")]
        assert {v.closed_at for v in views if v.status == "closed"} == {NOW}
        assert row is not None
        assert row.urgency == "urgent"

    async def test_contacts_need_their_dossier(self, store: Store) -> None:
        with pytest.raises(sa.exc.IntegrityError):
            async with store.transaction() as connection:
                await DossierRepository(connection, postgres=store.is_postgres).add_contact(
                    item_id="i", dossier_id="missing", channel="email", role="initial",
                    contact_date=NOW, now=NOW,
                )  # fmt: skip

    async def test_outbox_rows_roll_back_with_the_transaction(self, store: Store) -> None:
        message = OutboxMessage(topic="t", key="k", payload="{}")
        with pytest.raises(RuntimeError):
            async with store.transaction() as connection:
                await add_to_outbox(connection, [message], NOW)
                raise RuntimeError("crash before commit")
        keyless = OutboxMessage(topic="t2", key=None, payload='{"n": 2}')
        async with store.transaction() as connection:
            written = await add_to_outbox(connection, [message, keyless], NOW)
        async with store.engine.connect() as connection:
            columns = (outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.payload)
            query = sa.select(*columns, outbox.c.created_at).order_by(outbox.c.id)
            rows = [
                (*row[:4], row.created_at.replace(tzinfo=row.created_at.tzinfo or dt.UTC))
                for row in await connection.execute(query)
            ]  # (SQLite returns the UTC timestamp naive)
        assert rows == [
            (written[0], "t", "k", "{}", NOW),  # the relay publishes them by these ids
            (written[1], "t2", None, '{"n": 2}', NOW),
        ]

    async def test_timestamps_come_back_aware(self, store: Store) -> None:
        async with store.transaction() as connection:
            await DossierRepository(connection, postgres=store.is_postgres).insert_dossier(
                _dossier("D1")
            )
        async with store.engine.connect() as connection:
            opened = await connection.scalar(sa.select(dossiers.c.opened_at))
        assert opened is not None
        assert opened.replace(tzinfo=opened.tzinfo or dt.UTC) == NOW

    async def test_customer_lock_serialises_two_transactions(self, store: Store) -> None:
        order: list[str] = []

        async def worker(name: str, hold: float) -> None:
            async with store.transaction() as connection:
                repo = DossierRepository(connection, postgres=store.is_postgres)
                await repo.lock_customer("ref:1")
                if not store.is_postgres:
                    await repo.insert_dossier(_dossier(f"D-{name}", customer_key=None))
                order.append(f"{name}-in")
                await asyncio.sleep(hold)
                order.append(f"{name}-out")

        await asyncio.gather(worker("a", 0.3), worker("b", 0.0))
        assert order in (["a-in", "a-out", "b-in", "b-out"], ["b-in", "b-out", "a-in", "a-out"])

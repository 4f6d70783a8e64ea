"""sla_watch's tables and claims on both store backends (SQLite and PostgreSQL, never mocked)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from services.common.store import Store
from services.common.store.registry import all_tables
from services.sla_watch.adapters.repository import SlaRepository, Summary
from services.sla_watch.testing import opened

NOW = dt.datetime(2026, 6, 8, 8, 0, tzinfo=dt.UTC)


def _summary(next_check: dt.datetime | None) -> Summary:
    return Summary("running", "D:5wd", NOW, None, next_check)


async def _seed(store: Store, count: int) -> None:
    async with store.transaction() as connection:
        repo = SlaRepository(connection, postgres=store.is_postgres)
        for n in range(count):
            dossier = f"D{n:02d}"
            check = NOW + dt.timedelta(minutes=n)
            await repo.save(dossier, [opened(dossier, NOW)], _summary(check), NOW, new=True)
        await repo.save("D-ENDED", [opened("D-ENDED", NOW)], _summary(None), NOW, new=True)


async def test_sla_migration_creates_exactly_the_declared_sla_tables(store: Store) -> None:
    def differences(connection: sa.Connection) -> list[object]:
        context = MigrationContext.configure(connection)
        return list(compare_metadata(context, all_tables()))

    async with store.engine.connect() as connection:
        diffs = await connection.run_sync(differences)
    assert [d for d in diffs if "sla_" in repr(d)] == []


async def test_sla_due_dossiers_are_claimed_earliest_first_and_round_trip(store: Store) -> None:
    await _seed(store, 5)
    async with store.transaction() as connection:
        repo = SlaRepository(connection, postgres=store.is_postgres)
        due = await repo.claim_due(NOW + dt.timedelta(minutes=2), limit=10)
    assert [d.dossier_id for d in due] == ["D00", "D01", "D02"]
    assert due[0].events() == (opened("D00", NOW),)


async def test_sla_an_action_is_recorded_once(store: Store) -> None:
    row = {"action_id": "D:5wd:breach", "dossier_id": "D", "kind": "breach", "status": "done"}
    async with store.transaction() as connection:
        await SlaRepository(connection, postgres=store.is_postgres).record_action(
            **row, created_at=NOW
        )
    with pytest.raises(sa.exc.IntegrityError):
        async with store.transaction() as connection:
            await SlaRepository(connection, postgres=store.is_postgres).record_action(
                **row, created_at=NOW
            )


async def test_sla_concurrent_claims_never_take_the_same_dossier(store: Store) -> None:
    """PostgreSQL: SKIP LOCKED splits the due rows; SQLite: the write lock serialises claims."""
    await _seed(store, 20)
    taken: list[list[str]] = []
    first_claimed = asyncio.Event()

    async def claim(hold: bool) -> None:
        async with store.transaction() as connection:
            repo = SlaRepository(connection, postgres=store.is_postgres)
            due = await repo.claim_due(NOW + dt.timedelta(hours=1), limit=8)
            taken.append([d.dossier_id for d in due])
            if hold:
                first_claimed.set()
                await asyncio.sleep(0.3)  # keep the rows locked while the other claims
            for stored in due:
                await repo.park(stored.dossier_id, "claimed", NOW)

    async def second() -> None:
        await first_claimed.wait()
        await claim(hold=False)

    await asyncio.gather(claim(hold=True), second())
    first, other = taken
    assert len(first) == 8
    assert len(other) == 8
    assert set(first).isdisjoint(other)

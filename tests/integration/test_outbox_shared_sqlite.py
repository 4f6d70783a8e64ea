"""Several processes on one SQLite file (``aiguillage up``) never delete each other's rows."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from faststream.kafka import KafkaBroker

from services.common.outbox import OutboxMessage, OutboxRelay, add_to_outbox
from services.common.store import Store, create_store, migrate
from services.common.store.tables import outbox

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class _Relay(OutboxRelay):
    """Records what it sends; with a gate, its acks wait for it (a slow broker)."""

    def __init__(self, store: Store, gate: asyncio.Event | None = None) -> None:
        super().__init__(store, KafkaBroker())
        self.gate = gate
        self.claimed = asyncio.Event()
        self.sent: list[str] = []

    async def _send(self, rows: Sequence[Any]) -> None:
        self.claimed.set()
        if self.gate is not None:
            await self.gate.wait()
        self.sent += [row.payload for row in rows]


async def _write(store: Store, *payloads: str) -> list[int]:
    async with store.transaction() as connection:
        messages = [OutboxMessage(topic="t", key="k", payload=p) for p in payloads]
        return await add_to_outbox(connection, messages, NOW)


async def test_a_slow_relay_never_deletes_rows_written_after_another_emptied_the_table(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'one.db'}"
    router, sla = create_store(url), create_store(url)  # two processes, one file
    try:
        await migrate(router)
        acks = asyncio.Event()
        slow, fast = _Relay(router, gate=acks), _Relay(sla)
        old = await _write(router, "old-1", "old-2", "old-3")
        sweeping = asyncio.create_task(slow.flush())  # claims the old rows, awaits its acks
        await slow.claimed.wait()
        assert await fast.flush() == 3  # publishes and deletes them: the table is empty
        new = await _write(sla, "new-1", "new-2", "new-3")
        assert not set(new) & set(old)  # an emptied table does not hand out its ids again
        acks.set()
        await sweeping  # the slow relay deletes what it claimed, by id

        async with router.engine.connect() as connection:
            left = (await connection.execute(sa.select(outbox.c.payload))).scalars().all()
        assert sorted(left) == ["new-1", "new-2", "new-3"]  # still there, for the next sweep
        assert await fast.flush() == 3
        assert fast.sent == ["old-1", "old-2", "old-3", "new-1", "new-2", "new-3"]
    finally:
        await router.dispose()
        await sla.dispose()


async def test_the_upgrade_keeps_pending_rows_and_stops_reusing_their_ids(tmp_path: Path) -> None:
    store = create_store(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await migrate(store, "0003")
        first = await _write(store, "pending")
        await migrate(store)
        async with store.transaction() as connection:  # the table was rebuilt, rows kept
            kept = (await connection.execute(sa.select(outbox.c.id, outbox.c.payload))).all()
            assert [tuple(row) for row in kept] == [(first[0], "pending")]
            await connection.execute(outbox.delete())
        again = await _write(store, "next")
        async with store.engine.connect() as connection:
            sql = await connection.scalar(
                sa.text("SELECT sql FROM sqlite_master WHERE name = 'outbox'")
            )
        assert "AUTOINCREMENT" in sql
        assert again[0] > first[0]
    finally:
        await store.dispose()

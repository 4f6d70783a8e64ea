"""Pooled connections the database dropped (restart, failover, idle cut) are not fatal."""

from __future__ import annotations

import asyncpg
import pytest
import sqlalchemy as sa

from services.common.retry import retry_store
from services.common.store import Store, create_store

pytestmark = [pytest.mark.postgres]


async def _warm(store: Store, connections: int) -> None:
    """Leave ``connections`` open connections in the store's pool."""
    held = [await store.engine.connect() for _ in range(connections)]
    for connection in held:
        await connection.execute(sa.text("SELECT 1"))
    for connection in held:
        await connection.close()


async def _drop_every_connection(pg_url: str) -> int:
    """What a database restart does to a client's pool: every backend of the database ends."""
    admin = await asyncpg.connect(pg_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        killed = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    return len(killed)


async def test_an_idle_connection_found_dead_is_replaced_before_use(pg_url: str) -> None:
    store = create_store(pg_url, idle_ping_s=0)  # every pooled connection counts as idle
    try:
        await _warm(store, 3)
        assert await _drop_every_connection(pg_url) == 3
        for _ in range(3):  # each dead one is checked, then replaced: no error reaches us
            async with store.transaction() as connection:
                assert await connection.scalar(sa.text("SELECT 1")) == 1
    finally:
        await store.dispose()


async def test_a_connection_lost_while_busy_fails_once_and_the_retry_succeeds(
    pg_url: str,
) -> None:
    store = create_store(pg_url, idle_ping_s=3600)  # used moments ago: not checked
    attempts = 0

    async def read() -> int:
        nonlocal attempts
        attempts += 1
        async with store.transaction() as connection:
            return int(await connection.scalar(sa.text("SELECT 1")) or 0)

    try:
        await _warm(store, 3)
        assert await _drop_every_connection(pg_url) == 3
        assert await retry_store(read, max_seconds=10) == 1
        assert attempts == 2  # the lost connection failed one attempt, not more
        attempts = 0
        for _ in range(3):  # the failure invalidated the whole pool: no other dead one is left
            assert await read() == 1
        assert attempts == 3
    finally:
        await store.dispose()

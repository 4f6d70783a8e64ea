"""The async engine and transactions of the store, on SQLite or PostgreSQL.

SQLite (the embedded default) runs in WAL mode and takes its write lock at
``BEGIN IMMEDIATE``: one writer at a time, which is what makes it safe for the
single-machine setup. PostgreSQL is the production store.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

__all__ = ["Store", "create_store"]


class Store:
    """An async engine plus the dialect facts repositories need."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    @property
    def is_postgres(self) -> bool:
        """True on PostgreSQL (row locks, advisory locks, SKIP LOCKED)."""
        return self.dialect == "postgresql"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One transaction: commit on success, roll back on any exception."""
        async with self.engine.begin() as connection:
            yield connection

    async def ping(self) -> bool:
        """True when the store answers a trivial query."""
        try:
            async with self.engine.connect() as connection:
                await connection.execute(sa.text("SELECT 1"))
        except (sa.exc.DBAPIError, OSError):
            return False
        return True

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, decide when transactions start.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _ping_when_idle(engine: AsyncEngine, idle_s: float) -> None:
    """Check a pooled connection before use when it has sat idle for ``idle_s`` or more.

    SQLAlchemy's ``pool_pre_ping`` checks every checkout, and with asyncpg a
    check is three round trips (BEGIN, a query, ROLLBACK): under load that was
    six of a routed batch's ~twenty. A connection used moments ago is very
    likely alive; one that has idled (across a database restart, a failover, a
    firewall's idle cut) is checked and replaced if dead. A connection lost
    under load fails its statement instead: SQLAlchemy then invalidates the
    whole pool and every transaction runs under ``retry_store``, which retries it.
    """
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < idle_s:
            return  # new, or busy a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:  # whatever the driver raises: start afresh
            # As pool_pre_ping does: a dead idle connection means the others died with it
            # (a restart, a failover), so the whole pool is replaced, not this one alone.
            raise sa.exc.InvalidatePoolError(type(error).__name__) from error

    event.listen(pool, "checkin", checked_in)
    event.listen(pool, "checkout", checked_out)


def create_store(url: str, *, pool_size: int = 10, idle_ping_s: float = 2.0) -> Store:
    """Build the store for an async URL (``sqlite+aiosqlite://`` or ``postgresql+asyncpg://``).

    On PostgreSQL, a pooled connection idle for ``idle_ping_s`` is checked
    before use (see :func:`_ping_when_idle`).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # Statement parameters hold personal data: never in error messages or logs.
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    else:
        engine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            # Statement parameters hold personal data: never in error messages or logs.
            hide_parameters=True,
        )
        _ping_when_idle(engine, idle_ping_s)
    return Store(engine)

"""Apply the store's Alembic migrations programmatically (``aiguillage db upgrade``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from services.common.store.engine import Store

__all__ = ["alembic_config", "migrate"]

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the bundled migrations, bound to a connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def migrate(store: Store, revision: str = "heads") -> None:
    """Upgrade the store's schema to ``revision`` (idempotent; safe on every start).

    The history has one branch per service (each service's migrations revise
    ``0001`` and carry its branch label), so the default target is every head.
    """

    def _upgrade(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with store.engine.begin() as connection:
        if store.is_postgres:
            # Several services may start together: one migrates, the others wait.
            await connection.exec_driver_sql("SELECT pg_advisory_xact_lock(4242424242)")
        await connection.run_sync(_upgrade)

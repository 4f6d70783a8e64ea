"""Start-up steps every service shares: logging, topics, migrations, background tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from schemas.topics import ALL_TOPICS
from services.common.kafka import ensure_topics
from services.common.settings import ServiceSettings
from services.common.store import Store, migrate

__all__ = ["background", "prepare_infrastructure"]


async def prepare_infrastructure(settings: ServiceSettings, store: Store | None) -> None:
    """Create missing topics (with their partition counts) and migrate the store.

    Each step can be turned off where an operator owns it (Strimzi topics,
    migrations run as a deployment job).
    """
    if settings.kafka_create_topics:
        await ensure_topics(settings, ALL_TOPICS)
    if store is not None and settings.migrate_on_start:
        await migrate(store)


@contextlib.asynccontextmanager
async def background(*jobs: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run coroutines as tasks for the duration of the block; cancel them on exit."""
    tasks = [asyncio.create_task(job) for job in jobs]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

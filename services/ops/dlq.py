"""DLQ use cases behind ``aiguillage dlq``: load the dead letters, replay a selection.

Each call opens what it needs (a consumer for the DLQ topic, the store, a
broker to publish) and closes it; the CLI wraps them in ``asyncio.run``.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.kafka import build_broker
from services.common.retry import STORE_OUTAGE
from services.common.store import create_store
from services.ops.adapters.dlq_topic import (
    DlqContents,
    KafkaReplayPublisher,
    StoredLetter,
    read_dead_letters,
)
from services.ops.adapters.store_views import StoreViews
from services.ops.replay import ReplayResult, ReplayService, Selection, check_contract
from services.ops.settings import OpsSettings

__all__ = ["DlqListing", "list_dead_letters", "replay_dead_letters"]


@dataclass(frozen=True, slots=True)
class DlqListing:
    """Selected dead letters, how often each was replayed (None: store not readable)."""

    contents: DlqContents
    selected: tuple[StoredLetter, ...]
    replayed: dict[str, int] | None


async def list_dead_letters(settings: OpsSettings, selection: Selection) -> DlqListing:
    """Read the DLQ topic and the replay markers; keep the letters ``selection`` matches."""
    contents = await read_dead_letters(settings, settings.dlq_topic)
    store = create_store(settings.resolved_database_url())
    try:
        replayed = await StoreViews(store).replayed()
    except STORE_OUTAGE:
        replayed = None
    finally:
        await store.dispose()
    return DlqListing(contents, tuple(selection.select(contents.letters)), replayed)


async def replay_dead_letters(
    settings: OpsSettings,
    selection: Selection,
    *,
    corrected: bytes | None = None,
    force: bool = False,
    dry_run: bool = False,
) -> list[ReplayResult]:
    """Replay the selected dead letters onto their original topics, once each.

    A corrected payload applies to exactly one letter and must satisfy the
    contract of its topic (``InvalidCorrection`` otherwise).
    """
    if selection.is_empty:
        raise ValueError("select dead letters by id, reason, service, topic or time range")
    contents = await read_dead_letters(settings, settings.dlq_topic)
    chosen = selection.select(contents.letters)
    if corrected is not None:
        if len(chosen) != 1:
            raise ValueError(
                f"a corrected payload needs exactly one letter, {len(chosen)} selected"
            )
        topic = chosen[0].letter.original_topic
        if topic is not None:
            check_contract(topic, corrected)
    store = create_store(settings.resolved_database_url())
    broker = build_broker(settings, client_id="aiguillage-dlq-replay")
    try:
        await broker.connect()
        service = ReplayService(store, KafkaReplayPublisher(broker))
        return await service.replay(chosen, corrected=corrected, force=force, dry_run=dry_run)
    finally:
        await broker.stop()
        await store.dispose()

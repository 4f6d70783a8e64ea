"""The scan store: which letter contents were published, and each batch run's progress.

Every method is one short transaction, retried on store outages. Recording
an outcome is an upsert: a resumed batch may record again what it recorded
before a crash.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.retry import retry_store
from services.common.store.engine import Store
from services.intake_scan.adapters.tables import scan_batch_entries, scan_batches, scan_letters

__all__ = ["EntryOutcome", "KnownLetter", "Outcome", "ScanProgress"]

T = TypeVar("T")
Outcome = Literal["published", "duplicate", "quarantined", "dead_lettered"]
BatchStatus = Literal["in_progress", "done", "quarantined"]


@dataclass(frozen=True, slots=True)
class KnownLetter:
    """A letter content the store knows: the item it became and whether Kafka has it."""

    item_id: str
    published: bool


@dataclass(frozen=True, slots=True)
class EntryOutcome:
    """What happened to one file or row of a batch run."""

    outcome: Outcome
    sha256: str | None
    reason_code: str | None = None
    item_id: str | None = None


class ScanProgress:
    """Dedupe by content hash and batch progress, over the shared store."""

    def __init__(self, store: Store, *, retry_max_s: float = 30.0) -> None:
        self._store = store
        self._retry_max_s = retry_max_s

    async def _run(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async def attempt() -> T:
            async with self._store.transaction() as connection:
                return await work(connection)

        return await retry_store(attempt, max_seconds=self._retry_max_s)

    async def known_letter(self, sha256: str) -> KnownLetter | None:
        """The item a letter content already became, if any (idempotence by content hash)."""

        async def work(db: AsyncConnection) -> KnownLetter | None:
            query = sa.select(scan_letters.c.item_id, scan_letters.c.status).where(
                scan_letters.c.sha256 == sha256
            )
            row = (await db.execute(query)).first()
            return None if row is None else KnownLetter(row.item_id, row.status == "published")

        return await self._run(work)

    async def reserve(
        self, sha256: str, item_id: str, batch_id: str, now: dt.datetime
    ) -> KnownLetter | None:
        """Reserve a content for an item before publishing; the existing owner if taken."""

        async def work(db: AsyncConnection) -> KnownLetter | None:
            query = sa.select(scan_letters.c.item_id, scan_letters.c.status).where(
                scan_letters.c.sha256 == sha256
            )
            if self._store.is_postgres:
                query = query.with_for_update()
            row = (await db.execute(query)).first()
            if row is not None:
                return KnownLetter(row.item_id, row.status == "published")
            await db.execute(
                scan_letters.insert().values(
                    sha256=sha256, item_id=item_id, batch_id=batch_id, status="reserved",
                    reserved_at=now,
                )
            )  # fmt: skip
            return None

        return await self._run(work)

    async def start_batch(
        self, batch_id: str, index_sha256: str, instance: str, now: dt.datetime
    ) -> dict[str, EntryOutcome]:
        """Open (or reopen) a batch run; return the outcomes already recorded for it."""

        async def work(db: AsyncConnection) -> dict[str, EntryOutcome]:
            key = (scan_batches.c.batch_id == batch_id) & (
                scan_batches.c.index_sha256 == index_sha256
            )
            changed = await db.execute(
                scan_batches.update()
                .where(key)
                .values(instance=instance, status="in_progress", finished_at=None)
            )
            if changed.rowcount == 0:
                await db.execute(
                    scan_batches.insert().values(
                        batch_id=batch_id, index_sha256=index_sha256, instance=instance,
                        status="in_progress", started_at=now,
                    )
                )  # fmt: skip
            entries = scan_batch_entries.c
            rows = await db.execute(
                sa.select(
                    entries.entry_key, entries.outcome, entries.sha256, entries.reason_code,
                    entries.item_id,
                ).where(entries.batch_id == batch_id, entries.index_sha256 == index_sha256)
            )  # fmt: skip
            return {
                row.entry_key: EntryOutcome(row.outcome, row.sha256, row.reason_code, row.item_id)
                for row in rows
            }

        return await self._run(work)

    async def record(
        self,
        batch_id: str,
        index_sha256: str,
        entry_key: str,
        outcome: EntryOutcome,
        now: dt.datetime,
    ) -> None:
        """Record one entry's outcome; a published letter's content is marked published too."""

        async def work(db: AsyncConnection) -> None:
            if outcome.outcome == "published" and outcome.sha256 is not None:
                await db.execute(
                    scan_letters.update()
                    .where(scan_letters.c.sha256 == outcome.sha256)
                    .values(status="published", published_at=now)
                )
            values = {
                "sha256": outcome.sha256,
                "outcome": outcome.outcome,
                "reason_code": outcome.reason_code,
                "item_id": outcome.item_id,
                "recorded_at": now,
            }
            entries = scan_batch_entries.c
            changed = await db.execute(
                scan_batch_entries.update()
                .where(
                    entries.batch_id == batch_id,
                    entries.index_sha256 == index_sha256,
                    entries.entry_key == entry_key,
                )
                .values(**values)
            )
            if changed.rowcount == 0:
                await db.execute(
                    scan_batch_entries.insert().values(
                        batch_id=batch_id, index_sha256=index_sha256, entry_key=entry_key, **values
                    )
                )

        await self._run(work)

    async def finish_batch(
        self,
        batch_id: str,
        index_sha256: str,
        status: BatchStatus,
        now: dt.datetime,
        *,
        instance: str | None = None,
    ) -> None:
        """Close a batch run with its counts (``instance`` creates the run if it has none)."""

        async def work(db: AsyncConnection) -> None:
            entries = scan_batch_entries.c
            query = (
                sa.select(entries.outcome, sa.func.count())
                .where(entries.batch_id == batch_id, entries.index_sha256 == index_sha256)
                .group_by(entries.outcome)
            )
            counts = {str(outcome): int(count) for outcome, count in await db.execute(query)}
            values = {
                "status": status,
                "finished_at": now,
                "letters": counts.get("published", 0) + counts.get("duplicate", 0),
                "rejections": counts.get("quarantined", 0) + counts.get("dead_lettered", 0),
            }
            key = (scan_batches.c.batch_id == batch_id) & (
                scan_batches.c.index_sha256 == index_sha256
            )
            changed = await db.execute(scan_batches.update().where(key).values(**values))
            if changed.rowcount == 0 and instance is not None:
                await db.execute(
                    scan_batches.insert().values(
                        batch_id=batch_id, index_sha256=index_sha256, instance=instance,
                        started_at=now, **values,
                    )
                )  # fmt: skip

        await self._run(work)

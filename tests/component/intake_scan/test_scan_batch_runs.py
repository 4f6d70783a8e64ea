"""Whole batches through the service on the in-memory broker and SQLite: items, archive, dedupe."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import shutil
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from services.common.store.registry import all_tables
from services.intake_scan.adapters.tables import scan_batch_entries, scan_batches, scan_letters
from services.intake_scan.harness import ScanHarness, TapSink
from services.intake_scan.ports import ItemSink
from services.intake_scan.testing import index_row, make_text_pdf, text_pdf_batch, write_index

REFS = ["200000001", "200000002", "200000003"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_scan_batch_letters_become_items_keyed_archived_and_recorded(
    harness: ScanHarness,
) -> None:
    staged = harness.root / "staging" / "B-2026-03-05"
    names = text_pdf_batch(staged, REFS, scanned_at="05/03/2026 09:15", tsa_box="60002")
    hashes = [_sha(staged / name) for name in names]
    harness.drop(staged)

    async with harness.service() as service:
        report = await service.poll_once()

    assert report.statuses == {"done": 1}
    items = [item for _, item in harness.captured.items]
    assert [item.item_id for item in items] == [f"scan:B-2026-03-05:{h}" for h in hashes]
    assert [key for key, _ in harness.captured.items] == [ref.encode() for ref in REFS]
    first = items[0]
    assert first.channel == "letter"
    assert first.received_at == dt.datetime(2026, 3, 5, 8, 15, tzinfo=dt.UTC)  # J, Paris → UTC
    assert first.tsa_box == "60002"
    assert first.source_ref == "scan://B-2026-03-05/lettre-0001.pdf?envelope=ENV-lettre-0001"
    assert first.letter is not None
    assert first.letter.letter_date == dt.date(2026, 3, 3)
    assert first.ocr_confidence is None
    assert not first.needs_manual_reading
    (attachment,) = first.attachments
    assert (attachment.sha256, attachment.filename) == (hashes[0], "lettre-0001.pdf")
    assert attachment.content_type == "application/pdf"
    archived = harness.archive_dir / hashes[0][:2] / f"{hashes[0]}.pdf"
    assert _sha(archived) == hashes[0]
    assert archived.stat().st_size == attachment.size
    assert harness.files(harness.inbox_dir) == []
    assert harness.files(harness.work_dir) == []
    assert len(list((harness.archive_dir / "batches" / "B-2026-03-05").glob("*.csv"))) == 1
    assert harness.captured.dead == []
    (batch,) = await harness.rows(scan_batches)
    assert (batch.status, batch.letters, batch.rejections) == ("done", 3, 0)
    assert {row.status for row in await harness.rows(scan_letters)} == {"published"}


async def test_scan_redropped_batch_and_same_file_elsewhere_produce_nothing_new(
    harness: ScanHarness,
) -> None:
    staged = harness.root / "staging" / "B1"
    text_pdf_batch(staged, REFS[:2])
    copy = harness.root / "copy" / "B1"
    shutil.copytree(staged, copy)
    other = harness.root / "other" / "B2"
    other.mkdir(parents=True)
    shutil.copy(staged / "lettre-0001.pdf", other / "meme-lettre.pdf")
    write_index(other / "index.csv", [index_row("meme-lettre.pdf")])

    async with harness.service() as service:
        harness.drop(staged)
        await service.poll_once()
        harness.drop(copy)
        harness.drop(other)
        await service.poll_once()

    assert len(harness.captured.items) == 2
    assert harness.captured.dead == []
    outcomes = sorted((row.batch_id, row.outcome) for row in await harness.rows(scan_batch_entries))
    assert outcomes == [("B1", "published"), ("B1", "published"), ("B2", "duplicate")]
    assert harness.files(harness.inbox_dir) == harness.files(harness.work_dir) == []


async def test_scan_index_page_count_mismatch_flags_manual_reading(harness: ScanHarness) -> None:
    staged = harness.root / "staging" / "B3"
    staged.mkdir(parents=True)
    make_text_pdf("Référence client : 200000009\nJe conteste ma facture.", staged / "a.pdf")
    write_index(staged / "index.csv", [index_row("a.pdf", page_count="2")])
    harness.drop(staged)
    async with harness.service() as service:
        await service.poll_once()
    ((_, item),) = harness.captured.items
    assert item.needs_manual_reading


async def test_scan_stop_leaves_the_rest_for_the_next_start(harness: ScanHarness) -> None:
    staged = harness.root / "staging" / "B4"
    text_pdf_batch(staged, [f"20000010{n}" for n in range(6)])
    harness.drop(staged)
    stop = asyncio.Event()
    settings = harness.settings(read_ahead=1)

    def stop_at_second(count: int) -> None:
        if count == 2:
            stop.set()

    def tap(sink: ItemSink) -> ItemSink:
        return TapSink(sink, stop_at_second)

    async with harness.service(settings, sink=tap) as service:
        first = await service.poll_once(stop)
    assert first.statuses == {"stopped": 1}
    assert len(harness.captured.items) == 2
    assert len(harness.files(harness.work_dir)) > 1

    async with harness.service(settings) as service:  # the restart resumes the batch
        second = await service.poll_once()
    assert second.statuses == {"done": 1}
    assert len(set(harness.captured.item_ids)) == len(harness.captured.items) == 6


async def test_scan_migration_creates_exactly_the_scan_tables(harness: ScanHarness) -> None:
    def differences(connection: sa.Connection) -> list[object]:
        context = MigrationContext.configure(connection)
        return [diff for diff in compare_metadata(context, all_tables()) if "scan_" in repr(diff)]

    async with harness.store.engine.connect() as connection:
        assert await connection.run_sync(differences) == []

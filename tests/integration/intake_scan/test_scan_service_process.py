"""intake_scan as its own process on tansu + PostgreSQL + tesseract: complete batches only,
French OCR, nothing new on a re-drop, and every bad input quarantined with its reason."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from schemas import DeadLetter, IntakeItem
from schemas.topics import DEAD_LETTERS, INTAKE_ITEMS
from services.common.settings import ServiceSettings
from services.common.store import Store
from services.common.store.registry import all_tables
from services.common.testing import ServiceProcess, eventually, read_topic
from services.intake_scan.adapters.tables import scan_batches
from services.intake_scan.harness import (
    BAD_FOLDER_FILES,
    BAD_FOLDER_ROWS,
    BAD_ZIP_ENTRIES,
    ScanFolders,
    bad_folder_batch,
    bad_zip_batch,
    wait_started,
)
from services.intake_scan.testing import (
    index_row,
    make_text_pdf,
    render_letter_png,
    sample_letter_text,
    write_index,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture
def service(
    topics: ServiceSettings, scan_env: dict[str, str], folders: ScanFolders
) -> Iterator[ServiceProcess]:
    process = ServiceProcess("intake-scan", scan_env, folders.root).start()
    yield process
    assert process.stop() == 0, process.output()


async def _items(kafka: str, expect: int) -> list[IntakeItem]:
    values = await read_topic(kafka, INTAKE_ITEMS, expect=expect, max_s=40)
    return [IntakeItem.model_validate_json(value) for value in values]


@pytest.mark.ocr
async def test_scan_complete_batch_only_then_text_layers_and_french_ocr_become_items(
    service: ServiceProcess, folders: ScanFolders, kafka: str, pg_store: Store
) -> None:
    await wait_started(service)
    batch = folders.inbox / "B-2026-03-05"  # the provider writes straight into the inbox
    batch.mkdir(parents=True)
    make_text_pdf(sample_letter_text(customer_ref="555 123 987"), batch / "tapee.pdf")
    ocr_text = sample_letter_text(customer_ref="204 518 733", postcode="13008", city="Marseille")
    render_letter_png(ocr_text, batch / "scan.png", rotation_deg=0.8, noise=0.004)
    render_letter_png("", batch / "blanc.png", noise=0.001)
    shutil.copytree(batch, folders.staging / batch.name)  # kept for a re-drop
    await asyncio.sleep(2)  # letters but no index: the batch is not complete, nothing is taken
    assert await read_topic(kafka, INTAKE_ITEMS, quiet_s=0.3, max_s=1) == []
    assert sorted(p.name for p in batch.iterdir()) == ["blanc.png", "scan.png", "tapee.pdf"]

    rows = [
        index_row("tapee.pdf", tsa_box="60002", scanned_at="2026-03-05T08:30:00+01:00"),
        index_row("scan.png", page_count="1"),
        index_row("blanc.png", page_count="1"),
    ]
    write_index(batch / "index.csv", rows)  # the index arrives last
    items = {item.attachments[0].filename: item for item in await _items(kafka, 3)}

    typed, scanned, blank = items["tapee.pdf"], items["scan.png"], items["blanc.png"]
    assert typed.tsa_box == "60002"  # escalation to the director (4.9 NB): RDR hint
    assert typed.received_at == dt.datetime(2026, 3, 5, 7, 30, tzinfo=dt.UTC)
    assert typed.sender.customer_ref == "555123987"
    assert typed.ocr_confidence is None
    assert scanned.sender.customer_ref == "204518733"
    assert scanned.sender.postal_address is not None
    assert scanned.sender.postal_address.postcode == "13008"
    assert scanned.tsa_box == "50001"
    assert "Éclusiers" in scanned.text
    assert scanned.ocr_confidence is not None
    assert scanned.ocr_confidence > 75
    assert not scanned.needs_manual_reading
    assert blank.needs_manual_reading  # never dropped: a person reads it
    assert blank.text == ""
    for item in items.values():
        sha = item.attachments[0].sha256
        assert item.item_id == f"scan:B-2026-03-05:{sha}"
        assert (folders.archive / sha[:2] / f"{sha}.{item.attachments[0].filename[-3:]}").exists()
    await eventually(lambda: _batch_done(pg_store, folders), timeout=20)

    # the same batch dropped again: nothing new on any topic
    write_index(folders.staging / batch.name / "index.csv", rows)
    folders.drop(batch.name)
    await eventually(lambda: _gone(folders.inbox / batch.name), timeout=20)
    await eventually(lambda: _batch_done(pg_store, folders), timeout=20)
    assert len(await read_topic(kafka, INTAKE_ITEMS, quiet_s=1.0)) == 3
    assert await read_topic(kafka, DEAD_LETTERS, quiet_s=0.5) == []


async def _gone(path: Path) -> bool:
    return not await asyncio.to_thread(path.exists)


async def _batch_done(store: Store, folders: ScanFolders) -> bool:
    if folders.files(folders.work):
        return False
    async with store.engine.connect() as connection:
        rows = (await connection.execute(sa.select(scan_batches.c.status))).all()
    return [row.status for row in rows] == ["done"]


async def test_scan_every_bad_input_ends_in_quarantine_with_its_reason(
    topics: ServiceSettings,
    scan_env: dict[str, str],
    folders: ScanFolders,
    kafka: str,
) -> None:
    letter = "Référence client : 200000041\nJe conteste ma facture."
    good_folder = bad_folder_batch(folders.staging / "BAD", letter)
    pdf = make_text_pdf(sample_letter_text(customer_ref="200000042"), folders.root / "g.pdf")
    good_zip = bad_zip_batch(folders.staging / "Z1.zip", pdf.read_bytes())
    env = {**scan_env, "INTAKE_SCAN_MAX_PAGES": "2", "INTAKE_SCAN_MAX_FILE_MB": "1"}
    process = ServiceProcess("intake-scan", env, folders.root).start()
    try:
        await wait_started(process)
        folders.drop("BAD")
        folders.drop("Z1.zip")
        expected = [*BAD_FOLDER_FILES.values(), *BAD_FOLDER_ROWS, *BAD_ZIP_ENTRIES]
        values = await read_topic(kafka, DEAD_LETTERS, expect=len(expected), max_s=40)
        items = await _items(kafka, 2)
    finally:
        assert process.stop() == 0, process.output()
    letters = [DeadLetter.model_validate_json(value) for value in values]
    assert sorted(letter.reason_code for letter in letters) == sorted(expected)
    assert sorted(item.attachments[0].filename for item in items) == [*good_folder, *good_zip]
    sidecars = {}
    for sidecar in folders.quarantine.rglob("*.reason.json"):
        reason = json.loads(sidecar.read_text(encoding="utf-8"))
        if "file" in reason:
            sidecars[reason["file"]] = reason["reason_code"]
    assert sidecars == BAD_FOLDER_FILES
    assert any(
        p.name.startswith("Z1.") and p.suffix == ".zip" for p in folders.quarantine.iterdir()
    )
    assert folders.files(folders.inbox) == folders.files(folders.work) == []
    logs = process.output()
    for private in ("Dupré", "Éclusiers", "jf.dupre", "encrypted.pdf", "absent.pdf"):
        assert private not in logs  # ids and hashes only


async def test_scan_migration_on_postgres_matches_the_scan_tables(pg_store: Store) -> None:
    def differences(connection: sa.Connection) -> list[object]:
        context = MigrationContext.configure(connection)
        return [d for d in compare_metadata(context, all_tables()) if "scan_" in repr(d)]

    async with pg_store.engine.connect() as connection:
        assert await connection.run_sync(differences) == []

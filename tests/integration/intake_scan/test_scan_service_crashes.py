"""Two instances on one inbox, and a SIGKILL mid-batch: every letter becomes exactly one item.

The service runs as real OS processes on tansu and PostgreSQL. Letters are
text-layer PDFs (no OCR: fast), each one distinct by content.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from schemas import IntakeItem
from schemas.topics import DEAD_LETTERS, INTAKE_ITEMS
from services.common.settings import ServiceSettings
from services.common.store import Store
from services.common.testing import ServiceProcess, eventually, read_topic
from services.intake_scan.adapters.tables import scan_batches
from services.intake_scan.harness import ScanFolders, wait_started
from services.intake_scan.testing import index_row, make_text_pdf, sample_letter_text, write_index

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _letters(folder: Path, template: bytes, count: int, first: int = 0) -> dict[str, str]:
    """A batch of ``count`` distinct letters (the same PDF, a unique trailing comment each).

    Returns file name → expected item id.
    """
    folder.mkdir(parents=True)
    ids = {}
    for number in range(first, first + count):
        name = f"{number:05d}.pdf"
        content = template + f"%letter-{number}\n".encode()
        (folder / name).write_bytes(content)
        ids[name] = f"scan:{folder.name}:{hashlib.sha256(content).hexdigest()}"
    write_index(folder / "index.csv", [index_row(name, page_count="1") for name in ids])
    return ids


def _template(folders: ScanFolders) -> bytes:
    path = make_text_pdf(sample_letter_text(customer_ref="200000051"), folders.root / "t.pdf")
    return path.read_bytes()


async def _runs(store: Store) -> list[tuple[str, str]]:
    """(status, instance) of every batch run."""
    query = sa.select(scan_batches.c.status, scan_batches.c.instance)
    async with store.engine.connect() as connection:
        return [(str(row.status), str(row.instance)) for row in await connection.execute(query)]


async def _all_done(store: Store, folders: ScanFolders, batches: int) -> bool:
    if await asyncio.to_thread(folders.files, folders.work):
        return False
    runs = await _runs(store)
    return len(runs) == batches and all(status == "done" for status, _ in runs)


async def _item_ids(kafka: str) -> list[str]:
    values = await read_topic(kafka, INTAKE_ITEMS, quiet_s=1.0, max_s=30)
    return [IntakeItem.model_validate_json(value).item_id for value in values]


async def test_scan_two_instances_on_one_inbox_take_each_letter_once(
    topics: ServiceSettings,
    scan_env: dict[str, str],
    folders: ScanFolders,
    kafka: str,
    pg_store: Store,
) -> None:
    template = _template(folders)
    expected: dict[str, str] = {}
    for batch in range(8):
        expected |= _letters(folders.staging / f"B{batch}", template, 5, first=batch * 5)
    (folders.root / "one").mkdir()
    (folders.root / "two").mkdir()
    one = ServiceProcess("intake-scan", scan_env, folders.root / "one").start()
    two = ServiceProcess("intake-scan", scan_env, folders.root / "two").start()
    try:
        await wait_started(one)
        await wait_started(two)
        for batch in range(8):
            folders.drop(f"B{batch}")
        await eventually(lambda: _all_done(pg_store, folders, 8), timeout=40)
    finally:
        assert one.stop() == 0, one.output()
        assert two.stop() == 0, two.output()
    ids = await _item_ids(kafka)
    assert sorted(ids) == sorted(expected.values())  # each letter once, none twice
    assert len({instance for _, instance in await _runs(pg_store)}) == 2  # both took batches
    assert await read_topic(kafka, DEAD_LETTERS, quiet_s=0.3) == []


async def test_scan_sigkill_mid_batch_then_restart_every_letter_becomes_one_item(
    topics: ServiceSettings,
    scan_env: dict[str, str],
    folders: ScanFolders,
    kafka: str,
    pg_store: Store,
) -> None:
    count = 150
    expected = _letters(folders.staging / "BK", _template(folders), count)
    first = ServiceProcess("intake-scan", scan_env, folders.root).start()
    try:
        await wait_started(first)
        folders.drop("BK")

        async def some_archived() -> bool:
            return len(await asyncio.to_thread(folders.files, folders.archive)) >= 20

        await eventually(some_archived, timeout=30, interval=0.05)
    finally:
        first.kill()  # SIGKILL: no graceful shutdown
    archived_at_kill = len(folders.files(folders.archive))
    assert archived_at_kill < count, "the batch finished before the kill: make it longer"

    second = ServiceProcess("intake-scan", scan_env, folders.root).start()
    try:
        await eventually(lambda: _all_done(pg_store, folders, 1), timeout=40)
    finally:
        assert second.stop() == 0, second.output()
    ids = await _item_ids(kafka)
    assert set(ids) == set(expected.values())  # nothing lost
    # nothing twice: only the letter in hand at the kill (acknowledged, not yet recorded) can
    # be published again, with the same item id, which consumers drop
    assert len(ids) - len(set(ids)) <= 1
    assert len(folders.files(folders.archive)) == count + 1  # letters and the index
    assert "inbox.adopted" in second.output()

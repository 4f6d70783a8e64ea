"""Every kind of bad input ends in quarantine with its reason, and the rest of the batch proceeds.

Text-layer PDFs only (no OCR): refusals happen before any page is rendered.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

from PIL import Image

from services.intake_scan.harness import (
    BAD_FOLDER_FILES,
    BAD_FOLDER_ROWS,
    BAD_ZIP_ENTRIES,
    ScanHarness,
    bad_folder_batch,
    bad_zip_batch,
)
from services.intake_scan.testing import (
    index_row,
    make_text_pdf,
    sample_letter_text,
    text_pdf_batch,
    write_index,
)

LETTER = "Référence client : 200000021\nJe conteste ma facture."


def _reasons(quarantine: Path) -> dict[str, str]:
    """Quarantined file name → reason code, from the ``.reason.json`` beside each file."""
    found = {}
    for sidecar in quarantine.rglob("*.reason.json"):
        reason = json.loads(sidecar.read_text(encoding="utf-8"))
        found[str(reason.get("file") or sidecar.name)] = str(reason.get("reason_code"))
    return found


async def test_scan_bad_files_and_rows_are_quarantined_each_with_its_reason(
    harness: ScanHarness,
) -> None:
    good = bad_folder_batch(harness.root / "staging" / "BAD", LETTER)
    harness.drop(harness.root / "staging" / "BAD")

    async with harness.service(harness.settings(max_pages=2, max_file_mb=1)) as service:
        report = await service.poll_once()

    assert report.statuses == {"done": 1}
    assert [item.attachments[0].filename for _, item in harness.captured.items] == good
    assert harness.captured.codes() == sorted([*BAD_FOLDER_FILES.values(), *BAD_FOLDER_ROWS])
    assert _reasons(harness.quarantine_dir) == BAD_FOLDER_FILES
    kept = harness.files(harness.quarantine_dir / "BAD")
    assert len([name for name in kept if not name.endswith(".reason.json")]) == 11
    assert harness.files(harness.work_dir) == harness.files(harness.inbox_dir) == []
    by_code = {letter.reason_code: letter for letter in harness.captured.dead}
    assert "absent.pdf" in by_code["missing_file"].reason
    assert by_code["missing_file"].payload_b64 is not None  # the index row travels with it
    assert "kept in quarantine as BAD/encrypted." in by_code["encrypted_pdf"].reason
    assert all(letter.service == "intake-scan" for letter in harness.captured.dead)


async def test_scan_zip_entries_outside_the_batch_or_bombs_are_refused_rest_proceeds(
    harness: ScanHarness,
) -> None:
    letter = make_text_pdf(sample_letter_text(customer_ref="200000022"), harness.root / "g.pdf")
    (harness.root / "staging").mkdir()
    good = bad_zip_batch(harness.root / "staging" / "Z1.zip", letter.read_bytes())
    harness.drop(harness.root / "staging" / "Z1.zip")

    async with harness.service() as service:
        report = await service.poll_once()

    assert report.statuses == {"done": 1}
    assert [item.attachments[0].filename for _, item in harness.captured.items] == good
    assert harness.captured.codes() == sorted(BAD_ZIP_ENTRIES)
    assert not list(harness.root.rglob("escape.pdf"))
    assert not list(harness.root.rglob("absolute.pdf"))
    (evidence,) = [name for name in harness.files(harness.quarantine_dir) if name.endswith(".zip")]
    assert evidence.startswith("Z1.")
    assert harness.files(harness.work_dir) == harness.files(harness.inbox_dir) == []


def _zip(path: Path, count: int) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for number in range(count):
            archive.writestr(f"{number}.pdf", b"%PDF-1.4\n")
    return path


async def test_scan_unusable_batches_are_quarantined_whole(harness: ScanHarness) -> None:
    staged = harness.root / "staging"
    staged.mkdir()
    (staged / "Z2.zip").write_bytes(b"PK\x03\x04 this zip was cut short")
    (staged / "Z2.zip.ready").write_bytes(b"")
    _zip(staged / "Z3.zip", 5)
    no_header = staged / "BI"
    no_header.mkdir()
    make_text_pdf(LETTER, no_header / "a.pdf")
    (no_header / "index.csv").write_text("a.pdf;2026-03-05\n", encoding="utf-8")
    bad_name = staged / "lot du 5 mars"
    bad_name.mkdir()
    write_index(bad_name / "index.csv", [])
    no_index = staged / "NI"
    no_index.mkdir()
    (no_index / ".ready").write_bytes(b"")
    for name in ("Z2.zip.ready", "Z2.zip", "Z3.zip", "BI", "lot du 5 mars", "NI"):
        harness.drop(staged / name)

    async with harness.service(harness.settings(zip_max_entries=3)) as service:
        report = await service.poll_once()

    assert report.statuses == {"quarantined": 5}
    assert harness.captured.codes() == sorted(
        ["corrupt_zip", "zip_bomb", "bad_index", "bad_batch_name", "bad_index"]
    )
    assert harness.captured.items == []
    kept = {name.split(".")[0] for name in harness.files(harness.quarantine_dir)}
    assert {"Z2", "Z3", "BI", "lot du 5 mars", "NI"} <= kept
    assert harness.files(harness.inbox_dir) == harness.files(harness.work_dir) == []


async def test_scan_bad_batch_dropped_again_dead_letters_nothing_twice(
    harness: ScanHarness,
) -> None:
    bad_folder_batch(harness.root / "staging" / "BAD", LETTER)
    shutil.copytree(harness.root / "staging" / "BAD", harness.root / "again" / "BAD", symlinks=True)
    settings = harness.settings(max_pages=2, max_file_mb=1)
    async with harness.service(settings) as service:
        harness.drop(harness.root / "staging" / "BAD")
        await service.poll_once()
        first = (len(harness.captured.items), len(harness.captured.dead))
        harness.drop(harness.root / "again" / "BAD")
        report = await service.poll_once()
    assert report.statuses == {"done": 1}
    assert (len(harness.captured.items), len(harness.captured.dead)) == first
    assert harness.files(harness.work_dir) == harness.files(harness.inbox_dir) == []
    assert len(list((harness.quarantine_dir / "BAD").glob("sub.*"))) == 4  # 2 folders, 2 reasons


async def test_scan_names_that_are_not_utf8_are_quarantined_not_fatal(
    harness: ScanHarness,
) -> None:
    """A Windows uploader's Latin-1 names (a file, a whole batch) used to stop the service at
    every start: the dead letter quoting the name could not be built, nor its sidecar written.
    """
    staging = harness.root / "staging" / "L1"
    text_pdf_batch(staging, ["200000021"])
    pdf = make_text_pdf(sample_letter_text(customer_ref="200000023"), harness.root / "x.pdf")
    os.rename(bytes(pdf), bytes(staging) + b"/r\xe9clamation.pdf")
    harness.drop(staging)
    other = harness.root / "staging" / "L2"
    text_pdf_batch(other, ["200000022"])
    latin = Path(os.fsdecode(bytes(other.parent) + b"/lot-f\xe9vrier"))
    os.rename(other, latin)
    harness.drop(latin)

    async with harness.service() as service:
        report = await service.poll_once()
    async with harness.service() as service:  # and again: nothing twice, nothing stuck
        await service.poll_once()

    assert len(harness.captured.items) == 1  # the good letter of L1
    codes = harness.captured.codes()
    assert len(codes) == 2, codes
    assert any("\\udce9" in letter.reason for letter in harness.captured.dead)
    assert not report.interrupted
    assert harness.files(harness.work_dir) == harness.files(harness.inbox_dir) == []
    for sidecar in harness.quarantine_dir.rglob("*.reason.json"):
        json.loads(sidecar.read_text(encoding="utf-8"))  # valid UTF-8 JSON


async def test_scan_a_page_too_wide_for_ocr_is_quarantined_not_fatal(harness: ScanHarness) -> None:
    """40000 x 20 pixels is far under the pixel limit, but tesseract refuses it: the error
    used to stop the service at every start, on the same batch."""
    folder = harness.root / "staging" / "W1"
    names = text_pdf_batch(folder, ["200000021"], index=False)
    Image.new("L", (40000, 20), 255).save(folder / "wide.png")
    write_index(folder / "index.csv", [index_row(n) for n in [*names, "wide.png"]])
    harness.drop(folder)

    async with harness.service() as service:
        report = await service.poll_once()

    assert report.statuses == {"done": 1}
    assert len(harness.captured.items) == 1
    assert harness.captured.codes() == ["too_many_pixels"]

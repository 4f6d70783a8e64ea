"""Crashes at every step of a letter, reader crashes, claims and adoption between instances."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import zipfile
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError

from services.intake_scan.adapters.reader import InlineReader
from services.intake_scan.adapters.tables import scan_batch_entries, scan_letters
from services.intake_scan.adapters.text import LetterRejected, LetterText
from services.intake_scan.adapters.zips import ZipLimits, expand_zip
from services.intake_scan.app import inbox_for
from services.intake_scan.errors import InstanceIdInUse, ReaderCrashed
from services.intake_scan.harness import ScanHarness, TapSink
from services.intake_scan.inbox import Inbox
from services.intake_scan.ports import ItemSink
from services.intake_scan.testing import text_pdf_batch

REFS = ["200000011", "200000012", "200000013"]


async def test_scan_crash_between_ack_and_record_republishes_the_same_item(
    harness: ScanHarness,
) -> None:
    text_pdf_batch(harness.root / "staging" / "B1", REFS)
    harness.drop(harness.root / "staging" / "B1")

    def crash_after_second(count: int) -> None:
        if count == 2:
            raise KafkaConnectionError("simulated crash after the acknowledgement")

    def tap(sink: ItemSink) -> ItemSink:
        return TapSink(sink, crash_after_second)

    async with harness.service(sink=tap) as service:
        first = await service.poll_once()
    assert first.interrupted == 1
    assert len(harness.captured.items) == 2
    assert harness.files(harness.inbox_dir) == []  # claimed: the batch waits in the work folder

    async with harness.service(harness.settings(instance_id="test-b")) as service:
        second = await service.poll_once()  # adopts test-a's batch (its lock is free)
    assert second.statuses == {"done": 1}
    items = [item for _, item in harness.captured.items]
    assert len(items) == 4
    assert len({item.item_id for item in items}) == 3
    assert items[1] == items[2]  # the republished item is the same item, consumers drop it
    assert {row.status for row in await harness.rows(scan_letters)} == {"published"}
    assert [row.outcome for row in await harness.rows(scan_batch_entries)] == ["published"] * 3
    assert harness.files(harness.work_dir) == []


class _ArchiveFailsOnce(Inbox):
    failed = False

    def archive(self, path: Path, sha256: str, extension: str) -> Path:
        if not self.failed:
            self.failed = True
            raise OSError("simulated crash after the outcome was recorded")
        return super().archive(path, sha256, extension)


async def test_scan_crash_between_record_and_archive_only_finishes_the_move(
    harness: ScanHarness,
) -> None:
    text_pdf_batch(harness.root / "staging" / "B2", REFS)
    harness.drop(harness.root / "staging" / "B2")
    settings = harness.settings()
    base = inbox_for(settings)
    flaky = _ArchiveFailsOnce(
        inbox=base.inbox, work_root=base.work_root, archive=base.archive_root,
        quarantine=base.quarantine_root, instance_id=settings.instance_id, settle_s=0,
    )  # fmt: skip
    async with harness.service(settings, inbox=flaky) as service:
        first = await service.poll_once()
        second = await service.poll_once()
    assert (first.interrupted, second.statuses) == (1, {"done": 1})
    assert len(harness.captured.items) == 3  # nothing published twice
    assert len(harness.files(harness.archive_dir)) == 3 + 1  # letters and the index


class _CrashingReader:
    """Reads like InlineReader, but the reader 'process' dies on one file every time."""

    def __init__(self, fatal_name: str) -> None:
        self._inner = InlineReader()
        self._fatal = fatal_name
        self.workers = 1

    async def read(self, path: Path) -> LetterText | LetterRejected:
        if path.name == self._fatal:
            raise ReaderCrashed("simulated out-of-memory kill")
        return await self._inner.read(path)

    def close(self) -> None:
        self._inner.close()


async def test_scan_letter_that_kills_the_reader_is_quarantined_the_rest_proceeds(
    harness: ScanHarness,
) -> None:
    names = text_pdf_batch(harness.root / "staging" / "B3", REFS)
    harness.drop(harness.root / "staging" / "B3")
    settings = harness.settings(reader_max_crashes=1)
    statuses = []
    async with harness.service(settings, reader=_CrashingReader(names[1])) as service:
        for _ in range(4):
            report = await service.poll_once()
            statuses.append((report.interrupted, report.statuses))
    # read ahead: a crash; read alone: the culprit crashes once more; then it is refused
    assert statuses[:3] == [(1, {}), (1, {}), (0, {"done": 1})]
    assert [letter.reason_code for letter in harness.captured.dead] == ["reader_crashed"]
    assert len(set(harness.captured.item_ids)) == 2
    quarantined = [Path(name).name for name in harness.files(harness.quarantine_dir)]
    assert any(name.startswith("lettre-0002.") for name in quarantined)


def test_scan_two_inboxes_claim_a_batch_once(harness: ScanHarness) -> None:
    text_pdf_batch(harness.root / "staging" / "B4", REFS[:1])
    harness.drop(harness.root / "staging" / "B4")
    a = inbox_for(harness.settings(instance_id="a")).open()
    b = inbox_for(harness.settings(instance_id="b")).open()
    try:
        (seen_by_a,) = a.ready_batches()
        (seen_by_b,) = b.ready_batches()
        assert a.claim(seen_by_a) == harness.work_dir / "a" / "B4"
        assert b.claim(seen_by_b) is None
        assert b.adopt_orphans() == []  # a is alive: its batch is not taken
        with pytest.raises(InstanceIdInUse):
            inbox_for(harness.settings(instance_id="a")).open(wait_s=0.2)
    finally:
        a.close()
        b.close()


_HOLDER = """
import sys, time
from pathlib import Path
from services.intake_scan.inbox import Inbox
root = Path(sys.argv[1])
inbox = Inbox(inbox=root / "inbox", work_root=root / "work", archive=root / "archive",
              quarantine=root / "quarantine", instance_id="doomed", settle_s=0).open()
inbox.claim(inbox.ready_batches()[0])
print("claimed", flush=True)
time.sleep(60)
"""


async def test_scan_batches_of_a_killed_instance_are_adopted_and_finished(
    harness: ScanHarness,
) -> None:
    text_pdf_batch(harness.root / "staging" / "B5", REFS)
    harness.drop(harness.root / "staging" / "B5")
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLDER, str(harness.root),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path.cwd())},
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert (await holder.stdout.readline()).strip() == b"claimed"
        async with harness.service() as service:
            alive = await service.poll_once()
            holder.send_signal(signal.SIGKILL)
            await holder.wait()
            dead = await service.poll_once()
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
    assert alive.statuses == {}
    assert dead.statuses == {"done": 1}
    assert len(harness.captured.items) == 3
    assert harness.files(harness.work_dir) == []


async def test_scan_crash_between_zip_expansion_and_its_disposal_finishes_once(
    harness: ScanHarness,
) -> None:
    """A crash right after a claimed zip was expanded leaves the zip and its folder: the
    zip's run finishes the folder, and the folder, listed before that, used to run again
    and quarantine a batch already done (a false dead letter, a backoff)."""
    staging = harness.root / "staging" / "B"
    text_pdf_batch(staging, ["200000021", "200000022"])
    work = harness.work_dir / "test-a"
    work.mkdir(parents=True)
    with zipfile.ZipFile(work / "B.zip", "w") as archive:
        for file in sorted(staging.iterdir()):
            archive.write(file, file.name)
    expand_zip(work / "B.zip", work / "B", ZipLimits())  # then the crash

    async with harness.service() as service:
        report = await service.poll_once()

    assert len(harness.captured.item_ids) == 2
    assert harness.captured.dead == []
    assert not report.interrupted
    assert harness.files(harness.quarantine_dir) == []
    assert harness.files(harness.work_dir) == []

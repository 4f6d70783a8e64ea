"""When a batch counts as complete, and how it is claimed (real files, a clock the test sets)."""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.intake_scan.errors import InboxUnusable
from services.intake_scan.inbox import Inbox

NOW = 1_900_000_000.0


class _Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def _touch(path: Path, at: float = NOW, content: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.utime(path, (at, at))
    os.utime(path.parent, (at, at))
    return path


@pytest.fixture
def clock() -> _Clock:
    return _Clock()


@pytest.fixture
def inbox(tmp_path: Path, clock: _Clock) -> Iterator[Inbox]:
    box = Inbox(
        inbox=tmp_path / "inbox", work_root=tmp_path / "work", archive=tmp_path / "archive",
        quarantine=tmp_path / "quarantine", instance_id="me", settle_s=5, stale_zip_s=600,
        clock=clock,
    ).open()  # fmt: skip
    yield box
    box.close()


def _names(inbox: Inbox) -> list[str]:
    return [candidate.path.name for candidate in inbox.ready_batches()]


def test_scan_folder_batch_is_taken_only_once_complete(inbox: Inbox, clock: _Clock) -> None:
    batch = inbox.inbox / "B1"
    _touch(batch / "a.pdf")
    assert _names(inbox) == []  # no index yet: the provider is still writing
    _touch(batch / "index.csv")
    clock.now = NOW + 1
    assert _names(inbox) == []  # index just written: it may still grow
    clock.now = NOW + 6
    assert _names(inbox) == ["B1"]
    _touch(batch / "b.pdf.part", at=NOW - 60)
    assert _names(inbox) == []  # a file is still being uploaded
    (batch / "b.pdf.part").unlink()
    _touch(batch / "c.pdf", at=NOW + 5)
    assert _names(inbox) == []  # a file arrived after the index


def test_scan_folder_that_stays_incomplete_is_taken_once_stale(inbox: Inbox, clock: _Clock) -> None:
    """No index ever came, or an upload was left half done: the folder used to wait in the
    inbox for ever, unseen; once stale it is taken, to be refused with a dead letter."""
    _touch(inbox.inbox / "B7" / "a.pdf")
    _touch(inbox.inbox / "B8" / "index.csv")
    _touch(inbox.inbox / "B8" / "b.pdf.part")
    clock.now = NOW + 599
    assert _names(inbox) == []
    clock.now = NOW + 601
    assert sorted(_names(inbox)) == ["B7", "B8"]


def test_scan_ready_marker_overrides_the_settle_time(inbox: Inbox) -> None:
    _touch(inbox.inbox / "B2" / "a.pdf")
    _touch(inbox.inbox / "B2" / ".ready")
    _touch(inbox.inbox / ".B3-uploading" / ".ready")
    _touch(inbox.inbox / "B4.part" / ".ready")
    _touch(inbox.inbox / "loose.pdf")
    assert _names(inbox) == ["B2"]


def _zip(path: Path, at: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("index.csv", "file_name;scanned_at\n")
    os.utime(path, (at, at))
    return path


def test_scan_zip_batch_is_taken_when_whole(inbox: Inbox, clock: _Clock) -> None:
    _zip(inbox.inbox / "Z1.zip", NOW)
    _touch(inbox.inbox / "Z2.zip", content=b"PK\x03\x04 still uploading")
    _touch(inbox.inbox / "Z3.zip", content=b"PK\x03\x04 still uploading")
    _touch(inbox.inbox / "Z3.zip.ready")
    _touch(inbox.inbox / "Z4.zip.ready", at=NOW - 60)  # its zip is gone: a stale marker
    clock.now = NOW + 1
    assert _names(inbox) == ["Z3.zip"]  # the marker says done, whatever its bytes
    clock.now = NOW + 6
    assert sorted(_names(inbox)) == ["Z1.zip", "Z3.zip"]  # readable and settled
    assert not (inbox.inbox / "Z4.zip.ready").exists()
    clock.now = NOW + 601
    assert sorted(_names(inbox)) == ["Z1.zip", "Z2.zip", "Z3.zip"]  # stale: taken, then refused


def test_scan_claim_moves_the_batch_and_its_marker(inbox: Inbox) -> None:
    _zip(inbox.inbox / "Z5.zip", NOW - 60)
    _touch(inbox.inbox / "Z5.zip.ready")
    (candidate,) = inbox.ready_batches()
    assert inbox.claim(candidate) == inbox.work / "Z5.zip"
    assert sorted(os.listdir(inbox.inbox)) == []
    assert inbox.claim(candidate) is None  # already taken
    assert inbox.pending() == [inbox.work / "Z5.zip"]


@pytest.fixture
def other_disk() -> Iterator[Path]:
    """A folder on another file system (tmpfs), where a rename cannot reach."""
    folder = Path(tempfile.mkdtemp(prefix="aiguillage-scan-", dir="/dev/shm"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_scan_inbox_on_another_disk_is_refused(tmp_path: Path, other_disk: Path) -> None:
    assert os.stat(other_disk).st_dev != os.stat(tmp_path).st_dev
    box = Inbox(
        inbox=other_disk / "inbox", work_root=tmp_path / "work", archive=tmp_path / "archive",
        quarantine=tmp_path / "quarantine", instance_id="x",
    )  # fmt: skip
    with pytest.raises(InboxUnusable, match="same file system"):
        box.open()


def test_scan_by_hand_import_copies_across_disks(tmp_path: Path, other_disk: Path) -> None:
    (other_disk / "B6").mkdir()
    (other_disk / "B6" / "index.csv").write_bytes(b"x")
    box = Inbox(
        inbox=other_disk, work_root=tmp_path / "work", archive=tmp_path / "archive",
        quarantine=tmp_path / "quarantine", instance_id="import", settle_s=0,
        copy_across_disks=True,
    ).open(same_disk=False)  # fmt: skip
    try:
        (candidate,) = box.ready_batches()
        claimed = box.claim(candidate)
        assert claimed == box.work / "B6"
        assert (claimed / "index.csv").read_bytes() == b"x"
        assert not (other_disk / "B6").exists()
    finally:
        box.close()

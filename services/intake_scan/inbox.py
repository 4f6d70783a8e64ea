"""The drop folders on disk: which batches are complete, claiming them, archive and quarantine.

Procedure 4.3: every letter is scanned and traced. The provider drops a batch
(a folder, or a ``.zip``) into the inbox. A batch is taken only once complete:
it holds a ``.ready`` marker (``B.zip.ready`` beside a zip), or its index (a
zip: a readable central directory) and every file in it have been left
untouched for ``settle_s`` seconds. An instance claims a batch by renaming it
into its own working folder: a rename is atomic, so of two instances only one
succeeds and the other sees the batch gone. Each instance holds an exclusive
``flock`` on its working folder's ``.lock`` while it lives; a folder whose lock
is free belongs to a dead instance, and a live one adopts its batches (a
restart resumes half-done batches). Done letters go to a content-addressed
archive, bad input to the quarantine folder with a ``.reason.json`` beside it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from services.common.logging import get_logger
from services.intake_scan.errors import InboxUnusable, InstanceIdInUse

__all__ = ["PARTIAL_SUFFIXES", "READY_MARKER", "Candidate", "Fingerprint", "Inbox", "fingerprint"]

READY_MARKER = ".ready"
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".filepart", ".upload")
_LOCK = ".lock"
_TRASH = ".trash-"
_CHUNK = 1024 * 1024
log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A complete batch in the inbox: a folder or a zip, with its batch name."""

    path: Path
    kind: Literal["folder", "zip"]
    name: str


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A file's SHA-256 and size."""

    sha256: str
    size: int


def fingerprint(path: Path) -> Fingerprint:
    """Hash a file (blocking: call it in a thread)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return Fingerprint(digest.hexdigest(), size)


def _partial(name: str) -> bool:
    return name.startswith(".") or name.endswith(PARTIAL_SUFFIXES)


def _move(source: Path, target: Path) -> None:
    """Rename; across file systems copy to a temporary name, fsync, rename, then delete."""
    try:
        os.replace(source, target)
        return
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    tree = source.is_dir() and not source.is_symlink()
    if tree:
        shutil.copytree(source, staging, symlinks=True)
    else:
        shutil.copy2(source, staging, follow_symlinks=False)
        if not staging.is_symlink():
            with staging.open("rb") as handle:
                os.fsync(handle.fileno())
    os.replace(staging, target)
    if tree:
        shutil.rmtree(source)
    else:
        source.unlink()


def _write_json(path: Path, content: Mapping[str, object]) -> None:
    staging = path.with_name(f".{path.name}.tmp")
    # backslashreplace: a name in another encoding than UTF-8 (lone surrogates) is written
    # escaped, instead of failing the quarantine of the very file it names
    text = json.dumps(content, ensure_ascii=False, indent=2)
    staging.write_text(text, encoding="utf-8", errors="backslashreplace")
    os.replace(staging, path)


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on ``path`` (created if missing), or None if held."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    with contextlib.suppress(FileNotFoundError):
        if os.stat(path).st_ino == os.fstat(fd).st_ino:
            return fd
    os.close(fd)  # the file was replaced or removed meanwhile: not the live lock
    return None


class Inbox:
    """The inbox, this instance's working folder, the archive and the quarantine."""

    def __init__(
        self,
        *,
        inbox: Path,
        work_root: Path,
        archive: Path,
        quarantine: Path,
        instance_id: str,
        index_name: str = "index.csv",
        settle_s: float = 5.0,
        stale_zip_s: float = 3600.0,
        copy_across_disks: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.inbox = inbox
        self.work_root = work_root
        self.archive_root = archive
        self.quarantine_root = quarantine
        self.instance_id = instance_id
        self.work = work_root / instance_id
        self._index_name = index_name
        self._settle_s = settle_s
        self._stale_zip_s = stale_zip_s
        self._copy_across_disks = copy_across_disks
        self._clock = clock
        self._lock_fd: int | None = None

    # -- life cycle -------------------------------------------------------------------------

    def open(self, *, same_disk: bool = True, wait_s: float = 5.0) -> Inbox:
        """Create the folders and take this instance's working folder (its flock).

        With ``same_disk`` the inbox and the working folders must be on one
        file system, where a rename is atomic: otherwise claiming is not safe.
        A folder held by a live process (or an adopter) is waited for ``wait_s``.
        """
        for folder in (self.inbox, self.work_root, self.archive_root, self.quarantine_root):
            folder.mkdir(parents=True, exist_ok=True)
        if same_disk and os.stat(self.inbox).st_dev != os.stat(self.work_root).st_dev:
            raise InboxUnusable("the inbox and the work folder must be on the same file system")
        deadline = time.monotonic() + wait_s
        while True:
            fd = self._take_own_folder()
            if fd is not None:
                self._lock_fd = fd
                return self
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        raise InstanceIdInUse(f"instance id {self.instance_id!r} is held by a live process")

    def _take_own_folder(self) -> int | None:
        if self.work.exists():
            return _try_lock(self.work / _LOCK)
        staging = self.work_root / f".new-{self.instance_id}-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        fd = _try_lock(staging / _LOCK)
        try:
            os.rename(staging, self.work)
        except OSError:  # created meanwhile (another process with this id, or an adopter)
            if fd is not None:
                os.close(fd)
            shutil.rmtree(staging, ignore_errors=True)
            return None
        return fd

    def close(self) -> None:
        """Release the working folder (removed when empty; batches left stay for a restart)."""
        if self._lock_fd is None:
            return
        if [entry.name for entry in self.work.iterdir()] == [_LOCK]:
            (self.work / _LOCK).unlink()  # still locked: no adopter can take the folder now
            with contextlib.suppress(OSError):
                self.work.rmdir()
        os.close(self._lock_fd)
        self._lock_fd = None

    # -- completeness and claiming ----------------------------------------------------------

    def _settled(self, *paths: Path) -> bool:
        newest = max(path.stat(follow_symlinks=False).st_mtime for path in paths)
        return self._clock() - newest >= self._settle_s

    def _folder_ready(self, folder: Path) -> bool:
        entries = list(folder.iterdir())
        names = {entry.name for entry in entries}
        if READY_MARKER in names:
            return True
        if self._index_name not in names or any(name.endswith(PARTIAL_SUFFIXES) for name in names):
            # One that stays incomplete is taken once stale, like a zip, and refused then
            # (no index, a partial file) with a dead letter: it used to wait for ever, unseen.
            newest = max(path.stat(follow_symlinks=False).st_mtime for path in (folder, *entries))
            return self._clock() - newest >= self._stale_zip_s
        return self._settled(folder, *entries)

    def _zip_ready(self, path: Path) -> bool:
        if path.with_name(path.name + READY_MARKER).exists():
            return True
        if not self._settled(path):
            return False
        # The central directory is written last: a readable zip is a whole zip. One that
        # stays unreadable is taken once stale, and refused then as corrupt.
        return zipfile.is_zipfile(path) or self._clock() - path.stat().st_mtime >= self._stale_zip_s

    def ready_batches(self) -> list[Candidate]:
        """Complete batches in the inbox, oldest first (4.3: scan date order)."""
        found: list[tuple[float, Candidate]] = []
        for entry in self.inbox.iterdir():
            if _partial(entry.name):
                continue
            try:
                if entry.is_dir() and not entry.is_symlink():
                    if self._folder_ready(entry):
                        found.append(
                            (entry.stat().st_mtime, Candidate(entry, "folder", entry.name))
                        )
                elif entry.name.lower().endswith(".zip") and entry.is_file():
                    if self._zip_ready(entry):
                        candidate = Candidate(entry, "zip", entry.name[:-4])
                        found.append((entry.stat().st_mtime, candidate))
                elif entry.name.endswith(".zip" + READY_MARKER):
                    self._drop_stale_marker(entry)
            except FileNotFoundError:
                continue  # claimed by another instance while looking
        return [candidate for _, candidate in sorted(found, key=lambda pair: pair[0])]

    def _drop_stale_marker(self, marker: Path) -> None:
        zip_path = marker.with_name(marker.name.removesuffix(READY_MARKER))
        if not zip_path.exists() and self._settled(marker):
            marker.unlink(missing_ok=True)

    def claim(self, candidate: Candidate) -> Path | None:
        """Rename a batch into this instance's working folder; None if another was first.

        A batch whose name is already being worked on here waits for the next poll.
        """
        target = self.work / candidate.path.name
        if any((self.work / name).exists() for name in (candidate.name, f"{candidate.name}.zip")):
            return None
        try:
            os.rename(candidate.path, target)
        except FileNotFoundError:
            return None
        except OSError as error:
            if error.errno != errno.EXDEV or not self._copy_across_disks:
                raise
            _move(candidate.path, target)  # by-hand import from another disk: copy, then delete
        if candidate.kind == "zip":
            candidate.path.with_name(candidate.path.name + READY_MARKER).unlink(missing_ok=True)
        return target

    def pending(self) -> list[Path]:
        """Batches in this instance's working folder: resumed before new ones are claimed."""
        entries = []
        for entry in self.work.iterdir():
            if entry.name.startswith(_TRASH):  # a removal a crash interrupted
                shutil.rmtree(entry, ignore_errors=True)
            elif (
                not entry.name.startswith(".")
                and not entry.name.endswith(".expanding")
                and (entry.is_dir() or entry.name.lower().endswith(".zip"))
            ):
                entries.append(entry)
        return sorted(entries, key=lambda entry: entry.name)

    def adopt_orphans(self) -> list[str]:
        """Take over the batches of dead instances (their folder's flock is free)."""
        adopted: list[str] = []
        for folder in self.work_root.iterdir():
            if folder == self.work or not folder.is_dir():
                continue
            try:
                fd = _try_lock(folder / _LOCK)
            except FileNotFoundError:
                continue  # removed by another adopter meanwhile
            if fd is None:
                continue
            if folder.name.startswith(".new-"):  # a start-up that died before naming its folder
                shutil.rmtree(folder, ignore_errors=True)
                os.close(fd)
                continue
            try:
                adopted += self._adopt(folder)
            finally:
                os.close(fd)
        return adopted

    def _adopt(self, folder: Path) -> list[str]:
        moved: list[str] = []
        for entry in folder.iterdir():
            if entry.name == _LOCK or (self.work / entry.name).exists():
                continue
            with contextlib.suppress(FileNotFoundError):
                os.rename(entry, self.work / entry.name)
                moved.append(entry.name)
        if [entry.name for entry in folder.iterdir()] == [_LOCK]:
            with contextlib.suppress(FileNotFoundError):
                (folder / _LOCK).unlink()
            with contextlib.suppress(OSError):
                folder.rmdir()
        if moved:
            log.info("inbox.adopted", instance=self.instance_id, dead_instance=folder.name)
        return moved

    # -- archive and quarantine -------------------------------------------------------------

    def archive_path(self, sha256: str, extension: str) -> Path:
        """Where a letter lives once done: ``archive/<first two hex>/<sha256>.<ext>``."""
        return self.archive_root / sha256[:2] / f"{sha256}.{extension}"

    def archive(self, path: Path, sha256: str, extension: str) -> Path:
        """Move a done letter to the content-addressed archive (a copy already there wins)."""
        target = self.archive_path(sha256, extension)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            path.unlink()
        else:
            _move(path, target)
        return target

    def archive_index(self, path: Path, batch_id: str, index_sha256: str) -> Path:
        """Keep a copy of a batch's index: ``archive/batches/<batch>/<index sha256>.csv``."""
        target = self.archive_root / "batches" / batch_id / f"{index_sha256}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(path, staging)
        os.replace(staging, target)
        return target

    def discard(self, folder: Path) -> None:
        """Remove a finished batch folder: renamed away first, so it never looks half-done."""
        trash = self.work / f"{_TRASH}{uuid.uuid4().hex}"
        os.rename(folder, trash)
        shutil.rmtree(trash)

    def quarantine_path(self, batch_id: str, name: str, sha256: str | None) -> Path:
        """Where a rejected file goes: ``quarantine/<batch>/<stem>.<hash12><suffix>``."""
        base = Path(name)
        tag = (sha256 or hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest())[:12]
        return self.quarantine_root / batch_id / f"{base.stem}.{tag}{base.suffix}"

    def quarantine(self, path: Path, target: Path, reason: Mapping[str, object]) -> Path:
        """Move a rejected file (or batch) to quarantine, its reason written beside it.

        A file already there under the same name has the same content (the name
        carries its hash) and the new copy is dropped; a folder gets a new name.
        """
        target.parent.mkdir(parents=True, exist_ok=True)
        tree = path.is_dir() and not path.is_symlink()
        if tree and (target.exists() or target.is_symlink()):
            target = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}")
        _write_json(target.with_name(target.name + ".reason.json"), reason)
        if target.exists() or target.is_symlink():
            path.unlink()
        else:
            _move(path, target)
        return target

    def quarantine_batch(self, path: Path, reason: Mapping[str, object]) -> Path:
        """Move a whole batch (folder or zip) to quarantine, under a name never used before."""
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self._clock()))
        tag = f"{stamp}-{uuid.uuid4().hex[:6]}"
        name = f"{path.name}.{tag}" if path.is_dir() else f"{path.stem}.{tag}{path.suffix}"
        return self.quarantine(path, self.quarantine_root / name, reason)

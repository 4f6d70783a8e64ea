"""One claimed batch, from the working folder to items, dead letters, archive and quarantine.

Procedure 4.3 (every letter scanned and traced), 5.1.1 (letters to TSA
boxes), 5.1.4 (contact date = scan date J). A zip is first expanded safely.
The index is read, rows are paired with files (``domain.batches.plan_batch``)
and every rejection goes to the DLQ and its file to quarantine. Letters are
read ahead in the reader's process pool and finished one by one in index
order: reserve the content hash, publish the item and wait for Kafka's
acknowledgement, record the outcome, then move the file to the archive.

Nothing is lost: a file leaves the working folder only after its outcome is
recorded, and its outcome is recorded only after Kafka acknowledged the item
or dead letter. Nothing happens twice: a resumed batch finds the outcomes
recorded for its run (batch id + index hash) and only completes the moves;
a content already published (this batch or another) is a duplicate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from services.common.logging import get_logger
from services.intake_scan.adapters.progress import ScanProgress
from services.intake_scan.adapters.zips import (
    ZipRefused,
    ZipRejection,
    expand_zip,
    read_rejections,
)
from services.intake_scan.domain.batches import (
    Rejection,
    batch_id_problem,
    loggable_batch_id,
    plan_batch,
)
from services.intake_scan.domain.index import ParsedIndex, parse_index
from services.intake_scan.inbox import Inbox
from services.intake_scan.letter_flow import LetterFlow, Run
from services.intake_scan.ports import ItemSink
from services.intake_scan.settings import ScanSettings

__all__ = ["BatchRunner", "EntryHook"]

log = get_logger(__name__)
EntryHook = Callable[[str], None]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class _Listing:
    files: list[str]
    others: list[Rejection]
    zip_rejections: list[ZipRejection]


def _is_zip(path: Path) -> bool:
    return path.suffix.lower() == ".zip" and not path.is_dir()


def _list_batch(folder: Path, index_name: str) -> _Listing:
    files: list[str] = []
    others: list[Rejection] = []
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if name.startswith(".") or name == index_name:
            continue  # control files (.ready, zip rejections) and hidden junk
        if entry.is_symlink() or not (entry.is_file() or entry.is_dir()):
            reason = f"{name!r} is not a regular file (symbolic link, device or pipe)"
            others.append(Rejection(f"file:{name}", "unsafe_entry", reason, file_name=name))
        elif entry.is_dir():
            reason = f"{name!r} is a sub-folder; a batch is one flat folder"
            others.append(Rejection(f"file:{name}", "nested_folder", reason, file_name=name))
        else:
            files.append(name)
    return _Listing(files, others, read_rejections(folder))


class BatchRunner:
    """Runs claimed batches; one runner per service instance."""

    def __init__(
        self,
        *,
        settings: ScanSettings,
        inbox: Inbox,
        progress: ScanProgress,
        flow: LetterFlow,
        sink: ItemSink,
        clock: Callable[[], dt.datetime] = _utcnow,
        on_entry: EntryHook | None = None,
    ) -> None:
        self._settings = settings
        self._inbox = inbox
        self._progress = progress
        self._flow = flow
        self._sink = sink
        self._clock = clock
        self._on_entry = on_entry

    async def run(self, path: Path, stop: asyncio.Event | None = None) -> str:
        """Run one batch of the working folder to its end (4.3); return how it ended.

        ``done`` or ``quarantined``; ``stopped`` when ``stop`` was set (the
        rest stays for the next start). Unexpected errors (Kafka or the store
        down, a reader crash) propagate and leave the batch to be resumed.
        """
        name = path.name[:-4] if _is_zip(path) else path.name
        problem = batch_id_problem(name)
        if problem is not None:
            await self._refuse_batch(path, name, "bad_batch_name", problem)
            return "quarantined"
        if _is_zip(path):
            expanded = await self._expand(path)
            if expanded is None:
                return "quarantined"
            path = expanded
        return await self._run_folder(path, stop)

    async def _expand(self, zip_path: Path) -> Path | None:
        folder = zip_path.with_name(zip_path.name[:-4])
        if not folder.exists():
            limits = self._settings.zip_limits()
            outcome = await asyncio.to_thread(expand_zip, zip_path, folder, limits)
            if isinstance(outcome, ZipRefused):
                await self._refuse_batch(zip_path, folder.name, outcome.reason_code, outcome.reason)
                return None
        await asyncio.to_thread(self._dispose_of_zip, zip_path, folder)
        return folder

    def _dispose_of_zip(self, zip_path: Path, folder: Path) -> None:
        rejected = read_rejections(folder)
        if rejected:  # the zip is the only copy of the refused entries: keep it as evidence
            entries = [{"entry": r.name, "reason_code": r.reason_code} for r in rejected]
            self._inbox.quarantine_batch(zip_path, {"batch": folder.name, "refused": entries})
        else:
            zip_path.unlink()

    async def _refuse_batch(
        self, path: Path, name: str, code: str, reason: str, index_sha256: str | None = None
    ) -> None:
        valid = batch_id_problem(name) is None
        label = loggable_batch_id(name)
        await self._sink.dead_letter(
            reason_code=code,
            reason=f"batch {name!r} kept in quarantine: {reason}",
            original_ref=f"scan://{label}",
        )
        details = {"batch": name, "reason_code": code, "reason": reason}
        await asyncio.to_thread(self._inbox.quarantine_batch, path, details)
        if valid:
            digest = index_sha256 or hashlib.sha256(b"").hexdigest()
            await self._progress.finish_batch(
                name, digest, "quarantined", self._clock(), instance=self._inbox.instance_id
            )
        log.warning("batch.quarantined", batch_id=label, reason_code=code)

    def _read_index(self, folder: Path) -> tuple[ParsedIndex, str] | tuple[str, str | None]:
        index_path = folder / self._settings.index_name
        if not index_path.is_file():
            return f"no {self._settings.index_name} in the batch", None
        if index_path.stat().st_size > self._settings.max_index_bytes:
            return f"index over {self._settings.max_index_mb} MB", None
        data = index_path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        parsed = parse_index(data, self._settings.timezone())
        if parsed.unreadable is not None:
            return parsed.unreadable, digest
        return parsed, digest

    async def _run_folder(self, folder: Path, stop: asyncio.Event | None) -> str:
        batch_id = folder.name
        parsed, digest = await asyncio.to_thread(self._read_index, folder)
        if not isinstance(parsed, ParsedIndex) or digest is None:
            await self._refuse_batch(folder, batch_id, "bad_index", str(parsed), digest)
            return "quarantined"
        recorded = await self._progress.start_batch(
            batch_id, digest, self._inbox.instance_id, self._clock()
        )
        run = Run(batch_id, digest, folder, recorded)
        log.info("batch.started", batch_id=batch_id, index_sha256=digest, resumed=bool(recorded))
        listing = await asyncio.to_thread(_list_batch, folder, self._settings.index_name)
        done = [key.removeprefix("file:") for key in recorded if key.startswith("file:")]
        plan = plan_batch(parsed, listing.files, done)
        zipped = [
            Rejection(f"zip:{r.number}", r.reason_code, f"zip entry {r.name!r}: {r.reason}")
            for r in listing.zip_rejections
        ]
        for rejection in (*zipped, *listing.others, *plan.rejections):
            await self._flow.reject(run, rejection)
            self._entry_done("quarantined" if rejection.file_name else "dead_lettered")
        outcome = await self._flow.letters(run, plan.letters, stop, self._entry_done)
        if outcome == "stopped":
            return "stopped"
        await self._finish(run, folder)
        return "done"

    async def _finish(self, run: Run, folder: Path) -> None:
        await self._progress.finish_batch(run.batch_id, run.index_sha256, "done", self._clock())
        if await asyncio.to_thread(self._clear, run, folder):
            log.info("batch.done", batch_id=run.batch_id, index_sha256=run.index_sha256)
        else:  # a file appeared after the batch was listed: the next pass takes it
            log.error("batch.files_left", batch_id=run.batch_id)

    def _clear(self, run: Run, folder: Path) -> bool:
        """Keep a copy of the index, then remove the folder in one rename (crash-safe)."""
        index_name = self._settings.index_name
        if any(not e.name.startswith(".") and e.name != index_name for e in folder.iterdir()):
            return False
        self._inbox.archive_index(folder / index_name, run.batch_id, run.index_sha256)
        self._inbox.discard(folder)
        return True

    def _entry_done(self, outcome: str) -> None:
        if self._on_entry is not None:
            self._on_entry(outcome)

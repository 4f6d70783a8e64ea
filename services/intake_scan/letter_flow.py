"""Each letter of a batch: read ahead, then reserve → publish → record → archive, in order.

Procedure 4.3 (every letter scanned, traced, never dropped), 4.9 NB (TSA
60002), 5.1.4 (contact date = scan date J). Reading (hash, dedupe look-up,
text layer or OCR in the process pool) runs ahead for several letters while
the letters before them are published one at a time in index order. A
reader process that dies makes the batch run again one letter at a time, so
the letter that kills it is known and, after ``reader_max_crashes``,
quarantined instead of stalling the inbox.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from schemas.intake import AttachmentRef, IntakeItem
from services.common.logging import get_logger
from services.common.metrics import metrics
from services.intake_scan.adapters.progress import EntryOutcome, ScanProgress
from services.intake_scan.adapters.text import FileKind, LetterRejected, LetterText, sniff_kind
from services.intake_scan.domain.batches import (
    Letter,
    Rejection,
    file_key,
    letter_item_id,
    source_ref,
)
from services.intake_scan.domain.letters import build_letter_item, extract_letter_facts
from services.intake_scan.domain.text import join_pages
from services.intake_scan.errors import ReaderCrashed
from services.intake_scan.inbox import Fingerprint, Inbox, fingerprint
from services.intake_scan.ports import ItemSink, LetterReader
from services.intake_scan.settings import ScanSettings

__all__ = ["CONTENT_TYPES", "LetterFlow", "Run"]

log = get_logger(__name__)
CONTENT_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "tiff": "image/tiff",
    "png": "image/png",
    "jpeg": "image/jpeg",
}


@dataclass(frozen=True, slots=True)
class Run:
    """One batch run: the batch id, its index hash, its folder and what is already recorded."""

    batch_id: str
    index_sha256: str
    folder: Path
    recorded: dict[str, EntryOutcome]


@dataclass(frozen=True, slots=True)
class _Prepared:
    letter: Letter
    key: str
    print: Fingerprint | None
    kind: FileKind | None = None
    recorded: EntryOutcome | None = None
    rejection: tuple[str, str] | None = None
    duplicate_of: str | None = None
    text: LetterText | None = None


def _inspect(path: Path) -> tuple[Fingerprint, FileKind | None]:
    found = fingerprint(path)
    try:
        return found, sniff_kind(path)
    except LetterRejected:
        return found, None


async def _unless_stopped(
    task: asyncio.Task[_Prepared], stop: asyncio.Event | None
) -> _Prepared | None:
    """The task's result, or None (task cancelled) as soon as ``stop`` is set."""
    if stop is None:
        return await task
    if not stop.is_set():
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
    if task.done() and not stop.is_set():
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return None


def _regular_fingerprint(path: Path) -> Fingerprint | None:
    if not path.is_file() or path.is_symlink():
        return None
    try:
        return fingerprint(path)
    except PermissionError:
        return None


def _name_tag(name: str) -> str:
    return "entry-" + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]


class LetterFlow:
    """The per-letter steps of a batch run (one instance per service)."""

    def __init__(
        self,
        *,
        settings: ScanSettings,
        inbox: Inbox,
        progress: ScanProgress,
        reader: LetterReader,
        sink: ItemSink,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._settings = settings
        self._inbox = inbox
        self._progress = progress
        self._reader = reader
        self._sink = sink
        self._clock = clock
        self._crashes: dict[str, int] = {}
        self._careful: set[str] = set()

    async def letters(
        self,
        run: Run,
        letters: Sequence[Letter],
        stop: asyncio.Event | None,
        on_entry: Callable[[str], None],
    ) -> str:
        """Turn each letter into one item, in index order (4.3); ``done`` or ``stopped``."""
        careful = run.batch_id in self._careful
        window = 1 if careful else self._settings.effective_read_ahead()
        queue = iter(letters)
        pending: deque[asyncio.Task[_Prepared]] = deque()

        def top_up() -> None:
            while len(pending) < window and (letter := next(queue, None)) is not None:
                pending.append(asyncio.create_task(self._prepare(run, letter, careful)))

        try:
            top_up()
            while pending:
                prepared = await _unless_stopped(pending.popleft(), stop)
                if prepared is None:
                    return "stopped"
                top_up()
                on_entry(await self._finish(run, prepared))
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._careful.discard(run.batch_id)
        return "done"

    async def _prepare(self, run: Run, letter: Letter, careful: bool) -> _Prepared:
        key = file_key(letter.file_name)
        path = run.folder / letter.file_name
        try:
            found, kind = await asyncio.to_thread(_inspect, path)
        except PermissionError:
            return _Prepared(letter, key, None, rejection=("unreadable_file", "permission denied"))
        recorded = run.recorded.get(key)
        if recorded is not None and recorded.sha256 == found.sha256:
            return _Prepared(letter, key, found, kind, recorded=recorded)
        rejection = self._limits_problem(letter, found)
        if rejection is not None:
            return _Prepared(letter, key, found, kind, rejection=rejection)
        known = await self._progress.known_letter(found.sha256)
        item_id = letter_item_id(run.batch_id, found.sha256)
        if known is not None and (known.published or known.item_id != item_id):
            return _Prepared(letter, key, found, kind, duplicate_of=known.item_id)
        try:
            text = await self._reader.read(path)
        except ReaderCrashed:
            self._careful.add(run.batch_id)
            if careful:
                self._crashes[found.sha256] = self._crashes.get(found.sha256, 0) + 1
            raise
        if isinstance(text, LetterRejected):
            return _Prepared(letter, key, found, kind, rejection=(text.reason_code, text.reason))
        for page in text.pages:
            metrics.ocr_pages.labels(
                method="text_layer" if page.confidence is None else "ocr"
            ).inc()
            if page.confidence is not None:
                metrics.ocr_confidence.observe(page.confidence)
        return _Prepared(letter, key, found, kind, text=text)

    def _limits_problem(self, letter: Letter, found: Fingerprint) -> tuple[str, str] | None:
        settings = self._settings
        if found.size > settings.max_file_bytes:
            return "file_too_large", f"file over {settings.max_file_mb} MB"
        pages = letter.row.page_count
        if pages is not None and pages > settings.max_pages:
            return "too_many_pages", f"the index lists {pages} pages (limit {settings.max_pages})"
        if self._crashes.get(found.sha256, 0) >= settings.reader_max_crashes:
            return "reader_crashed", "a reader process died on this file, read alone, each time"
        return None

    async def _finish(self, run: Run, prepared: _Prepared) -> str:
        found = prepared.print
        if prepared.recorded is not None:
            return await self._complete(run, prepared, prepared.recorded)
        if prepared.rejection is not None or found is None:
            code, reason = prepared.rejection or ("unreadable_file", "file cannot be read")
            await self._quarantine(
                run, prepared.key, prepared.letter.file_name, found, code, reason
            )
            return "quarantined"
        if prepared.duplicate_of is not None:
            return await self._duplicate(run, prepared, found, prepared.duplicate_of)
        item = self._item(run, prepared, found)
        owner = await self._progress.reserve(
            found.sha256, item.item_id, run.batch_id, self._clock()
        )
        if owner is not None and (owner.published or owner.item_id != item.item_id):
            return await self._duplicate(run, prepared, found, owner.item_id)
        await self._sink.publish_item(item)  # returns once Kafka acknowledged it
        outcome = EntryOutcome("published", found.sha256, item_id=item.item_id)
        await self._record(run, prepared.key, outcome)
        await self._archive(run, prepared, found.sha256)  # a copy across file systems: a thread
        log.info(
            "letter.published",
            item_id=item.item_id,
            sha256=found.sha256,
            batch_id=run.batch_id,
            pages=len(prepared.text.pages) if prepared.text else 0,
            ocr_confidence=item.ocr_confidence,
            needs_manual_reading=item.needs_manual_reading,
            tsa_box=item.tsa_box,
        )
        return "published"

    def _item(self, run: Run, prepared: _Prepared, found: Fingerprint) -> IntakeItem:
        letter, row = prepared.letter, prepared.letter.row
        pages = prepared.text.pages if prepared.text else ()
        text = join_pages([page.text for page in pages])
        facts = extract_letter_facts(text)
        mismatch = row.page_count is not None and row.page_count != len(pages)
        item_id = letter_item_id(run.batch_id, found.sha256)
        if mismatch:
            log.warning("letter.page_count_mismatch", item_id=item_id, sha256=found.sha256)
        log.info("letter.facts", item_id=item_id, reasons=list(facts.reasons()))
        attachment = AttachmentRef(
            sha256=found.sha256,
            filename=letter.file_name,
            content_type=CONTENT_TYPES[self._ext(prepared)],
            size=found.size,
        )
        return build_letter_item(
            facts,
            item_id=item_id,
            source_ref=source_ref(run.batch_id, letter.file_name, row.envelope_id),
            scanned_at=row.scanned_at,
            tsa_box_from_index=row.tsa_box,
            text=text,
            page_confidences=prepared.text.page_confidences if prepared.text else (),
            confidence_floor=self._settings.confidence_floor,
            attachments=(attachment,),
            manual_reading=mismatch,
        )

    @staticmethod
    def _ext(prepared: _Prepared) -> str:
        return prepared.kind or "pdf"

    async def _duplicate(
        self, run: Run, prepared: _Prepared, found: Fingerprint, item_id: str
    ) -> str:
        await self._record(
            run, prepared.key, EntryOutcome("duplicate", found.sha256, None, item_id)
        )
        await self._archive(run, prepared, found.sha256)
        log.info("letter.duplicate", item_id=item_id, sha256=found.sha256, batch_id=run.batch_id)
        return "duplicate"

    async def _archive(self, run: Run, prepared: _Prepared, sha256: str) -> None:
        path = run.folder / prepared.letter.file_name
        await asyncio.to_thread(self._inbox.archive, path, sha256, self._ext(prepared))

    async def _complete(self, run: Run, prepared: _Prepared, recorded: EntryOutcome) -> str:
        """Finish the move an earlier pass recorded but did not do (crash in between)."""
        if recorded.outcome == "quarantined":
            path = run.folder / prepared.letter.file_name
            target = self._inbox.quarantine_path(run.batch_id, path.name, recorded.sha256)
            details = {
                "batch": run.batch_id, "file": path.name, "sha256": recorded.sha256,
                "reason_code": recorded.reason_code,
            }  # fmt: skip
            await asyncio.to_thread(self._inbox.quarantine, path, target, details)
        elif recorded.sha256 is not None:
            await self._archive(run, prepared, recorded.sha256)
        return recorded.outcome

    async def reject(self, run: Run, rejection: Rejection) -> None:
        """Dead-letter a rejection of the batch plan; its file, if any, goes to quarantine."""
        if rejection.file_name is not None:
            found = await asyncio.to_thread(_regular_fingerprint, run.folder / rejection.file_name)
            await self._quarantine(
                run, rejection.key, rejection.file_name, found,
                rejection.reason_code, rejection.reason,
            )  # fmt: skip
            return
        if rejection.key in run.recorded:
            return
        await self._sink.dead_letter(
            reason_code=rejection.reason_code,
            reason=rejection.reason,
            original_ref=f"scan://{run.batch_id}/{rejection.key}",
            payload=rejection.payload.encode("utf-8") if rejection.payload else None,
        )
        await self._record(
            run, rejection.key, EntryOutcome("dead_lettered", None, rejection.reason_code)
        )

    async def _quarantine(
        self, run: Run, key: str, name: str, found: Fingerprint | None, code: str, reason: str
    ) -> None:
        sha = found.sha256 if found else None
        path = run.folder / name
        target = self._inbox.quarantine_path(run.batch_id, name, sha)
        recorded = run.recorded.get(key)
        if not (recorded and recorded.outcome == "quarantined" and recorded.sha256 == sha):
            kept = target.relative_to(self._inbox.quarantine_root)
            named = reason if repr(name) in reason else f"file {name!r}: {reason}"
            await self._sink.dead_letter(
                reason_code=code,
                reason=f"{named}; kept in quarantine as {kept}",
                original_ref=f"scan://{run.batch_id}/{sha or _name_tag(name)}",
            )
            await self._record(run, key, EntryOutcome("quarantined", sha, code))
        details = {"batch": run.batch_id, "file": name, "sha256": sha, "reason_code": code}
        await asyncio.to_thread(self._inbox.quarantine, path, target, {**details, "reason": reason})
        log.warning("letter.quarantined", batch_id=run.batch_id, sha256=sha, reason_code=code)

    async def _record(self, run: Run, key: str, outcome: EntryOutcome) -> None:
        await self._progress.record(run.batch_id, run.index_sha256, key, outcome, self._clock())
        run.recorded[key] = outcome

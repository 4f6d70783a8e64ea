"""Letters are read off the event loop: a process pool, one tesseract per core (procedure 4.3).

``PoolReader`` keeps one spawned ``ProcessPoolExecutor`` for the life of the
service (spawning per batch costs seconds of imports). Each worker sets
``OMP_THREAD_LIMIT=1`` so that tesseract does not oversubscribe the cores. A
worker that dies (out of memory on a hostile file) breaks the pool: the pool
is rebuilt and the caller hears ``ReaderCrashed`` for the letters in flight.
Workers exit with a killed service (``services.common.workers``).
A letter still being read after ``timeout_s`` gets its workers killed the
same way: a few kilobytes of PDF can keep PDFium busy for hours (forms
drawing forms drawing forms), and no file may stall the inbox.
``InlineReader`` reads in a thread of the calling process, for tests.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytesseract

from services.common.workers import leave_with_parent
from services.intake_scan.adapters.text import LetterRejected, LetterText, ScanLimits, read_letter
from services.intake_scan.errors import OcrUnavailable, ReaderCrashed

__all__ = [
    "InlineReader",
    "PoolReader",
    "ReadOptions",
    "check_tesseract",
    "read_or_reject",
]


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How letters are read: OCR resolution and language, and the decompression-bomb limits."""

    dpi: int = 300
    lang: str = "fra"
    limits: ScanLimits = field(default_factory=ScanLimits)


def read_or_reject(path: Path, options: ReadOptions) -> LetterText | LetterRejected:
    """Read a letter, the rejection returned rather than raised (pickles across processes)."""
    try:
        return read_letter(path, dpi=options.dpi, lang=options.lang, limits=options.limits)
    except LetterRejected as rejected:
        return rejected


def _start_worker(parent: int) -> None:
    # tesseract's OpenMP threads fight each other when every core already runs a worker
    os.environ["OMP_THREAD_LIMIT"] = "1"
    leave_with_parent(parent)  # a SIGKILLed intake-scan cannot stop its pool


def check_tesseract(lang: str) -> None:
    """Fail fast when tesseract or its language data is missing (4.3 needs French OCR)."""
    try:
        languages = pytesseract.get_languages(config="")
    except (OSError, RuntimeError) as exc:  # TesseractNotFoundError is an OSError
        raise OcrUnavailable(f"tesseract cannot run ({type(exc).__name__})") from exc
    if lang not in languages:
        raise OcrUnavailable(f"tesseract has no {lang!r} language data (tesseract-ocr-{lang})")


class PoolReader:
    """Reads letters in a spawned process pool, ``workers`` processes (default: one per core)."""

    def __init__(
        self, options: ReadOptions, *, workers: int | None = None, timeout_s: float | None = None
    ) -> None:
        self._options = options
        self._workers = max(1, workers or os.cpu_count() or 1)
        self._timeout_s = timeout_s
        self._slots = asyncio.Semaphore(self._workers)  # none waits in the pool: times are reads
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(os.getpid(),),
        )

    @property
    def workers(self) -> int:
        """How many letters can be read at once."""
        return self._workers

    async def read(self, path: Path) -> LetterText | LetterRejected:
        """Read in a worker process; ``ReaderCrashed`` if the worker died meanwhile.

        A letter read for longer than ``timeout_s`` has the workers killed
        (4.3: a hostile file must not stall the inbox) and is a crash too: it
        is read again alone, then quarantined (``reader_max_crashes``). At
        most ``workers`` letters are handed to the pool at once, so the time
        counted is the reading, never a wait in the pool's queue.
        """
        async with self._slots:
            pool = self._pool
            loop = asyncio.get_running_loop()
            work = loop.run_in_executor(pool, partial(read_or_reject, path, self._options))
            try:
                return await asyncio.wait_for(work, self._timeout_s)
            except TimeoutError as exc:
                self._kill(pool)
                reason = f"a reader took over {self._timeout_s:g} s on the letter"
                raise ReaderCrashed(reason) from exc
            except BrokenProcessPool as exc:
                self._replace(pool)
                raise ReaderCrashed("a reader process died while reading the letter") from exc

    def _replace(self, pool: ProcessPoolExecutor) -> None:
        if pool is self._pool:
            pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()

    def _kill(self, pool: ProcessPoolExecutor) -> None:
        # a running task cannot be cancelled (Python 3.14 adds kill_workers()): its process is
        # killed, which breaks the pool; the other letters in flight hear ReaderCrashed
        for process in list((pool._processes or {}).values()):
            process.kill()
        self._replace(pool)

    def close(self) -> None:
        """Stop the workers (letters being read are finished first, queued ones dropped)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


class InlineReader:
    """Reads letters in a thread of this process (tests, small by-hand runs)."""

    def __init__(self, options: ReadOptions = ReadOptions()) -> None:
        self._options = options
        self.workers = 1

    async def read(self, path: Path) -> LetterText | LetterRejected:
        """Read in a thread, so the event loop keeps running."""
        return await asyncio.to_thread(read_or_reject, path, self._options)

    def close(self) -> None:
        """Nothing to release."""

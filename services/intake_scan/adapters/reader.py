"""Letters are read off the event loop: a process pool, one tesseract per core (procedure 4.3).

``PoolReader`` keeps one spawned ``ProcessPoolExecutor`` for the life of the
service (spawning per batch costs seconds of imports). Each worker sets
``OMP_THREAD_LIMIT=1`` so that tesseract does not oversubscribe the cores. A
worker that dies (out of memory on a hostile file) breaks the pool: the pool
is rebuilt and the caller hears ``ReaderCrashed`` for the letters in flight.
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


def _one_tesseract_thread() -> None:
    # tesseract's OpenMP threads fight each other when every core already runs a worker
    os.environ["OMP_THREAD_LIMIT"] = "1"


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

    def __init__(self, options: ReadOptions, *, workers: int | None = None) -> None:
        self._options = options
        self._workers = max(1, workers or os.cpu_count() or 1)
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_one_tesseract_thread,
        )

    @property
    def workers(self) -> int:
        """How many letters can be read at once."""
        return self._workers

    async def read(self, path: Path) -> LetterText | LetterRejected:
        """Read in a worker process; ``ReaderCrashed`` if the worker died meanwhile."""
        pool = self._pool
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(pool, partial(read_or_reject, path, self._options))
        except BrokenProcessPool as exc:
            if pool is self._pool:
                pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()
            raise ReaderCrashed("a reader process died while reading the letter") from exc

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

"""A scanned letter's text: the PDF text layer, or French OCR by tesseract (procedure 4.3).

PDFs are opened by PDFium (pypdfium2): a PDF with a text layer is read
without OCR (pdfplumber reads the pages whose layout PDFium cannot vouch for,
see ``pdf_pages``); image-only pages are rendered at 300 dpi. TIFF
(multi-page), PNG and JPEG files are read at their own resolution. Pages go
to tesseract in greyscale with ``fra``, one ``image_to_data`` pass each: the
text and the page's confidence (the mean of its words') come from the same
pass; a page read with low confidence is checked for orientation (OSD) and
read again turned upright if that helps (see ``ocr``).

Bad input raises ``LetterRejected`` with a reason code before any heavy work:
unknown file type, corrupt or password-protected PDF, corrupt image, too many
pages or too many pixels (decompression bombs). Tesseract itself should run
with ``OMP_THREAD_LIMIT=1``, one process per core: ``ocr_many`` does that.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

from services.intake_scan.adapters.letter_files import (
    FileKind,
    LetterRejected,
    LetterText,
    PageText,
    ReasonCode,
    ScanLimits,
    sniff_kind,
)
from services.intake_scan.adapters.ocr import ocr_decoded, ocr_image_file
from services.intake_scan.adapters.pdf_pages import PdfLetter

__all__ = [
    "FileKind",
    "LetterRejected",
    "LetterText",
    "PageText",
    "ReasonCode",
    "ScanLimits",
    "ocr_many",
    "ocr_pages",
    "read_letter",
    "read_text_layer",
    "sniff_kind",
]

_TIMEOUT_S = 120.0  # per tesseract run; a page over it comes back empty (manual reading)
_LIMITS = ScanLimits()


def read_text_layer(pdf_path: Path, *, limits: ScanLimits = _LIMITS) -> list[str] | None:
    """Read the PDF's own text layer, one string per page; ``None`` for an image-only PDF (4.3).

    A page with fewer than 20 non-blank characters counts as image-only and
    comes back as ``""``; when no page has text the whole PDF needs OCR.
    """
    if sniff_kind(pdf_path) != "pdf":
        raise LetterRejected("unsupported_type", "not a PDF")
    with PdfLetter(pdf_path, limits) as pdf:
        return pdf.text_layer()


def _ocr_pdf(
    pdf: PdfLetter, *, dpi: int, lang: str, timeout_s: float, only: set[int] | None
) -> list[PageText]:
    renders = ((image, dpi) for image in pdf.renders(dpi, only))
    return ocr_decoded(renders, lang=lang, timeout_s=timeout_s)


def ocr_pages(
    path: Path,
    *,
    dpi: int = 300,
    lang: str = "fra",
    limits: ScanLimits = _LIMITS,
    timeout_s: float = _TIMEOUT_S,
    only: Sequence[int] | None = None,
) -> list[PageText]:
    """OCR every page of a scanned letter (PDF, TIFF, PNG, JPEG) with tesseract (4.3).

    PDF pages are rendered at ``dpi``; images are read at their own resolution.
    Each page is greyscale; a page under 70 confidence is checked for
    orientation and read again upright when that reads better. A page that
    times out comes back empty with confidence 0 (manual reading). ``only``
    restricts a PDF to some page indexes (pages without a text layer).
    """
    kind = sniff_kind(path)
    if kind != "pdf":
        return ocr_image_file(path, kind, lang=lang, limits=limits, timeout_s=timeout_s)
    with PdfLetter(path, limits) as pdf:
        wanted = None if only is None else set(only)
        return _ocr_pdf(pdf, dpi=dpi, lang=lang, timeout_s=timeout_s, only=wanted)


def read_letter(
    path: Path, *, dpi: int = 300, lang: str = "fra", limits: ScanLimits = _LIMITS
) -> LetterText:
    """Read a letter's text: the PDF text layer when there is one, OCR otherwise (4.3).

    In a PDF whose text layer covers only some pages, only the other pages are
    read by OCR.
    """
    kind = sniff_kind(path)
    if kind != "pdf":
        pages = ocr_image_file(path, kind, lang=lang, limits=limits, timeout_s=_TIMEOUT_S)
        return LetterText(tuple(pages))
    with PdfLetter(path, limits) as pdf:
        layer = pdf.text_layer()
        if layer is None:
            pages = _ocr_pdf(pdf, dpi=dpi, lang=lang, timeout_s=_TIMEOUT_S, only=None)
            return LetterText(tuple(pages))
        missing = {number for number, text in enumerate(layer) if not text}
        ocr = iter(
            _ocr_pdf(pdf, dpi=dpi, lang=lang, timeout_s=_TIMEOUT_S, only=missing) if missing else []
        )
        return LetterText(tuple(PageText(text) if text else next(ocr) for text in layer))


def _one_thread_per_worker() -> None:
    # tesseract's OpenMP threads fight each other when every core already runs a worker
    os.environ["OMP_THREAD_LIMIT"] = "1"


def _read_or_reject(
    path: Path, *, dpi: int, lang: str, limits: ScanLimits
) -> LetterText | LetterRejected:
    try:
        return read_letter(path, dpi=dpi, lang=lang, limits=limits)
    except LetterRejected as rejected:
        return rejected


def ocr_many(
    paths: Sequence[Path],
    *,
    workers: int | None = None,
    dpi: int = 300,
    lang: str = "fra",
    limits: ScanLimits = _LIMITS,
) -> list[LetterText | LetterRejected]:
    """Read many letters in a process pool, one tesseract thread per worker (4.3).

    ``workers`` defaults to the number of cores. Results come back in the
    order of ``paths``; a rejected file yields its ``LetterRejected`` in its
    place so the rest of the batch proceeds. Workers are spawned, not forked,
    so that a caller's threads (Kafka client, event loop) are never copied.
    """
    if not paths:
        return []
    count = max(1, min(workers or os.cpu_count() or 1, len(paths)))
    read = partial(_read_or_reject, dpi=dpi, lang=lang, limits=limits)
    with ProcessPoolExecutor(
        max_workers=count,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_one_thread_per_worker,
    ) as pool:
        return list(pool.map(read, paths))

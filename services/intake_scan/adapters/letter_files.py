"""What a scanned letter file is: its kind, its limits, its rejection, and its read pages.

The shared vocabulary of ``text`` (the public reading API), ``pdf_pages``
(PDF text layers and rendering) and ``ocr`` (tesseract on image pages).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "FileKind",
    "LetterRejected",
    "LetterText",
    "PageText",
    "ReasonCode",
    "ScanLimits",
    "check_page_count",
    "sniff_kind",
]

FileKind = Literal["pdf", "tiff", "png", "jpeg"]
ReasonCode = Literal[
    "unsupported_type",
    "corrupt_pdf",
    "encrypted_pdf",
    "corrupt_image",
    "too_many_pages",
    "too_many_pixels",
]


class LetterRejected(Exception):
    """A scanned file that cannot be read as a letter; it goes to quarantine with the reason."""

    def __init__(self, reason_code: ReasonCode, reason: str) -> None:
        super().__init__(f"{reason_code}: {reason}")
        self.reason_code: ReasonCode = reason_code
        self.reason = reason

    def __reduce__(self) -> tuple[type[LetterRejected], tuple[ReasonCode, str]]:
        return (LetterRejected, (self.reason_code, self.reason))


@dataclass(frozen=True, slots=True)
class ScanLimits:
    """Guards against decompression bombs: pages per file and pixels per page (after rendering).

    A PDF page is held to ``max_pixels`` twice: rendered at the OCR resolution,
    and in the pixels its images declare (PDFium decodes them whole).

    An A4 page is 8.7 Mpx at 300 dpi and 35 Mpx at 600 dpi; 60 Mpx leaves room
    for A3 at 400 dpi and refuses a page that would need gigabytes of memory.
    """

    max_pages: int = 50
    max_pixels: int = 60_000_000


@dataclass(frozen=True, slots=True)
class PageText:
    """One page's text; ``confidence`` is tesseract's 0-100 mean, ``None`` for a PDF text layer."""

    text: str
    confidence: float | None = None
    rotated_deg: int = 0


@dataclass(frozen=True, slots=True)
class LetterText:
    """A letter's pages and whether any went through OCR."""

    pages: tuple[PageText, ...]

    @property
    def texts(self) -> list[str]:
        """Page texts in order."""
        return [page.text for page in self.pages]

    @property
    def page_confidences(self) -> tuple[float, ...]:
        """OCR confidences of the pages that went through OCR (empty for a text-layer PDF)."""
        return tuple(page.confidence for page in self.pages if page.confidence is not None)


_MAGIC: tuple[tuple[bytes, FileKind], ...] = (
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
)
_PDF_HEADER_WINDOW = 1024  # the PDF header may follow some junk bytes (ISO 32000 7.5.2)


def sniff_kind(path: Path) -> FileKind:
    """Tell a letter file's type from its first bytes, not its name; raise if unsupported."""
    with path.open("rb") as handle:
        head = handle.read(_PDF_HEADER_WINDOW)
    if not head:
        raise LetterRejected("unsupported_type", "empty file")
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if b"%PDF-" in head:
        return "pdf"
    raise LetterRejected(
        "unsupported_type", "not a PDF, TIFF, PNG or JPEG (by content, whatever its name)"
    )


def check_page_count(count: int, limits: ScanLimits) -> None:
    """Refuse a file with more pages than ``limits`` allow (a decompression bomb, not a letter)."""
    if count > limits.max_pages:
        raise LetterRejected("too_many_pages", f"more than {limits.max_pages} pages")

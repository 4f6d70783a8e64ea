"""A scanned letter's text: the PDF text layer, or French OCR by tesseract (procedure 4.3).

PDFs with a text layer are read by pdfplumber, no OCR. Image-only PDFs are
rasterised at 300 dpi; TIFF (multi-page), PNG and JPEG are read by Pillow.
Pages go to tesseract in greyscale with ``fra``; per-page confidence is the
mean of its words' confidences, and a page read with low confidence is
checked for orientation (OSD) and read again turned upright if that helps.

Bad input raises ``LetterRejected`` with a reason code before any heavy work:
unknown file type, corrupt or password-protected PDF, corrupt image, too many
pages or too many pixels (decompression bombs). Tesseract itself should run
with ``OMP_THREAD_LIMIT=1``, one process per core: ``ocr_many`` does that.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import pdfplumber
import pytesseract
from pdfminer.pdfdocument import PDFEncryptionError
from pdfminer.psexceptions import PSException
from pdfplumber.utils.exceptions import MalformedPDFException, PdfminerException
from PIL import Image, ImageOps, UnidentifiedImageError

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


# pdfminer raises many kinds of errors on malformed files, and pypdfium2 a RuntimeError
# (PdfiumError); these are the ones seen in practice. Only library calls sit in these try blocks.
_PDF_ERRORS = (PSException, MalformedPDFException, ValueError, KeyError, TypeError, IndexError,
               AttributeError, AssertionError, RuntimeError, EOFError)  # fmt: skip


def _pdf_rejection(exc: BaseException) -> LetterRejected:
    cause = exc.args[0] if isinstance(exc, PdfminerException) and exc.args else exc
    if isinstance(cause, PDFEncryptionError) or "password" in str(cause).lower():
        return LetterRejected("encrypted_pdf", "PDF is encrypted with a password")
    return LetterRejected("corrupt_pdf", f"PDF cannot be parsed ({type(cause).__name__})")


def _check_page_count(count: int, limits: ScanLimits) -> None:
    if count > limits.max_pages:
        raise LetterRejected("too_many_pages", f"more than {limits.max_pages} pages")


def _open_pdf(path: Path) -> Any:
    try:
        return pdfplumber.open(path)
    except (PdfminerException, *_PDF_ERRORS) as exc:
        raise _pdf_rejection(exc) from exc


_MIN_LAYER_CHARS = 20  # below this a page is taken as image-only (a scanner's page stamp…)


def read_text_layer(pdf_path: Path, *, limits: ScanLimits = ScanLimits()) -> list[str] | None:
    """Read the PDF's own text layer, one string per page; ``None`` for an image-only PDF (4.3).

    A page with fewer than 20 non-blank characters counts as image-only and
    comes back as ``""``; when no page has text the whole PDF needs OCR.
    """
    if sniff_kind(pdf_path) != "pdf":
        raise LetterRejected("unsupported_type", "not a PDF")
    with _open_pdf(pdf_path) as pdf:
        try:
            pages = pdf.pages
            _check_page_count(len(pages), limits)
            texts = [page.extract_text() or "" for page in pages]
        except (PdfminerException, *_PDF_ERRORS) as exc:
            raise _pdf_rejection(exc) from exc
    kept = [text if len("".join(text.split())) >= _MIN_LAYER_CHARS else "" for text in texts]
    return kept if any(kept) else None


def _pdf_images(
    path: Path, dpi: int, limits: ScanLimits, only: set[int] | None
) -> Iterator[Image.Image]:
    with _open_pdf(path) as pdf:
        try:
            pages = pdf.pages
            _check_page_count(len(pages), limits)
            for page in pages:
                width = math.ceil(float(page.width) * dpi / 72)
                height = math.ceil(float(page.height) * dpi / 72)
                if width * height > limits.max_pixels:
                    raise LetterRejected(
                        "too_many_pixels", f"a page would be {width}x{height} pixels at {dpi} dpi"
                    )
            for number, page in enumerate(pages):
                if only is None or number in only:
                    yield page.to_image(resolution=dpi).original.convert("L")
        except (PdfminerException, *_PDF_ERRORS) as exc:
            raise _pdf_rejection(exc) from exc


_IMAGE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, UserWarning)


_PILLOW_FORMATS = ("TIFF", "PNG", "JPEG")  # no other Pillow decoder ever sees a letter file


def _image_rejection(exc: Exception) -> LetterRejected:
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return LetterRejected("too_many_pixels", "image over Pillow's decompression-bomb limit")
    return LetterRejected("corrupt_image", f"image cannot be read ({type(exc).__name__})")


def _count_frames(image: Image.Image, limits: ScanLimits) -> int:
    count = 0
    while True:
        width, height = image.size
        if width * height > limits.max_pixels:
            raise LetterRejected("too_many_pixels", f"a page is {width}x{height} pixels")
        count += 1
        _check_page_count(count, limits)
        try:
            image.seek(count)
        except EOFError:
            return count


def _open_image(path: Path, limits: ScanLimits) -> tuple[Image.Image, int]:
    """Open an image and count its frames, checking each frame's size from headers only.

    Warnings raised while reading headers (a damaged TIFF directory, Pillow's
    own decompression-bomb alarm) are errors here: such a file may be missing
    pages, and a person must look at it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        warnings.simplefilter("error", UserWarning)
        try:
            image = Image.open(path, formats=_PILLOW_FORMATS)
        except (FileNotFoundError, PermissionError, IsADirectoryError):
            raise  # the file system's problem, not the letter's
        except (Image.DecompressionBombError, *_IMAGE_ERRORS) as exc:
            raise _image_rejection(exc) from exc
        try:
            return image, _count_frames(image, limits)
        except LetterRejected:
            image.close()
            raise
        except _IMAGE_ERRORS as exc:
            image.close()
            raise _image_rejection(exc) from exc


def _decode_frame(image: Image.Image, frame: int) -> tuple[Image.Image, int]:
    """Decode one frame to greyscale, upright per its EXIF, with its resolution (300 if unset)."""
    image.seek(frame)
    dpi = float(image.info.get("dpi", (0, 0))[0])
    with warnings.catch_warnings():
        # a damaged EXIF block is Pillow's UserWarning; the pixels may still be fine
        warnings.simplefilter("ignore", UserWarning)
        page = ImageOps.exif_transpose(image)
    if "A" in page.getbands():
        page = Image.alpha_composite(Image.new("RGBA", page.size, "white"), page.convert("RGBA"))
    return page.convert("L"), round(dpi) if 70 <= dpi <= 1200 else 300


def _image_frames(path: Path, limits: ScanLimits) -> Iterator[tuple[Image.Image, int]]:
    image, count = _open_image(path, limits)
    with image:
        for frame in range(count):
            try:
                decoded = _decode_frame(image, frame)
            except _IMAGE_ERRORS as exc:
                raise LetterRejected(
                    "corrupt_image", f"page {frame + 1} cannot be decoded ({type(exc).__name__})"
                ) from exc
            yield decoded


def _assemble(data: dict[str, list[Any]]) -> tuple[str, float]:
    """Rebuild the page text from tesseract's word boxes; mean word confidence (0 if no word)."""
    lines: list[str] = []
    confidences: list[float] = []
    current: tuple[int, int, int] | None = None
    paragraph: tuple[int, int] | None = None
    for index, word in enumerate(data["text"]):
        word = str(word).strip()
        confidence = float(data["conf"][index])
        if not word or confidence < 0:
            continue
        confidences.append(confidence)
        key = (
            int(data["block_num"][index]),
            int(data["par_num"][index]),
            int(data["line_num"][index]),
        )
        if key != current:
            if paragraph is not None and key[:2] != paragraph:
                lines.append("")
            lines.append(word)
            current, paragraph = key, key[:2]
        else:
            lines[-1] += " " + word
    mean = round(sum(confidences) / len(confidences), 2) if confidences else 0.0
    return "\n".join(lines), mean


def _read_image(image: Image.Image, *, lang: str, dpi: int, timeout_s: float) -> tuple[str, float]:
    try:
        data = pytesseract.image_to_data(
            image, lang=lang, config=f"--dpi {dpi}", output_type=pytesseract.Output.DICT,
            timeout=timeout_s,
        )  # fmt: skip
    except RuntimeError as exc:  # pytesseract's timeout; TesseractError is a RuntimeError too
        if isinstance(exc, pytesseract.TesseractError):
            raise
        return "", 0.0  # unreadable in time: the item is flagged for manual reading
    return _assemble(data)


def _upright_angle(image: Image.Image, *, dpi: int, timeout_s: float) -> int:
    """Counter-clockwise degrees that turn the page upright, by tesseract's OSD; 0 if unsure."""
    try:
        osd = pytesseract.image_to_osd(
            image, config=f"--psm 0 --dpi {dpi}", output_type=pytesseract.Output.DICT,
            timeout=timeout_s,
        )  # fmt: skip
    except RuntimeError:  # too few characters to tell, or timeout
        return 0
    if float(osd.get("orientation_conf", 0.0)) < _OSD_MIN_CONFIDENCE:
        return 0
    return (360 - int(osd.get("rotate", 0))) % 360


_OSD_BELOW = 70.0  # page confidence under which orientation is checked
_OSD_MIN_CONFIDENCE = 2.0


def _ocr_page(image: Image.Image, *, lang: str, dpi: int, timeout_s: float) -> PageText:
    text, confidence = _read_image(image, lang=lang, dpi=dpi, timeout_s=timeout_s)
    if confidence >= _OSD_BELOW:
        return PageText(text, confidence)
    angle = _upright_angle(image, dpi=dpi, timeout_s=timeout_s)
    if angle == 0:
        return PageText(text, confidence)
    turned = image.rotate(angle, expand=True, fillcolor=255)
    turned_text, turned_confidence = _read_image(turned, lang=lang, dpi=dpi, timeout_s=timeout_s)
    if turned_confidence > confidence:
        return PageText(turned_text, turned_confidence, rotated_deg=angle)
    return PageText(text, confidence)


def ocr_pages(
    path: Path,
    *,
    dpi: int = 300,
    lang: str = "fra",
    limits: ScanLimits = ScanLimits(),
    timeout_s: float = 120.0,
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
    if kind == "pdf":
        wanted = None if only is None else set(only)
        return [
            _ocr_page(image, lang=lang, dpi=dpi, timeout_s=timeout_s)
            for image in _pdf_images(path, dpi, limits, wanted)
        ]
    return [
        _ocr_page(image, lang=lang, dpi=image_dpi, timeout_s=timeout_s)
        for image, image_dpi in _image_frames(path, limits)
    ]


def read_letter(
    path: Path, *, dpi: int = 300, lang: str = "fra", limits: ScanLimits = ScanLimits()
) -> LetterText:
    """Read a letter's text: the PDF text layer when there is one, OCR otherwise (4.3).

    In a PDF whose text layer covers only some pages, only the other pages are
    read by OCR.
    """
    if sniff_kind(path) != "pdf":
        return LetterText(tuple(ocr_pages(path, dpi=dpi, lang=lang, limits=limits)))
    layer = read_text_layer(path, limits=limits)
    if layer is None:
        return LetterText(tuple(ocr_pages(path, dpi=dpi, lang=lang, limits=limits)))
    missing = [number for number, text in enumerate(layer) if not text]
    ocr = iter(ocr_pages(path, dpi=dpi, lang=lang, limits=limits, only=missing) if missing else [])
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
    limits: ScanLimits = ScanLimits(),
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

"""A letter's PDF: its own text layer, and its pages rendered for OCR (procedure 4.3).

PDFium (pypdfium2) opens the file, counts and sizes its pages, extracts each
page's text and renders pages for OCR: about 1 ms a page where pdfplumber's
layout analysis takes 25. pdfplumber stays the reference for what a page's
text is: PDFium's text is kept only where it is bound to be pdfplumber's
``extract_text()`` once tidied (whitespace runs made one space, blank lines
dropped, ligatures expanded); a page PDFium cannot vouch for is read by
pdfplumber, as before. PDFium vouches for a page when:

- every character it reports is in its text, in order (none dropped or
  inserted), none a control, replacement or private-use character, nor its
  U+FFFE (a line-end hyphen it joined to the next line), each one's Unicode
  value from its font (where there is none pdfminer writes "(cid:N)"); the
  page is not rotated;
- its lines run left to right, horizontally give or take a scan's 2° skew,
  top to bottom, each line's baselines more than pdfplumber's 3-point
  tolerance under the line before (pdfplumber orders lines by position,
  whatever order they were drawn in: columns side by side, or text drawn
  bottom first, are left to pdfplumber), and a CR LF in its text is one it
  made up at a line change;
- every space it made up (no space character in the PDF) sits in a gap wider
  than pdfplumber's 3-point word gap, where pdfplumber splits words too.

What is not checked, as it needs every character's position (milliseconds a
page): a character raised or lowered within a line (pdfplumber may put a
superscript more than 3 points up on a line of its own), and letters spaced
more than 3 points apart without space characters (pdfplumber reads
"R É C L A M A T I O N", PDFium "RÉCLAMATION").

PDFium is not thread-safe: every call to it holds one process-wide lock, so
letters read in threads (``InlineReader``) take turns in PDFium.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pypdfium2.raw as pdfium_c  # type: ignore[import-untyped]
from PIL import Image

from services.intake_scan.adapters.letter_files import LetterRejected, ScanLimits, check_page_count

__all__ = ["PdfLetter", "pdf_rejection"]

_PDFIUM = threading.Lock()  # PDFium allows one call at a time in a process

# pdfminer (pdfplumber) raises many kinds of errors on malformed files, and pypdfium2 a
# RuntimeError (PdfiumError); these are the ones seen in practice.
_PDF_ERRORS: tuple[type[Exception], ...] = (
    ValueError, KeyError, TypeError, IndexError, AttributeError, AssertionError, RuntimeError,
    EOFError,
)  # fmt: skip


_PDFIUM_SAYS = re.compile(r"\((PDFium: [^)]+)\)")


def pdf_rejection(exc: BaseException) -> LetterRejected:
    """The rejection for an error PDFium or pdfminer raised on a file: encrypted or corrupt."""
    from pdfminer.pdfdocument import PDFEncryptionError
    from pdfplumber.utils.exceptions import PdfminerException

    cause = exc.args[0] if isinstance(exc, PdfminerException) and exc.args else exc
    if isinstance(cause, PDFEncryptionError) or "password" in str(cause).lower():
        return LetterRejected("encrypted_pdf", "PDF is encrypted with a password")
    found = _PDFIUM_SAYS.search(str(cause)) if isinstance(cause, pdfium.PdfiumError) else None
    detail = found.group(1) if found else type(cause).__name__
    return LetterRejected("corrupt_pdf", f"PDF cannot be parsed ({detail})")


def _pdfminer_errors() -> tuple[type[Exception], ...]:
    from pdfminer.psexceptions import PSException
    from pdfplumber.utils.exceptions import MalformedPDFException, PdfminerException

    return (PdfminerException, PSException, MalformedPDFException, *_PDF_ERRORS)


_MIN_LAYER_CHARS = 20  # below this a page is taken as image-only (a scanner's page stamp…)

# pdfplumber's ``extract_text`` expands these (``expand_ligatures``)
_LIGATURES = {"ﬀ": "ff", "ﬃ": "ffi", "ﬄ": "ffl", "ﬁ": "fi", "ﬂ": "fl", "ﬆ": "st", "ﬅ": "st"}
_LIGATURE = re.compile(f"[{''.join(_LIGATURES)}]")
# PDFium's text is not trusted with these: controls (bar tab and its CR LF), its U+FFFE
# line-end hyphen, U+FFFD/U+FFFF, private use (unmapped glyphs), surrogates, beyond the BMP
_UNTRUSTED = re.compile(
    "[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\ud800-\uf8ff\ufffd-\uffff\U00010000-\U0010ffff]"
    "|\r(?!\n)|(?<!\r)\n"
)
_TOLERANCE = 3.0  # pdfplumber's x_tolerance and y_tolerance, in points
_EPSILON = 0.1
_STEP = 0.5  # most a character's top may move from the one before it in a word
_WORD_STEP = 2.0  # … and from the word before it, when of the same size (a skewed OCR layer)
_TOP_SLACK = 0.2  # PDFium's character top is pdfminer's within this share of the font size
_SKEW = math.radians(2)  # a scan's OCR layer follows the page's slight skew


def _tidy(text: str) -> str:
    """PDFium's text as pdfplumber lays it out: words one space apart, no blank lines."""
    lines = (" ".join(line.split()) for line in text.split("\r\n"))
    tidied = "\n".join(line for line in lines if line)
    return _LIGATURE.sub(lambda match: _LIGATURES[match.group()], tidied)


class _Line:
    """The characters of one line of PDFium's text, checked as pdfplumber would group them."""

    __slots__ = ("high", "low", "size")

    def __init__(self) -> None:
        self.high = -math.inf  # highest and lowest character top (PDF space: y up)
        self.low = math.inf
        self.size = 0.0  # largest font size


def _level(textpage: Any, index: int) -> bool:
    """Whether the character is written horizontally, give or take a scan's skew."""
    angle = float(pdfium_c.FPDFText_GetCharAngle(textpage, index))
    return 0 <= angle <= _SKEW or 2 * math.pi - _SKEW <= angle


def _line_as_pdfplumber(textpage: Any, text: str, start: int, end: int) -> _Line | None:
    """Check ``text[start:end]``, one line: ``None`` unless pdfplumber makes it the same words.

    pdfplumber sorts a line's characters by their left edge and starts a word
    at a blank character, at a gap over 3 points, or where a character starts
    left of the one before; it puts characters whose tops are over 3 points
    apart on different lines. Here every character must have its Unicode
    value from its font and come left to right, its top within half a point
    of the one before it in a word, two points from one word to the next (a
    skewed line drifts, a superscript jumps); two characters with no blank
    between them must be under 3 points apart, and a space PDFium made up (no
    space character in the PDF) must sit in a gap over 3 points.
    """
    box = pdfium_c.FS_RECTF()
    loose_box, generated = pdfium_c.FPDFText_GetLooseCharBox, pdfium_c.FPDFText_IsGenerated
    unmapped = pdfium_c.FPDFText_HasUnicodeMapError
    line = _Line()
    last_left = -math.inf  # of the last character, blank or not
    before: tuple[float, float, float] | None = None  # last non-blank character's right, top, size
    last = -1
    blank = made_up = False  # since that character
    for index in range(start, end):
        char = text[index]
        if char == " " and generated(textpage, index):
            made_up = True
            continue
        if unmapped(textpage, index) or not loose_box(textpage, index, box):
            return None  # a glyph without Unicode: pdfminer writes "(cid:N)", PDFium the code
        if box.left < last_left:
            return None
        last_left = box.left
        line.high, line.low = max(line.high, box.top), min(line.low, box.top)
        line.size = max(line.size, box.top - box.bottom)
        if char.isspace():
            blank = True
            continue
        if before is None:
            if not _level(textpage, index):
                return None
        else:
            right, top, size = before
            gap, step = box.left - right, abs(box.top - top)
            same_size = abs(size - (box.top - box.bottom)) < _EPSILON
            if step > (_WORD_STEP if blank and same_size else _STEP):
                return None
            if not blank and made_up and gap <= _TOLERANCE + _EPSILON:
                return None
            if not (blank or made_up) and gap > _TOLERANCE - _EPSILON:
                return None
        before, last = (box.right, box.top, box.top - box.bottom), index
        blank = made_up = False
    if last >= 0 and not _level(textpage, last):
        return None
    return line


def _laid_out_as_pdfplumber(textpage: Any, text: str) -> bool:
    """Whether PDFium's ``text`` of the page, tidied, is what pdfplumber's would be.

    Lines must come top to bottom, each one's characters more than 3 points
    (and a margin for font metrics) below the line before: then pdfplumber
    clusters the same lines, in the same order.
    """
    above: _Line | None = None
    start = 0
    for segment in text.split("\r\n"):
        end = start + len(segment)
        generated = pdfium_c.FPDFText_IsGenerated
        if end < len(text) and not (generated(textpage, end) and generated(textpage, end + 1)):
            return False  # a CR LF drawn in the PDF, not a line change PDFium saw
        line = _line_as_pdfplumber(textpage, text, start, end)
        start = end + 2
        if line is None:
            return False
        if line.size <= 0:
            continue  # nothing drawn
        if above is not None:
            margin = _TOLERANCE + _EPSILON + _TOP_SLACK * max(above.size, line.size)
            if above.low - line.high <= margin:
                return False
        above = line
    return True


def _pdfium_page_text(document: Any, index: int) -> str | None:
    """A page's text by PDFium, tidied; ``None`` when only pdfplumber can say what it is."""
    page = document[index]
    try:
        if page.get_rotation() != 0:
            return None
        textpage = page.get_textpage()
        try:
            count = textpage.count_chars()
            if count == 0:
                return ""
            text = textpage.get_text_range()
            if len(text) != count or _UNTRUSTED.search(text):
                return None
            if not _laid_out_as_pdfplumber(textpage, text):
                return None
            return _tidy(text)
        finally:
            textpage.close()
    finally:
        page.close()


class PdfLetter:
    """An open PDF letter: page count checked, text layer and page renders on demand.

    Opening raises ``LetterRejected`` for a corrupt or password-protected PDF
    and for too many pages. Use as a context manager.
    """

    def __init__(self, path: Path, limits: ScanLimits) -> None:
        self._path = path
        self._limits = limits
        with _PDFIUM:
            try:
                self._document = pdfium.PdfDocument(path)
            except pdfium.PdfiumError as exc:
                raise pdf_rejection(exc) from exc
            try:
                self.page_count = len(self._document)
                check_page_count(self.page_count, limits)
            except BaseException:
                self._document.close()
                raise

    def __enter__(self) -> PdfLetter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Release PDFium's document."""
        with _PDFIUM:
            self._document.close()

    def text_layer(self) -> list[str] | None:
        """The PDF's own text, one string per page; ``None`` when no page has any (4.3).

        A page with fewer than 20 non-blank characters counts as image-only
        and comes back as ``""``.
        """
        texts: list[str | None] = []
        with _PDFIUM:
            try:
                for index in range(self.page_count):
                    texts.append(_pdfium_page_text(self._document, index))
            except pdfium.PdfiumError as exc:
                raise pdf_rejection(exc) from exc
        doubtful = [index for index, text in enumerate(texts) if text is None]
        if doubtful:
            by_pdfplumber = self._pdfplumber_texts(doubtful)
            texts = [by_pdfplumber.get(index, text) for index, text in enumerate(texts)]
        kept = [
            text if text and len("".join(text.split())) >= _MIN_LAYER_CHARS else ""
            for text in texts
        ]
        return kept if any(kept) else None

    def _pdfplumber_texts(self, pages: list[int]) -> dict[int, str]:
        import pdfplumber

        errors = _pdfminer_errors()
        try:
            # our own handle: pdfplumber's close() walks the page tree again, and on a
            # corrupt one raises before closing the file it opened (a descriptor leaked)
            with self._path.open("rb") as handle, pdfplumber.open(handle) as pdf:
                every = pdf.pages
                check_page_count(len(every), self._limits)
                return {index: every[index].extract_text() or "" for index in pages}
        except errors as exc:
            raise pdf_rejection(exc) from exc

    def check_pixels(self, dpi: int, only: set[int] | None = None) -> None:
        """Refuse the PDF if a page is over the pixel limit, rendered at ``dpi`` or in its images.

        Every page's size is checked; the pages to render (all, or those in
        ``only``) are also refused when the images they draw declare more
        pixels in all than the limit: PDFium decodes a drawn image whole
        whatever the page's size, so a kilobyte PDF declaring a 30,000-pixel
        square image takes seconds a page (a decompression bomb).
        """
        with _PDFIUM:
            try:
                sizes = [self._document.get_page_size(i) for i in range(self.page_count)]
            except pdfium.PdfiumError as exc:
                raise pdf_rejection(exc) from exc
        for width_pt, height_pt in sizes:
            # rounded first: PDFium's sizes are single floats (595.2 comes back 595.2000122)
            width = math.ceil(round(width_pt * dpi / 72, 2))
            height = math.ceil(round(height_pt * dpi / 72, 2))
            if width * height > self._limits.max_pixels:
                raise LetterRejected(
                    "too_many_pixels", f"a page would be {width}x{height} pixels at {dpi} dpi"
                )
        with _PDFIUM:
            try:
                for index in range(self.page_count):
                    if only is None or index in only:
                        self._check_images(index)
            except pdfium.PdfiumError as exc:
                raise pdf_rejection(exc) from exc

    def _check_images(self, index: int) -> None:
        """Refuse page ``index`` if its images (forms' included) declare over the pixel limit."""
        page = self._document[index]
        try:
            declared = 0
            for image in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=8):
                width, height = image.get_px_size()
                declared += width * height
                if declared > self._limits.max_pixels:
                    raise LetterRejected(
                        "too_many_pixels",
                        f"images on page {index + 1} declare over {self._limits.max_pixels} pixels",
                    )
        finally:
            page.close()

    def _render(self, index: int, dpi: int) -> Image.Image:
        """Page ``index`` rendered at ``dpi`` in greyscale, as pdfplumber's ``to_image`` did."""
        with _PDFIUM:
            try:
                page = self._document[index]
                try:
                    bitmap = page.render(
                        scale=dpi / 72,
                        no_smoothtext=True,
                        no_smoothpath=True,
                        no_smoothimage=True,
                        prefer_bgrx=True,
                    )
                    try:
                        image: Image.Image = bitmap.to_pil()
                        return image.convert("RGB").convert("L")
                    finally:
                        bitmap.close()
                finally:
                    page.close()
            except pdfium.PdfiumError as exc:
                raise pdf_rejection(exc) from exc

    def renders(self, dpi: int, only: set[int] | None) -> Iterator[Image.Image]:
        """The pages (all, or those in ``only``) rendered one by one, pixel limits checked first."""
        self.check_pixels(dpi, only)
        for index in range(self.page_count):
            if only is None or index in only:
                yield self._render(index, dpi)

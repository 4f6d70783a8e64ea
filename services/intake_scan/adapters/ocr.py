"""French OCR of a letter's image pages by tesseract, through pytesseract (procedure 4.3).

Tesseract reads files. A one-page PNG, JPEG or TIFF that is already what the
page would become here (greyscale or bilevel, upright, no transparency, and
intact: every PNG chunk's CRC checks, the JPEG ends with its end marker, the
TIFF's strips are all in the file) is handed to tesseract as it is: Leptonica
decodes the same pixels Pillow would, and nothing is decoded or re-encoded in
Python. Any other page (colour, alpha, an EXIF turn, a multi-page TIFF, a
page turned upright) is decoded by Pillow, or rendered by PDFium for a PDF,
and written for tesseract as an uncompressed greyscale PGM (milliseconds,
where the PNG pytesseract writes from a Pillow image takes a tenth of a
second). Should
tesseract fail on a file Pillow opened, the page is decoded by Pillow after
all: the outcome (text, or ``corrupt_image``) is the same as without the
shortcut.

Each page is read once, by ``image_to_data`` (words with their confidences:
the text and the page's mean confidence come from the same pass); a page
under 70 confidence is checked for orientation (OSD) and read again turned
upright when that reads better.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
import warnings
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytesseract
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from services.intake_scan.adapters.letter_files import (
    FileKind,
    LetterRejected,
    PageText,
    ScanLimits,
    check_page_count,
)

__all__ = ["ocr_decoded", "ocr_image_file"]

_IMAGE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, UserWarning)
_PILLOW_FORMATS = ("TIFF", "PNG", "JPEG")  # no other Pillow decoder ever sees a letter file
_TESSERACT_MAX_SIDE = 32767  # leptonica refuses wider or taller images ("Image too large")


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
        if max(width, height) > _TESSERACT_MAX_SIDE:
            raise LetterRejected(
                "too_many_pixels",
                f"a page is {width}x{height} pixels, OCR reads {_TESSERACT_MAX_SIDE} a side",
            )
        count += 1
        check_page_count(count, limits)
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


def _frame_dpi(image: Image.Image) -> int:
    """The current frame's resolution, 300 when unset or implausible."""
    dpi = float(image.info.get("dpi", (0, 0))[0])
    return round(dpi) if 70 <= dpi <= 1200 else 300


def _decode_frame(image: Image.Image, frame: int) -> tuple[Image.Image, int]:
    """Decode one frame to greyscale, upright per its EXIF, with its resolution (300 if unset)."""
    image.seek(frame)
    dpi = _frame_dpi(image)
    with warnings.catch_warnings():
        # a damaged EXIF block is Pillow's UserWarning; the pixels may still be fine
        warnings.simplefilter("ignore", UserWarning)
        page = ImageOps.exif_transpose(image)
    if "A" in page.getbands():
        page = Image.alpha_composite(Image.new("RGBA", page.size, "white"), page.convert("RGBA"))
    return page.convert("L"), dpi


def _image_frames(path: Path, limits: ScanLimits) -> Generator[tuple[Image.Image, int]]:
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


# --- which files tesseract may read as they are -------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# chunks after which Leptonica's pixels or orientation may differ from Pillow's page
_PNG_UNSAFE = {b"tRNS", b"sBIT", b"eXIf", b"PLTE", b"acTL", b"fcTL", b"fdAT"}
_PNG_TEXT = {b"tEXt", b"zTXt", b"iTXt"}
_PNG_ORIENTING_TEXT = {b"Raw profile type exif", b"XML:com.adobe.xmp"}  # Pillow reads EXIF there


def _plain_png(data: bytes, mode: str) -> bool:
    """An intact, non-interlaced 8-bit greyscale or 1-bit PNG with no EXIF, XMP or transparency."""
    if not data.startswith(_PNG_SIGNATURE):
        return False
    position, first = len(_PNG_SIGNATURE), True
    while position + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, position)
        kind = data[position + 4 : position + 8]
        body_end = position + 8 + length
        if body_end + 4 > len(data):
            return False
        body = data[position + 8 : body_end]
        (crc,) = struct.unpack_from(">I", data, body_end)
        if zlib.crc32(kind + body) != crc:
            return False
        if first:
            if kind != b"IHDR" or length != 13:
                return False
            depth, colour, _, _, interlace = body[8:13]
            wanted_depth = {"L": 8, "1": 1}.get(mode)
            if colour != 0 or depth != wanted_depth or interlace != 0:
                return False
            first = False
        elif kind == b"IEND":
            return True
        elif kind in _PNG_UNSAFE or (
            kind in _PNG_TEXT and body.split(b"\0", 1)[0] in _PNG_ORIENTING_TEXT
        ):
            return False
        position = body_end + 4
    return False  # no IEND: truncated


def _upright(image: Image.Image) -> bool:
    """Whether the image has no EXIF (or XMP) orientation other than 1; ``False`` if unsure."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return bool(image.getexif().get(ExifTags.Base.Orientation, 1) == 1)
        except (*_IMAGE_ERRORS, Warning, struct.error, KeyError, IndexError, TypeError):
            return False


def _complete_jpeg(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-2, os.SEEK_END)
        return handle.read(2) == b"\xff\xd9"


_TIFF_CODECS = {1, 2, 3, 4, 5, 8, 32773, 32946}  # none, CCITT, G3, G4, LZW, deflate, PackBits


def _plain_tiff(image: Image.Image, size: int) -> bool:
    """A one-sample greyscale (min-is-black) or bilevel TIFF in strips, all inside the file."""
    tags: Any = getattr(image, "tag_v2", None)
    if tags is None:
        return False
    photometric = tags.get(262)
    if (image.mode, photometric) not in {("L", 1), ("1", 0), ("1", 1)}:
        return False
    if tags.get(259, 1) not in _TIFF_CODECS or tags.get(277, 1) != 1:
        return False
    if tags.get(284, 1) != 1 or tags.get(266, 1) != 1 or 322 in tags or 324 in tags:
        return False
    offsets, counts = tags.get(273), tags.get(279)
    if not offsets or not counts or len(offsets) != len(counts):
        return False
    return all(
        offset > 0 and offset + count <= size for offset, count in zip(offsets, counts, strict=True)
    )


def _tesseract_sees_our_page(path: Path, kind: FileKind, image: Image.Image) -> bool:
    """Whether tesseract reading ``path`` gets the very page Pillow would decode here."""
    if image.mode not in ("L", "1") or "transparency" in image.info:
        return False
    try:
        if kind == "png":
            return _plain_png(path.read_bytes(), image.mode)
        if kind == "jpeg":
            return _complete_jpeg(path) and _upright(image)
        return _plain_tiff(image, path.stat().st_size) and _upright(image)
    except OSError:
        return False


# --- tesseract -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Page:
    """A page for tesseract: a file it reads, its resolution, and the page decoded on demand."""

    file: str
    dpi: int
    decoded: Callable[[], Image.Image]


@contextlib.contextmanager
def _page_file(image: Image.Image) -> Iterator[str]:
    """The greyscale page as a temporary uncompressed PGM, removed afterwards."""
    handle, name = tempfile.mkstemp(prefix="aiguillage-page-", suffix=".pgm")
    try:
        with os.fdopen(handle, "wb") as out:
            image.save(out, format="PPM")
        yield name
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


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


def _read_file(file: str, *, lang: str, dpi: int, timeout_s: float) -> tuple[str, float]:
    try:
        data = pytesseract.image_to_data(
            file, lang=lang, config=f"--dpi {dpi}", output_type=pytesseract.Output.DICT,
            timeout=timeout_s,
        )  # fmt: skip
    except RuntimeError as exc:  # pytesseract's timeout; TesseractError is a RuntimeError too
        if isinstance(exc, pytesseract.TesseractError):
            raise
        return "", 0.0  # unreadable in time: the item is flagged for manual reading
    return _assemble(data)


_OSD_BELOW = 70.0  # page confidence under which orientation is checked
_OSD_MIN_CONFIDENCE = 2.0


def _upright_angle(file: str, *, dpi: int, timeout_s: float) -> int:
    """Counter-clockwise degrees that turn the page upright, by tesseract's OSD; 0 if unsure."""
    try:
        osd = pytesseract.image_to_osd(
            file, config=f"--psm 0 --dpi {dpi}", output_type=pytesseract.Output.DICT,
            timeout=timeout_s,
        )  # fmt: skip
    except RuntimeError:  # too few characters to tell, or timeout
        return 0
    if float(osd.get("orientation_conf", 0.0)) < _OSD_MIN_CONFIDENCE:
        return 0
    return (360 - int(osd.get("rotate", 0))) % 360


def _ocr_page(page: _Page, *, lang: str, timeout_s: float) -> PageText:
    text, confidence = _read_file(page.file, lang=lang, dpi=page.dpi, timeout_s=timeout_s)
    if confidence >= _OSD_BELOW:
        return PageText(text, confidence)
    angle = _upright_angle(page.file, dpi=page.dpi, timeout_s=timeout_s)
    if angle == 0:
        return PageText(text, confidence)
    turned = page.decoded().rotate(angle, expand=True, fillcolor=255)
    with _page_file(turned) as file:
        turned_text, turned_confidence = _read_file(
            file, lang=lang, dpi=page.dpi, timeout_s=timeout_s
        )
    if turned_confidence > confidence:
        return PageText(turned_text, turned_confidence, rotated_deg=angle)
    return PageText(text, confidence)


def _ocr_in_memory(image: Image.Image, dpi: int, *, lang: str, timeout_s: float) -> PageText:
    with _page_file(image) as file:
        return _ocr_page(_Page(file, dpi, lambda: image), lang=lang, timeout_s=timeout_s)


def ocr_decoded(
    pages: Iterable[tuple[Image.Image, int]], *, lang: str, timeout_s: float
) -> list[PageText]:
    """OCR greyscale pages (page, dpi), taken one at a time from ``pages``.

    A page tesseract refuses even decoded (its language data is checked at start)
    rejects the letter, with the reason: it used to stop the service, and each
    restart resumed the same batch and stopped again.
    """
    try:
        return [_ocr_in_memory(image, dpi, lang=lang, timeout_s=timeout_s) for image, dpi in pages]
    except pytesseract.TesseractError as exc:
        raise LetterRejected("corrupt_image", f"OCR cannot read a page ({exc.status})") from exc


def _first_page(path: Path, limits: ScanLimits) -> Image.Image:
    frames = _image_frames(path, limits)
    try:
        return next(frames)[0]
    finally:
        frames.close()


def ocr_image_file(
    path: Path, kind: FileKind, *, lang: str, limits: ScanLimits, timeout_s: float
) -> list[PageText]:
    """OCR every page of a TIFF, PNG or JPEG letter, read at its own resolution (4.3)."""
    image, count = _open_image(path, limits)
    with image:
        dpi = _frame_dpi(image)
        as_is = count == 1 and _tesseract_sees_our_page(path, kind, image)
    if as_is:
        page = _Page(str(path), dpi, lambda: _first_page(path, limits))
        with contextlib.suppress(pytesseract.TesseractError):  # Pillow decodes it below
            return [_ocr_page(page, lang=lang, timeout_s=timeout_s)]
    return ocr_decoded(_image_frames(path, limits), lang=lang, timeout_s=timeout_s)

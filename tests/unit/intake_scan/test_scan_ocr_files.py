"""Which file tesseract is given for each page, with a stand-in for tesseract (no OCR here).

A one-page greyscale or bilevel PNG, JPEG or TIFF, upright and intact, goes
to tesseract as it is; any other page is decoded by Pillow and handed over as
a temporary greyscale PGM, removed afterwards. Tesseract failing on a file
Pillow opened sends the page through Pillow, which rejects it if it is
corrupt. The stand-in records the files and reads them with Pillow.
"""

from __future__ import annotations

import io
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytesseract
import pytest
from PIL import Image, ImageDraw

from services.intake_scan.adapters import ocr
from services.intake_scan.adapters.letter_files import LetterRejected, ScanLimits
from services.intake_scan.adapters.text import ocr_pages, read_letter
from services.intake_scan.testing import render_letter_pdf

WORDS = ["Référence", "client", ":", "204", "518", "733"]


@dataclass
class FakeTesseract:
    """Stands in for ``image_to_data`` and ``image_to_osd``; remembers what it read."""

    confidence: float = 91.0
    turned_confidence: float = 93.0
    rotate: int = 0
    fail_on: set[str] = field(default_factory=set)
    refuse_all: bool = False
    calls: list[tuple[str, str, tuple[int, int], str]] = field(default_factory=list)

    def data(self, image: Any, **kwargs: Any) -> dict[str, list[Any]]:
        assert isinstance(image, str), "tesseract is always given a file"
        if self.refuse_all or image in self.fail_on:
            raise pytesseract.TesseractError(1, "Error during processing.")
        with Image.open(image) as page:
            self.calls.append((image, page.mode, page.size, kwargs["config"]))
        turned = len(self.calls) > 1 and self.rotate
        confidence = self.turned_confidence if turned else self.confidence
        count = len(WORDS)
        return {
            "text": list(WORDS),
            "conf": [confidence] * count,
            "block_num": [1] * count,
            "par_num": [1] * count,
            "line_num": [1] * count,
        }

    def osd(self, image: Any, **_: Any) -> dict[str, Any]:
        assert isinstance(image, str)
        return {"rotate": self.rotate, "orientation_conf": 9.0}


@pytest.fixture
def tesseract(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeTesseract:
    fake = FakeTesseract()
    monkeypatch.setattr(pytesseract, "image_to_data", fake.data)
    monkeypatch.setattr(pytesseract, "image_to_osd", fake.osd)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return fake


def _page(mode: str = "L", size: tuple[int, int] = (240, 320)) -> Image.Image:
    page = Image.new("L", size, 255)
    ImageDraw.Draw(page).rectangle((20, 20, 120, 40), fill=0)
    return page.convert(mode)


def _scratch_is_empty(tmp_path: Path) -> bool:
    return not any((tmp_path / "scratch").iterdir())


def test_scan_greyscale_png_goes_to_tesseract_as_it_is(
    tesseract: FakeTesseract, tmp_path: Path
) -> None:
    path = tmp_path / "scan.png"
    _page().save(path, dpi=(200, 200))
    (page,) = read_letter(path).pages
    assert page.text == "Référence client : 204 518 733"
    assert page.confidence == 91.0
    assert tesseract.calls == [(str(path), "L", (240, 320), "--dpi 200")]


@pytest.mark.parametrize(
    ("name", "save"),
    [
        pytest.param("bilevel.png", {"format": "PNG"}, id="png-1-bit"),
        pytest.param("g4.tif", {"format": "TIFF", "compression": "group4"}, id="tiff-g4"),
        pytest.param("lzw.tif", {"format": "TIFF", "compression": "tiff_lzw"}, id="tiff-lzw"),
        pytest.param("grey.jpg", {"format": "JPEG"}, id="jpeg-grey"),
    ],
)
def test_scan_plain_scans_go_as_they_are(
    tesseract: FakeTesseract, tmp_path: Path, name: str, save: dict[str, Any]
) -> None:
    path = tmp_path / name
    _page("1" if "bilevel" in name or "g4" in name else "L").save(path, **save)
    ocr_pages(path)
    assert [call[0] for call in tesseract.calls] == [str(path)]
    assert tesseract.calls[0][3] == "--dpi 300"  # no resolution in the file


def _pgm_call(tesseract: FakeTesseract, size: tuple[int, int]) -> None:
    (call,) = tesseract.calls
    assert call[0].endswith(".pgm")
    assert call[1:3] == ("L", size)


def test_scan_colour_png_is_decoded_to_a_temporary_pgm(
    tesseract: FakeTesseract, tmp_path: Path
) -> None:
    path = tmp_path / "colour.png"
    _page("RGB").save(path)
    ocr_pages(path)
    _pgm_call(tesseract, (240, 320))
    assert _scratch_is_empty(tmp_path)


def test_scan_exif_turned_jpeg_is_turned_by_pillow(
    tesseract: FakeTesseract, tmp_path: Path
) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # shot sideways: turn 90° clockwise to read
    path = tmp_path / "turned.jpg"
    _page().save(path, exif=exif)
    ocr_pages(path)
    _pgm_call(tesseract, (320, 240))


def test_scan_multipage_tiff_pages_are_decoded(tesseract: FakeTesseract, tmp_path: Path) -> None:
    path = tmp_path / "two.tif"
    _page().save(path, save_all=True, append_images=[_page()], dpi=(150, 150))
    assert len(ocr_pages(path)) == 2
    assert [call[0].endswith(".pgm") for call in tesseract.calls] == [True, True]
    assert [call[3] for call in tesseract.calls] == ["--dpi 150", "--dpi 150"]
    assert _scratch_is_empty(tmp_path)


def test_scan_image_pdf_page_goes_as_a_pgm_of_its_render(
    tesseract: FakeTesseract, tmp_path: Path
) -> None:
    path = render_letter_pdf("Référence client : 204 518 733", tmp_path / "scan.pdf")
    (page,) = read_letter(path).pages
    assert page.confidence == 91.0
    _pgm_call(tesseract, (2481, 3508))  # as pdfplumber rendered it: 595.2 pt is 595.20001 in PDFium
    assert tesseract.calls[0][3] == "--dpi 300"
    assert _scratch_is_empty(tmp_path)


def test_scan_low_confidence_page_is_turned_and_read_again(
    tesseract: FakeTesseract, tmp_path: Path
) -> None:
    tesseract.confidence, tesseract.rotate = 40.0, 90
    path = tmp_path / "sideways.png"
    _page().save(path)
    (page,) = ocr_pages(path)
    assert (page.rotated_deg, page.confidence) == (270, 93.0)
    first, turned = tesseract.calls
    assert first[0] == str(path)
    assert turned[0].endswith(".pgm")
    assert turned[1:3] == ("L", (320, 240))
    assert _scratch_is_empty(tmp_path)


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    found, position = [], 8
    while position < len(data):
        (length,) = struct.unpack_from(">I", data, position)
        found.append(
            (data[position + 4 : position + 8], data[position + 8 : position + 8 + length])
        )
        position += 12 + length
    return found


def _png(chunks: list[tuple[bytes, bytes]]) -> bytes:
    out = [b"\x89PNG\r\n\x1a\n"]
    for kind, body in chunks:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        out.append(struct.pack(">I", len(body)) + kind + body + crc)
    return b"".join(out)


def _grey_png() -> bytes:
    buffer = io.BytesIO()
    _page().save(buffer, format="PNG")
    return buffer.getvalue()


def test_scan_tesseract_failing_sends_the_page_through_pillow(
    tesseract: FakeTesseract, tmp_path: Path
) -> None:
    path = tmp_path / "scan.png"
    path.write_bytes(_grey_png())
    tesseract.fail_on.add(str(path))
    (page,) = ocr_pages(path)
    assert page.confidence == 91.0
    _pgm_call(tesseract, (240, 320))


def test_scan_corrupt_png_tesseract_refuses_is_rejected_as_before(
    tesseract: FakeTesseract, tmp_path: Path
) -> None:
    chunks = _chunks(_grey_png())
    broken = [
        (kind, zlib.compress(b"\x07" * 64) if kind == b"IDAT" else body) for kind, body in chunks
    ]
    path = tmp_path / "broken.png"
    path.write_bytes(_png(broken))  # every CRC right, the pixels wrong
    tesseract.fail_on.add(str(path))
    with pytest.raises(LetterRejected) as rejected:
        ocr_pages(path)
    assert rejected.value.reason_code == "corrupt_image"
    assert tesseract.calls == []


def test_scan_a_page_tesseract_refuses_even_decoded_rejects_the_letter(
    tesseract: FakeTesseract, tmp_path: Path
) -> None:
    """The error used to escape: the service stopped, and stopped again at each restart."""
    path = tmp_path / "scan.png"
    path.write_bytes(_grey_png())
    tesseract.refuse_all = True
    with pytest.raises(LetterRejected) as rejected:
        ocr_pages(path)
    assert rejected.value.reason_code == "corrupt_image"


@pytest.mark.parametrize(
    ("change", "plain"),
    [
        pytest.param(lambda chunks: chunks, True, id="as-saved"),
        pytest.param(lambda chunks: chunks[:-1], False, id="no-IEND"),
        pytest.param(
            lambda chunks: [*chunks[:1], (b"tRNS", b"\x00\xff"), *chunks[1:]], False, id="tRNS"
        ),
        pytest.param(
            lambda chunks: [*chunks[:-1], (b"eXIf", b"MM\x00*"), chunks[-1]], False, id="eXIf"
        ),
        pytest.param(
            lambda chunks: [*chunks[:-1], (b"tEXt", b"Raw profile type exif\x00x"), chunks[-1]],
            False,
            id="exif-text-after-IDAT",
        ),
        pytest.param(
            lambda chunks: [*chunks[:-1], (b"tEXt", b"Software\x00scanner"), chunks[-1]],
            True,
            id="harmless-text",
        ),
    ],
)
def test_scan_png_plainness(change: Any, plain: bool) -> None:
    assert ocr._plain_png(_png(change(_chunks(_grey_png()))), "L") is plain


def test_scan_png_with_a_bad_crc_is_not_plain() -> None:
    data = bytearray(_grey_png())
    data[-20] ^= 0xFF  # inside the last IDAT
    assert not ocr._plain_png(bytes(data), "L")


@pytest.mark.parametrize("mode", ["RGB", "I;16", "P", "LA"])
def test_scan_other_pngs_are_not_plain(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "other.png"
    _page().convert(mode).save(path)
    with Image.open(path) as image:
        assert not ocr._tesseract_sees_our_page(path, "png", image)


def test_scan_interlaced_and_4_bit_pngs_are_not_plain() -> None:
    chunks = _chunks(_grey_png())
    header = bytearray(chunks[0][1])
    header[12] = 1  # Adam7
    assert not ocr._plain_png(_png([(b"IHDR", bytes(header)), *chunks[1:]]), "L")
    header[12], header[8] = 0, 4
    assert not ocr._plain_png(_png([(b"IHDR", bytes(header)), *chunks[1:]]), "L")


def test_scan_jpeg_without_its_end_marker_is_not_plain(tmp_path: Path) -> None:
    path = tmp_path / "cut.jpg"
    buffer = io.BytesIO()
    _page().save(buffer, format="JPEG")
    path.write_bytes(buffer.getvalue()[:-2] + b"\x00\x00")
    with Image.open(path) as image:
        assert not ocr._tesseract_sees_our_page(path, "jpeg", image)


def test_scan_tiff_strips_past_the_end_are_not_plain(tmp_path: Path) -> None:
    path = tmp_path / "scan.tif"
    _page().save(path, compression="tiff_lzw")
    size = path.stat().st_size
    with Image.open(path) as image:
        assert ocr._plain_tiff(image, size)
        assert not ocr._plain_tiff(image, size // 2)


def test_scan_colour_tiff_is_not_plain(tmp_path: Path) -> None:
    path = tmp_path / "colour.tif"
    _page("RGB").save(path)
    with Image.open(path) as image:
        assert not ocr._tesseract_sees_our_page(path, "tiff", image)


def test_scan_limits_still_hold_before_tesseract(tesseract: FakeTesseract, tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    _page().save(path)
    with pytest.raises(LetterRejected) as rejected:
        ocr_pages(path, limits=ScanLimits(max_pixels=240 * 320 - 1))
    assert rejected.value.reason_code == "too_many_pixels"
    assert tesseract.calls == []


def test_scan_page_file_is_a_greyscale_pgm_removed_afterwards(tmp_path: Path) -> None:
    page = _page()
    with ocr._page_file(page) as name:
        written = Path(name)
        assert written.read_bytes().startswith(b"P5")
        with Image.open(written) as image:
            assert image.tobytes() == page.tobytes()
    assert not written.exists()

"""Security limits of scanned letters: decompression bombs, zip slip and zip bombs (issue 9).

Each guard is shown refusing its hostile file with the named reason before
any heavy work, and letting an ordinary letter through. What the integration
and component tests already show with real OCR (a huge PNG, a huge PDF page,
a multi-page TIFF over the page limit, a zipped batch with unsafe entries)
is not repeated: these are the shapes they leave out, at unit speed.
"""

from __future__ import annotations

import gc
import io
import stat
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from test_fuzz_scan_files import (  # type: ignore[import-not-found]
    image_xobject,
    one_page_pdf,
    pdf_bytes,
    png_bytes,
    stream,
    tiff_bytes,
)

from services.intake_scan.adapters.letter_files import LetterRejected, LetterText, ScanLimits
from services.intake_scan.adapters.reader import PoolReader, ReadOptions
from services.intake_scan.adapters.text import read_letter, read_text_layer
from services.intake_scan.adapters.zips import ZipLimits, ZipRefused, expand_zip
from services.intake_scan.errors import ReaderCrashed
from services.intake_scan.testing import render_letter_pdf

LIMITS = ScanLimits(max_pages=5, max_pixels=10_000_000)
DRAW = b"q 595 0 0 842 0 0 cm /X0 Do Q"


def _write(tmp_path: Path, data: bytes, name: str = "letter.pdf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _rejected(path: Path, *, dpi: int = 300) -> LetterRejected:
    with pytest.raises(LetterRejected) as rejected:
        read_letter(path, dpi=dpi, limits=LIMITS)
    assert rejected.value.reason.strip()
    return rejected.value


@pytest.mark.parametrize(
    "pages",
    [
        pytest.param(b"<< /Type /Pages /Kids [3 0 R] /Count 60 >>", id="declared-count"),
        pytest.param(b"<< /Type /Pages /Kids [" + b"3 0 R " * 6 + b"] /Count 6 >>", id="kids"),
    ],
)
@pytest.mark.usefixtures("no_tesseract")
def test_limit_pdf_page_count(tmp_path: Path, pages: bytes) -> None:
    path = _write(tmp_path, pdf_bytes(one_page_pdf(pages=pages)))
    assert _rejected(path).reason_code == "too_many_pages"
    with pytest.raises(LetterRejected) as rejected:
        read_text_layer(path, limits=LIMITS)
    assert rejected.value.reason_code == "too_many_pages"


@pytest.mark.usefixtures("no_tesseract")
def test_limit_pdf_huge_media_box_is_refused_before_rendering(tmp_path: Path) -> None:
    path = _write(tmp_path, pdf_bytes(one_page_pdf(media_box=b"[0 0 14400 14400]", content=b"")))
    rejected = _rejected(path)
    assert rejected.reason_code == "too_many_pixels"
    assert "60000x60000" in rejected.reason


@pytest.mark.parametrize(
    ("width", "height", "bits"),
    [
        pytest.param(30_000, 30_000, 16, id="30000-square-16-bit"),  # 801 bytes, 10 s to render
        pytest.param(100_000, 100_000, 1, id="100000-square-1-bit"),
        pytest.param(3163, 3163, 8, id="just-over"),
    ],
)
@pytest.mark.usefixtures("no_tesseract")
def test_limit_pdf_image_declaring_huge_dimensions(
    tmp_path: Path, width: int, height: int, bits: int
) -> None:
    """A PDF page of normal size drawing an image bomb: PDFium would decode all of it."""
    xobject = image_xobject(width, height, zlib.compress(b""), bits=bits)
    path = _write(tmp_path, pdf_bytes(one_page_pdf(content=DRAW, xobject=xobject)))
    rejected = _rejected(path, dpi=72)
    assert rejected.reason_code == "too_many_pixels"
    assert "images on page 1" in rejected.reason


@pytest.mark.usefixtures("no_tesseract")
def test_limit_pdf_image_bomb_inside_a_form_or_drawn_many_times(tmp_path: Path) -> None:
    image = image_xobject(2000, 2000, zlib.compress(b"\x00" * 64))  # 4 Mpx, drawn 3 times
    form = stream(
        b"<< /Type /XObject /Subtype /Form /BBox [0 0 595 842] /Resources << /XObject << /I 7 0 R >> >> >>",
        b"q 100 0 0 100 0 0 cm /I Do Q " * 3,
    )  # fmt: skip
    objects = [*one_page_pdf(content=b"/X0 Do", xobject=form), image]
    rejected = _rejected(_write(tmp_path, pdf_bytes(objects)), dpi=72)
    assert rejected.reason_code == "too_many_pixels"


def test_limit_pdf_ordinary_scan_passes_the_image_guard(
    tmp_path: Path, no_tesseract: list[str]
) -> None:
    path = render_letter_pdf("Référence client : 204 518 733", tmp_path / "scan.pdf")  # 8.7 Mpx
    letter = read_letter(path, dpi=72, limits=LIMITS)
    assert len(letter.pages) == 1
    assert len(no_tesseract) == 1  # rendered and handed to (the stand-in for) tesseract


def test_limit_pdf_image_guard_spares_pages_with_a_text_layer(tmp_path: Path) -> None:
    """Only pages that are rendered are held to it: a text layer is read without decoding."""
    xobject = image_xobject(30_000, 30_000, zlib.compress(b""))
    content = b"BT /F1 12 Tf 72 720 Td (Reference client 123456789 et du texte) Tj ET " + DRAW
    path = _write(tmp_path, pdf_bytes(one_page_pdf(content=content, xobject=xobject)))
    assert read_text_layer(path, limits=LIMITS) == ["Reference client 123456789 et du texte"]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        pytest.param(png_bytes(100_000, 100_000, b""), "too_many_pixels", id="png-pillow-bomb"),
        pytest.param(png_bytes(4000, 4000, b""), "too_many_pixels", id="png-over-limit"),
        pytest.param(tiff_bytes(100_000, 100_000), "too_many_pixels", id="tiff-huge"),
        pytest.param(tiff_bytes(3163, 3163), "too_many_pixels", id="tiff-over-limit"),
        pytest.param(tiff_bytes(64, 64, frames=6), "too_many_pages", id="tiff-frames"),
        pytest.param(tiff_bytes(64, 64, frames=2, loop=True), None, id="tiff-ifd-loop"),
    ],
)
@pytest.mark.usefixtures("no_tesseract")
def test_limit_image_dimensions_and_frames(tmp_path: Path, data: bytes, code: str | None) -> None:
    path = _write(tmp_path, data, "letter.img")
    if code is None:  # a loop in the frame chain must end, refused or read
        reason = "read"
        try:
            read_letter(path, limits=LIMITS)
        except LetterRejected as rejected:
            reason = rejected.reason
        assert reason.strip()
        return
    assert _rejected(path).reason_code == code


def test_limit_corrupt_page_tree_leaks_no_file_handle(tmp_path: Path) -> None:
    """Regression: pdfplumber's close() re-reads a corrupt page tree and left its file open."""
    objects = one_page_pdf()
    objects[2] = objects[2].replace(
        b"<< /Type /Page", b"<< /Rotate 90 /Type /Page /Contents 5 0 R /Bogus"
    )
    path = _write(tmp_path, pdf_bytes(objects))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(LetterRejected) as rejected:
            read_text_layer(path, limits=LIMITS)
        gc.collect()
    assert rejected.value.reason_code == "corrupt_pdf"
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []


# --- zipped batches ---------------------------------------------------------------------

ZIP_LIMITS = ZipLimits(max_entries=10, max_total_bytes=3 * 1024**2, max_entry_bytes=2 * 1024**2)


def _zip(tmp_path: Path, entries: Sequence[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
    path = tmp_path / "in" / "B.zip"
    path.parent.mkdir()
    path.write_bytes(buffer.getvalue())
    return path


def _symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    ("name", "code"),
    [
        pytest.param("../escape.pdf", "unsafe_zip_entry", id="dot-dot"),
        pytest.param("B/../../escape.pdf", "unsafe_zip_entry", id="dot-dot-inside"),
        pytest.param("..\\escape.pdf", "unsafe_zip_entry", id="dot-dot-backslash"),
        pytest.param("/tmp/escape.pdf", "unsafe_zip_entry", id="absolute"),
        pytest.param("C:/escape.pdf", "unsafe_zip_entry", id="drive-letter"),
        pytest.param("C:\\escape.pdf", "unsafe_zip_entry", id="drive-letter-backslash"),
        pytest.param("//server/escape.pdf", "unsafe_zip_entry", id="unc"),
        pytest.param("sub/escape.pdf", "nested_zip_entry", id="sub-folder"),
        pytest.param("x" * 256 + ".pdf", "unsafe_zip_entry", id="name-too-long"),
    ],
)
def test_limit_zip_entries_outside_the_batch_are_refused(
    tmp_path: Path, name: str, code: str
) -> None:
    zip_path = _zip(tmp_path, [("a.pdf", b"%PDF-1.4\n"), (name, b"%PDF-1.4\n")])
    dest = tmp_path / "out" / "B"
    outcome = expand_zip(zip_path, dest, ZIP_LIMITS)
    assert not isinstance(outcome, ZipRefused)
    assert [(rejection.name, rejection.reason_code) for rejection in outcome] == [(name, code)]
    assert sorted(path.name for path in dest.iterdir()) == [".zip-rejections.json", "a.pdf"]
    assert not list(tmp_path.rglob("escape.pdf"))
    assert not (Path("/tmp") / "escape.pdf").exists()


def test_limit_zip_symbolic_link_is_not_created(tmp_path: Path) -> None:
    zip_path = _zip(tmp_path, [(_symlink("link.pdf"), b"/etc/passwd")])
    outcome = expand_zip(zip_path, tmp_path / "out" / "B", ZIP_LIMITS)
    assert not isinstance(outcome, ZipRefused)
    assert [rejection.reason for rejection in outcome] == ["symbolic link"]
    assert not [path for path in tmp_path.rglob("*") if path.is_symlink()]


def _lie_about_size(path: Path, name: bytes, declared: int) -> None:
    """Make both headers of entry ``name`` declare ``declared`` bytes uncompressed."""
    data = bytearray(path.read_bytes())
    for signature, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        start = data.find(signature)
        while start != -1:
            if data[start + name_at : start + name_at + len(name)] == name:
                data[start + size_at : start + size_at + 4] = declared.to_bytes(4, "little")
            start = data.find(signature, start + 4)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("entries", "lie", "expected"),
    [
        pytest.param([("bomb.pdf", bytes(2 * 1024**2 - 1))], None, "compression ratio", id="ratio"),
        pytest.param([("big.pdf", bytes(2 * 1024**2 + 1))], None, "entry would be over", id="big"),
        pytest.param([("liar.pdf", bytes(1024**2))], 100, "cannot be inflated", id="size-lies"),
    ],
)
def test_limit_zip_bomb_entries_are_refused(
    tmp_path: Path, entries: list[tuple[str, bytes]], lie: int | None, expected: str
) -> None:
    zip_path = _zip(tmp_path, [("a.pdf", b"%PDF-1.4\n"), *entries])
    if lie is not None:
        _lie_about_size(zip_path, entries[0][0].encode(), lie)
    dest = tmp_path / "out" / "B"
    outcome = expand_zip(zip_path, dest, ZIP_LIMITS)
    assert not isinstance(outcome, ZipRefused)
    ((name, code, reason),) = [(r.name, r.reason_code, r.reason) for r in outcome]
    assert name == entries[0][0]
    assert code == ("corrupt_zip_entry" if lie else "zip_bomb")  # zipfile stops at the lie
    assert expected in reason
    assert sorted(path.name for path in dest.iterdir()) == [".zip-rejections.json", "a.pdf"]


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        pytest.param([(f"{n}.pdf", b"x") for n in range(11)], "more than 10 entries", id="count"),
        pytest.param(
            [(f"{n}.pdf", bytes(1024**2)) for n in range(4)], "over 3145728 bytes", id="total"
        ),
    ],
)
def test_limit_zip_over_the_totals_is_refused_whole(
    tmp_path: Path, entries: list[tuple[str, bytes]], expected: str
) -> None:
    zip_path = _zip(tmp_path, entries)
    limits = ZipLimits(
        max_entries=10, max_total_bytes=3 * 1024**2, max_entry_bytes=2 * 1024**2, max_ratio=1e6
    )
    outcome = expand_zip(zip_path, tmp_path / "out" / "B", limits)
    assert isinstance(outcome, ZipRefused)
    assert outcome.reason_code == "zip_bomb"
    assert expected in outcome.reason
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


# --- a PDF whose forms fan out: PDFium's page load is exponential ----------------------------


def fanning_forms_pdf(levels: int = 8) -> bytes:
    """2 kB of PDF whose forms draw the next one 10 times: 10**(levels - 1) objects to load."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /XObject << /F 4 0 R >> >> /Contents %d 0 R >>" % (4 + levels),
    ]
    for level in range(levels):
        inner = b"/XObject << /F %d 0 R >>" % (5 + level) if level < levels - 1 else b""
        content = b"/F Do " * 10 if level < levels - 1 else b"0 0 1 1 re f"
        objects.append(
            stream(
                b"<< /Type /XObject /Subtype /Form /BBox [0 0 595 842] /Resources << "
                + inner
                + b" >> >>",
                content,
            )
        )
    objects.append(stream(b"<< >>", b"/F Do"))
    return bytes(pdf_bytes(objects))


async def test_limit_reader_killed_past_its_time_the_pool_reads_on(tmp_path: Path) -> None:
    """PDFium spends minutes loading the page of ``fanning_forms_pdf``: the reader is killed.

    The letter is then a reader crash (read again alone, then quarantined as
    ``reader_crashed``, see the component tests) and the next letter is read.
    """
    bomb = _write(tmp_path, fanning_forms_pdf(), "fan.pdf")
    good = _write(tmp_path, pdf_bytes(one_page_pdf()), "good.pdf")
    reader = PoolReader(ReadOptions(limits=LIMITS), workers=1, timeout_s=8.0)
    try:
        with pytest.raises(ReaderCrashed, match="took over 8 s"):
            await reader.read(bomb)
        read = await reader.read(good)
    finally:
        reader.close()
    assert isinstance(read, LetterText)
    assert read.texts == ["Reference client 123456789"]

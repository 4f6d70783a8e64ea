"""Bad-input campaign, scanned letter files: broken PDFs and images only raise ``LetterRejected``.

PDFs are written object by object and broken where readers break: truncated
files, lying or corrupt cross-reference tables, page trees with huge declared
counts or cycles, huge, empty or malformed media boxes, images and forms that
declare huge dimensions (decompression bombs), forms that draw themselves,
garbage content streams, bit flips in a real text-layer letter. Images
(PNG, TIFF, JPEG) get huge declared dimensions, more frames than the page
limit, IFD loops, strips past the end, unknown codecs, bad CRCs, truncation.

Each case is read as the service reads a letter (``read_letter``, at a low
resolution to keep the campaign fast; tesseract stood in for), so only
``LetterRejected`` (with a reason) may escape, within a time bound.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from services.intake_scan.adapters.letter_files import LetterRejected, ScanLimits
from services.intake_scan.adapters.text import read_letter, read_text_layer
from services.intake_scan.testing import make_text_pdf, sample_letter_text

SEED = 20260314
PDF_COUNT = 150
IMAGE_COUNT = 150
LIMITS = ScanLimits(max_pages=20, max_pixels=20_000_000)
DPI = 72


def pdf_bytes(objects: list[bytes], *, trailer: bytes = b"") -> bytes:
    """A PDF of ``objects`` (object 1 is the catalog) with a correct cross-reference table."""
    out = b"%PDF-1.7\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\n" % (len(objects) + 1, trailer)
    return out + b"startxref\n%d\n%%%%EOF\n" % xref


def stream(dictionary: bytes, data: bytes) -> bytes:
    """A stream object's body."""
    return dictionary[:-2] + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def one_page_pdf(
    *,
    pages: bytes = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    media_box: bytes = b"[0 0 595 842]",
    content: bytes = b"BT /F1 12 Tf 72 720 Td (Reference client 123456789) Tj ET",
    xobject: bytes | None = None,
) -> list[bytes]:
    """The objects of a one-page PDF: catalog, pages, page, font, content, optional XObject."""
    resources = b"/Font << /F1 4 0 R >>" + (b" /XObject << /X0 6 0 R >>" if xobject else b"")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        pages,
        b"<< /Type /Page /Parent 2 0 R /MediaBox "
        + media_box
        + b" /Resources << "
        + resources
        + b" >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        stream(b"<< >>", content),
    ]
    return [*objects, xobject] if xobject else objects


def image_xobject(width: int, height: int, data: bytes, *, bits: int = 8) -> bytes:
    """An image XObject that declares ``width`` x ``height`` grey pixels."""
    head = b"<< /Type /XObject /Subtype /Image /Width %d /Height %d " % (width, height)
    return stream(head + b"/ColorSpace /DeviceGray /BitsPerComponent %d /Filter /FlateDecode >>" % bits, data)  # fmt: skip


def _pdf_case(rng: random.Random, letter: bytes) -> bytes:
    shape = rng.randrange(10)
    if shape == 0:
        return letter[: rng.randrange(len(letter))]
    if shape == 1:
        flipped = bytearray(letter)
        for _ in range(rng.randint(1, 50)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        return bytes(flipped)
    if shape == 2:  # cross-reference table lies
        data = pdf_bytes(one_page_pdf())
        lie = rng.choice(
            [(b"0 6\n", b"0 9999999\n"), (b"startxref\n", b"startxref\n9"), (b"xref", b"xrfe"),
             (b" 00000 n", b" 99999 n"), (b"0000000009", b"9999999999"), (b"trailer", b"")]
        )  # fmt: skip
        return data.replace(*lie)
    if shape == 3:  # page trees with huge declared counts, cycles, missing kids
        pages = rng.choice(
            [b"<< /Type /Pages /Kids [3 0 R] /Count %d >>" % rng.choice([10**9, -1, 0, 60, 2**63]),
             b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
             b"<< /Type /Pages /Kids [" + b"3 0 R " * rng.choice([21, 500]) + b"] /Count 1 >>",
             b"<< /Type /Pages /Kids [99 0 R] /Count 1 >>", b"<< /Type /Pages >>", b"null"]
        )  # fmt: skip
        return pdf_bytes(one_page_pdf(pages=pages))
    if shape == 4:  # media boxes
        box = rng.choice(
            [b"[0 0 1e9 1e9]", b"[0 0 200000 200000]", b"[0 0 0 0]", b"[0 0 -595 -842]",
             b"[0 0 a b]", b"[0 0 595]", b"[1e38 1e38 -1e38 -1e38]", b"null", b"[0 0 14400 14400]"]
        )  # fmt: skip
        return pdf_bytes(one_page_pdf(media_box=box))
    if shape == 5:  # images declaring huge sizes: decompression bombs
        width, height = rng.choice([(100_000, 100_000), (30_000, 30_000), (1, 2**31 - 1), (0, 0)])
        pixels = zlib.compress(b"\x00" * rng.choice([0, 10, 4096, 1_000_000]), 9)
        xobject = image_xobject(width, height, pixels, bits=rng.choice([8, 16, 1, 0]))
        return pdf_bytes(one_page_pdf(content=b"q 595 0 0 842 0 0 cm /X0 Do Q", xobject=xobject))
    if shape == 6:  # a form that draws itself, or declares a huge box
        box = rng.choice([b"[0 0 595 842]", b"[0 0 1e9 1e9]"])
        form = stream(
            b"<< /Type /XObject /Subtype /Form /BBox " + box + b" /Resources << /XObject << /X0 6 0 R >> /Font << /F1 4 0 R >> >> >>",
            b"BT /F1 12 Tf 72 700 Td (Boucle) Tj ET /X0 Do",
        )  # fmt: skip
        return pdf_bytes(one_page_pdf(content=b"/X0 Do", xobject=form))
    if shape == 7:  # garbage content streams
        content = rng.choice(
            [rng.randbytes(200), b"q " * 100_000, b"BT (" + b"\\" * 1000, b"1 0 0 1 0 0 cm " * 20_000,
             b"BT /F9 1e30 Tf (x) Tj ET", b"BT /F1 12 Tf 72 720 Td <" + b"ff" * 5000 + b"> Tj ET"]
        )  # fmt: skip
        return pdf_bytes(one_page_pdf(content=content))
    if shape == 8:  # an encryption dictionary that means nothing
        trailer = rng.choice([b"/Encrypt << /Filter /Standard /V 9 /R 9 >> ", b"/Encrypt 99 0 R "])
        return pdf_bytes(one_page_pdf(), trailer=trailer)
    junk = rng.choice([b"", b"\x00" * 1000, b"%PDF-" * 300, rng.randbytes(900)])
    return junk + b"%PDF-1.4\n" + rng.randbytes(rng.randint(0, 2000))


def png_bytes(width: int, height: int, data: bytes, *, depth: int = 8, colour: int = 0) -> bytes:
    """A PNG declaring ``width`` x ``height`` whose IDAT holds ``data`` (CRCs correct)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def tiff_bytes(
    width: int, height: int, *, frames: int = 1, loop: bool = False, compression: int = 1,
    bits: int = 8, strip_past_end: bool = False,
) -> bytes:  # fmt: skip
    """A little-endian greyscale TIFF of ``frames`` IFDs (the last one pointing back if ``loop``)."""
    pixels = b"\xff" * min(width * height, 4096)
    out = bytearray(b"II*\x00" + struct.pack("<I", 8))
    for frame in range(frames):
        ifd_at = len(out)
        data_at = ifd_at + 2 + 9 * 12 + 4
        offset = 2**31 if strip_past_end else data_at
        entries = [
            (256, 4, width), (257, 4, height), (258, 3, bits), (259, 3, compression),
            (262, 3, 1), (273, 4, offset), (277, 3, 1), (278, 4, height), (279, 4, len(pixels)),
        ]  # fmt: skip
        last = frame == frames - 1
        following = (8 if loop else 0) if last else data_at + len(pixels)
        out += struct.pack("<H", len(entries))
        for tag, kind, value in entries:
            if kind == 4 or value > 0xFFFF:  # a SHORT field holding a LONG: malformed too
                out += struct.pack("<HHII", tag, 4, 1, value)
            else:
                out += struct.pack("<HHIHH", tag, kind, 1, value, 0)
        out += struct.pack("<I", following) + pixels
    return bytes(out)


def _real_image(rng: random.Random, kind: str) -> bytes:
    page = Image.new("L", (rng.randint(1, 300), rng.randint(1, 300)), 255)
    buffer = io.BytesIO()
    page.convert(rng.choice(["L", "1", "RGB", "RGBA"]) if kind != "JPEG" else "L").save(
        buffer, kind
    )
    return buffer.getvalue()


def _image_case(rng: random.Random) -> bytes:
    shape = rng.randrange(8)
    if shape == 0:
        width, height = rng.choice(
            [(100_000, 100_000), (9_000, 9_000), (1, 2**31 - 1), (0, 0), (2**31 - 1, 1), (5000, 4001)]
        )  # fmt: skip
        return png_bytes(width, height, zlib.compress(b"\x00" * rng.choice([0, 100, 100_000])))
    if shape == 1:
        data = png_bytes(40, 40, zlib.compress(b"\x00" * 41 * 40))
        flip = rng.randrange(8, len(data))
        return data[:flip] + bytes([data[flip] ^ 0xFF]) + data[flip + 1 :]
    if shape == 2:
        return png_bytes(
            40, 40, rng.choice([b"", rng.randbytes(50), zlib.compress(b"\x09" * 1681)]),
            depth=rng.choice([1, 3, 16, 99]), colour=rng.choice([0, 1, 3, 6, 7]),
        )  # fmt: skip
    if shape == 3:
        width, height = rng.choice([(100_000, 100_000), (9_000, 9_000), (0, 10), (64, 64)])
        return tiff_bytes(width, height, frames=rng.choice([1, 21, 60]), loop=rng.random() < 0.3)
    if shape == 4:
        return tiff_bytes(
            64, 64, compression=rng.choice([1, 5, 7, 8, 32773, 99999]),
            bits=rng.choice([0, 1, 8, 64]), strip_past_end=rng.random() < 0.5,
        )  # fmt: skip
    if shape == 5:  # a JPEG declaring a huge frame
        jpeg = bytearray(_real_image(rng, "JPEG"))
        at = jpeg.find(b"\xff\xc0")
        if at != -1:
            jpeg[at + 5 : at + 9] = struct.pack(
                ">HH", *rng.choice([(65535, 65535), (0, 0), (9000, 9000)])
            )
        return bytes(jpeg)
    data = _real_image(rng, rng.choice(["PNG", "TIFF", "JPEG"]))
    if shape == 6:
        return data[: rng.randrange(4, len(data))]
    flipped = bytearray(data)
    for _ in range(rng.randint(1, 20)):
        flipped[rng.randrange(len(flipped))] = rng.randrange(256)
    return bytes(flipped)


def corpus(letter: bytes) -> list[tuple[str, bytes]]:
    """``PDF_COUNT`` broken PDFs and ``IMAGE_COUNT`` broken images, the same on every run."""
    rng = random.Random(SEED)
    pdfs = [(f"pdf-{n}", _pdf_case(rng, letter)) for n in range(PDF_COUNT)]
    return pdfs + [(f"image-{n}", _image_case(rng)) for n in range(IMAGE_COUNT)]


@pytest.fixture(scope="module")
def letter(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("letter") / "letter.pdf"
    return make_text_pdf(sample_letter_text(second_page="Page deux"), path).read_bytes()


def check_letter_file(path: Path) -> str | None:
    """Read one file as the service does: ``None`` if all is well, else what went wrong."""
    readers: list[Callable[[], object]] = [lambda: read_letter(path, dpi=DPI, limits=LIMITS)]
    if (
        path.read_bytes().lstrip(b"\x00").startswith(b"%PDF")
        or b"%PDF-" in path.read_bytes()[:1024]
    ):
        readers.append(lambda: read_text_layer(path, limits=LIMITS))
    for read in readers:
        try:
            read()
        except LetterRejected as rejected:
            if not rejected.reason.strip() or not rejected.reason_code:
                return f"rejection without a reason: {rejected!r}"
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"[:300]
    return None


def test_fuzz_scan_files_corpus_is_fixed(letter: bytes) -> None:
    cases = corpus(letter)
    assert len(cases) == PDF_COUNT + IMAGE_COUNT
    assert corpus(letter) == cases


@pytest.mark.usefixtures("no_tesseract")
@pytest.mark.parametrize("kind", ["pdf", "image"])
def test_fuzz_scan_files_campaign(
    kind: str, letter: bytes, tmp_path: Path, exercised: Callable[[str, int], None]
) -> None:
    cases = [(case_id, data) for case_id, data in corpus(letter) if case_id.startswith(kind)]
    failures = []
    for case_id, data in cases:
        path = tmp_path / case_id
        path.write_bytes(data)
        problem = check_letter_file(path)
        if problem is not None:
            failures.append(f"{case_id}: {problem}")
    exercised(f"scan_{kind}", len(cases))
    assert failures == []

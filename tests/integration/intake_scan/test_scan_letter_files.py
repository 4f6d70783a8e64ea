"""Letter files read without OCR: text layers, and every bad input refused with its reason.

Real pdfplumber, pypdfium2 and Pillow on files made here; no tesseract needed:
every refusal happens before any page is rendered or decoded.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from services.intake_scan.adapters.text import (
    LetterRejected,
    ReasonCode,
    ScanLimits,
    ocr_pages,
    read_letter,
    read_text_layer,
    sniff_kind,
)
from services.intake_scan.domain.letters import extract_letter_facts
from services.intake_scan.testing import (
    make_text_pdf,
    render_letter_pdf,
    render_letter_tiff,
    sample_letter_text,
)

SHORT = "Jean Dupré\nRéférence client : 123 456 789\nJe conteste ma facture."


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height`` pixels, with almost no data behind it."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )
    return path


def test_scan_text_layer_pdf_is_read_without_ocr(tmp_path: Path) -> None:
    text = sample_letter_text(
        customer_ref="555 123 987",
        tsa_box="60002",
        city="Orléans",
        postcode="45000",
        second_page="Pièce jointe : copie de la facture",
    )
    path = make_text_pdf(text, tmp_path / "tapee.pdf")
    pages = read_text_layer(path)
    assert pages is not None
    assert len(pages) == 2
    assert "Éclusiers" in pages[0]
    assert "Châtre" in pages[0]
    assert "Pièce jointe" in pages[1]
    letter = read_letter(path)
    assert letter.texts == pages
    assert letter.page_confidences == ()  # no OCR ran
    facts = extract_letter_facts("\n".join(letter.texts))
    assert facts.customer_ref is not None
    assert facts.customer_ref.value == "555123987"
    assert facts.tsa_box is not None
    assert facts.tsa_box.value == "60002"
    assert facts.postal_address is not None
    assert (facts.postal_address.value.postcode, facts.postal_address.value.city) == (
        "45000",
        "Orléans",
    )


def test_scan_image_only_pdf_has_no_text_layer(tmp_path: Path) -> None:
    path = render_letter_pdf(SHORT, tmp_path / "scan.pdf")
    assert read_text_layer(path) is None


def test_scan_permissions_only_encryption_is_still_read(tmp_path: Path) -> None:
    path = make_text_pdf(SHORT, tmp_path / "restricted.pdf", user_password="")
    pages = read_text_layer(path)
    assert pages is not None
    assert "Référence client : 123 456 789" in pages[0]


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        pytest.param("a.pdf", b"%PDF-1.7\n", "pdf", id="pdf"),
        pytest.param("a.bin", b"\x00junk\n%PDF-1.4\n", "pdf", id="pdf-after-junk"),
        pytest.param("a.tif", b"II*\x00rest", "tiff", id="tiff-le"),
        pytest.param("a.tiff", b"MM\x00*rest", "tiff", id="tiff-be"),
        pytest.param("a.png", b"\x89PNG\r\n\x1a\nrest", "png", id="png"),
        pytest.param("scan.pdf", b"\xff\xd8\xff\xe0rest", "jpeg", id="jpeg-misnamed"),
    ],
)
def test_scan_file_kind_comes_from_content(
    tmp_path: Path, name: str, content: bytes, kind: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert sniff_kind(path) == kind


def _corrupt_pdf(tmp_path: Path) -> Path:
    path = tmp_path / "corrupt.pdf"
    path.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nthis is not a pdf\n")
    return path


def _truncated_pdf(tmp_path: Path) -> Path:
    whole = make_text_pdf(sample_letter_text(), tmp_path / "whole.pdf").read_bytes()
    path = tmp_path / "truncated.pdf"
    path.write_bytes(whole[: len(whole) // 2])
    return path


def _encrypted_pdf(tmp_path: Path) -> Path:
    return make_text_pdf(SHORT, tmp_path / "protected.pdf", user_password="secret")


def _word_document(tmp_path: Path) -> Path:
    path = tmp_path / "letter.pdf"  # misnamed: a zip (docx) container
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    return path


def _gif(tmp_path: Path) -> Path:
    path = tmp_path / "letter.gif"
    path.write_bytes(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")
    return path


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.pdf"
    path.write_bytes(b"")
    return path


def _garbage_png(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x13" * 200)
    return path


def _truncated_tiff(tmp_path: Path) -> Path:
    whole = render_letter_tiff(SHORT, tmp_path / "whole.tif").read_bytes()
    path = tmp_path / "truncated.tif"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    return path


def _pillow_bomb(tmp_path: Path) -> Path:
    return _png_header(tmp_path / "bomb.png", 100_000, 100_000)


def _over_our_limit(tmp_path: Path) -> Path:
    return _png_header(tmp_path / "big.png", 9_000, 9_000)  # 81 Mpx: under Pillow's own limit


def _huge_pdf_page(tmp_path: Path) -> Path:
    from fpdf import FPDF

    pdf = FPDF(unit="mm", format=(5000, 5000))  # 59,055 px square at 300 dpi
    pdf.add_page()
    path = tmp_path / "poster.pdf"
    pdf.output(str(path))
    return path


@pytest.mark.parametrize(
    ("make", "code"),
    [
        pytest.param(_corrupt_pdf, "corrupt_pdf", id="corrupt-pdf"),
        pytest.param(_truncated_pdf, "corrupt_pdf", id="truncated-pdf"),
        pytest.param(_encrypted_pdf, "encrypted_pdf", id="encrypted-pdf"),
        pytest.param(_word_document, "unsupported_type", id="docx-named-pdf"),
        pytest.param(_gif, "unsupported_type", id="gif"),
        pytest.param(_empty, "unsupported_type", id="empty"),
        pytest.param(_garbage_png, "corrupt_image", id="garbage-png"),
        pytest.param(_truncated_tiff, "corrupt_image", id="truncated-tiff"),
        pytest.param(_pillow_bomb, "too_many_pixels", id="pillow-bomb"),
        pytest.param(_over_our_limit, "too_many_pixels", id="over-max-pixels"),
        pytest.param(_huge_pdf_page, "too_many_pixels", id="huge-pdf-page"),
    ],
)
def test_scan_bad_input_is_rejected_with_its_reason(
    tmp_path: Path, make: object, code: ReasonCode
) -> None:
    assert callable(make)
    path = make(tmp_path)
    with pytest.raises(LetterRejected) as rejected:
        read_letter(path)
    assert rejected.value.reason_code == code
    assert rejected.value.reason
    assert str(rejected.value).startswith(code)


@pytest.mark.parametrize(
    ("make", "code"),
    [
        pytest.param(_corrupt_pdf, "corrupt_pdf", id="corrupt"),
        pytest.param(_encrypted_pdf, "encrypted_pdf", id="encrypted"),
        pytest.param(_gif, "unsupported_type", id="not-a-pdf"),
    ],
)
def test_scan_text_layer_refuses_bad_pdfs(tmp_path: Path, make: object, code: str) -> None:
    assert callable(make)
    with pytest.raises(LetterRejected) as rejected:
        read_text_layer(make(tmp_path))
    assert rejected.value.reason_code == code


def test_scan_page_count_limit(tmp_path: Path) -> None:
    two_pages = sample_letter_text(second_page="Page deux")
    limits = ScanLimits(max_pages=1)
    for path in (
        render_letter_tiff(two_pages, tmp_path / "two.tif"),
        make_text_pdf(two_pages, tmp_path / "two.pdf"),
        render_letter_pdf(two_pages, tmp_path / "two-scan.pdf"),
    ):
        with pytest.raises(LetterRejected) as rejected:
            read_letter(path, limits=limits)
        assert rejected.value.reason_code == "too_many_pages", path.name


def test_scan_pixel_limit_is_checked_before_rendering(tmp_path: Path) -> None:
    path = render_letter_pdf(SHORT, tmp_path / "scan.pdf")
    with pytest.raises(LetterRejected) as rejected:
        ocr_pages(path, limits=ScanLimits(max_pixels=1_000_000))
    assert rejected.value.reason_code == "too_many_pixels"
    assert "2480x3508" in rejected.value.reason


def test_scan_rejection_survives_pickling() -> None:
    import pickle

    pickled = pickle.dumps(LetterRejected("corrupt_pdf", "PDF cannot be parsed"))
    rejected = pickle.loads(pickled)  # noqa: S301 - our own bytes, as the process pool does
    assert (rejected.reason_code, rejected.reason) == ("corrupt_pdf", "PDF cannot be parsed")


def test_scan_missing_file_is_not_a_bad_letter(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_letter(tmp_path / "gone.pdf")

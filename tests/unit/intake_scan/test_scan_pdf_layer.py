"""PDF text layers read by PDFium, page by page equal to what pdfplumber read before.

PDFs are written here by fpdf2 (no tesseract): layouts PDFium vouches for
(its text is kept) and layouts it leaves to pdfplumber (columns side by side,
text drawn bottom first, superscripts, letter-spacing, a joined line-end
hyphen, a rotated page). Either way the text must be pdfplumber's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pdfplumber
import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pytest
from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from services.intake_scan.adapters.letter_files import LetterRejected, ScanLimits
from services.intake_scan.adapters.pdf_pages import PdfLetter, _pdfium_page_text, _tidy
from services.intake_scan.adapters.text import read_text_layer
from services.intake_scan.testing import (
    find_font,
    make_text_pdf,
    render_letter_pdf,
    sample_letter_text,
)

Layout = Callable[[FPDF], None]


def _pdf(path: Path, *layouts: Layout, core_font: bool = False) -> Path:
    pdf = FPDF(unit="pt", format="A4")
    pdf.set_margins(56, 56, 56)
    if core_font:
        pdf.core_fonts_encoding = "windows-1252"  # WinAnsi: has € and œ
    else:
        pdf.add_font("DejaVu", "", str(find_font()))
    for layout in layouts:
        pdf.add_page()
        pdf.set_font("Helvetica" if core_font else "DejaVu", size=11)
        layout(pdf)
    pdf.output(str(path))
    return path


def _line(pdf: FPDF, text: str, height: float = 15) -> None:
    pdf.multi_cell(0, height, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _by_pdfplumber(path: Path) -> list[str] | None:
    """What ``read_text_layer`` returned when pdfplumber read every page."""
    with pdfplumber.open(path) as pdf:
        texts = [page.extract_text() or "" for page in pdf.pages]
    kept = [text if len("".join(text.split())) >= 20 else "" for text in texts]
    return kept if any(kept) else None


def _readers(path: Path) -> list[str]:
    document = pdfium.PdfDocument(path)
    try:
        return [
            "pdfplumber" if _pdfium_page_text(document, index) is None else "pdfium"
            for index in range(len(document))
        ]
    finally:
        document.close()


PARAGRAPH = (
    "Je conteste le montant de 1 234,56 € prélevé le 12 février 2026 sur mon compte. "
    "Ma consommation habituelle est d'environ 45,80 € par mois. Malgré mes appels, la "
    "fuite signalée après le compteur n'a jamais été prise en compte."
)


def _letter(pdf: FPDF) -> None:
    for line in sample_letter_text(customer_ref="204 518 733").split("\n"):
        _line(pdf, line)


def _justified(pdf: FPDF) -> None:
    pdf.multi_cell(0, 15, PARAGRAPH * 2, align=Align.J, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _non_breaking_spaces(pdf: FPDF) -> None:
    _line(pdf, "Objet\u00a0: Réclamation sur la facture n°\u00a0FA2026-004512")
    _line(pdf, "Montant\u00a0: 1\u202f234,56\u00a0€")
    _line(pdf, "Référence client\u00a0: 204\u00a0518\u00a0733")


def _label_and_value(pdf: FPDF) -> None:
    for label, value in (("Référence client", "204 518 733"), ("Montant dû", "1 234,56 €")):
        pdf.cell(150, 15, label)
        pdf.cell(0, 15, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _columns(pdf: FPDF) -> None:
    top = pdf.get_y()
    for line in ("Jean-François Dupré", "12 rue des Éclusiers", "69003 Lyon"):
        _line(pdf, line)
    pdf.set_y(top)
    for line in ("Service Client", "TSA 50001", "36400 La Châtre"):
        pdf.set_x(330)
        pdf.cell(0, 15, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _bottom_first(pdf: FPDF) -> None:
    pdf.set_y(300)
    pdf.cell(0, 15, "Je souhaite un dégrèvement de ma facture.")
    pdf.set_y(100)
    pdf.cell(0, 15, "Référence client : 204 518 733")


def _superscript(pdf: FPDF) -> None:
    pdf.write(15, "Lyon, le 1")
    pdf.char_vpos = "SUP"
    pdf.write(15, "er")
    pdf.char_vpos = "LINE"
    pdf.write(15, " mars 2026, relevé de 147 m")
    pdf.char_vpos = "SUP"
    pdf.write(15, "3")
    pdf.char_vpos = "LINE"
    pdf.ln(20)
    _line(pdf, "Référence client : 204 518 733")


def _letter_spaced(pdf: FPDF) -> None:
    pdf.set_char_spacing(4)
    _line(pdf, "RÉCLAMATION")
    pdf.set_char_spacing(0)
    _line(pdf, "Référence client : 204 518 733")


def _line_end_hyphen(pdf: FPDF) -> None:
    _line(pdf, "Je souhaite un dé-\ngrèvement et le remboursement du trop-perçu.")


VOUCHED = [
    pytest.param((_letter,), False, id="letter"),
    pytest.param((_justified,), False, id="justified"),
    pytest.param((_non_breaking_spaces,), False, id="non-breaking-spaces"),
    pytest.param((_label_and_value,), False, id="label-and-value"),
    pytest.param((_justified, _label_and_value), True, id="core-font-two-pages"),
]
LEFT_TO_PDFPLUMBER = [
    pytest.param(_columns, id="columns-side-by-side"),
    pytest.param(_bottom_first, id="drawn-bottom-first"),
    pytest.param(_superscript, id="superscript"),
    pytest.param(_letter_spaced, id="letter-spaced"),
    pytest.param(_line_end_hyphen, id="line-end-hyphen"),
]


@pytest.mark.parametrize(("layouts", "core_font"), VOUCHED)
def test_scan_pdfium_text_is_pdfplumbers(
    tmp_path: Path, layouts: tuple[Layout, ...], core_font: bool
) -> None:
    path = _pdf(tmp_path / "letter.pdf", *layouts, core_font=core_font)
    assert _readers(path) == ["pdfium"] * len(layouts)
    assert read_text_layer(path) == _by_pdfplumber(path)


@pytest.mark.parametrize("layout", LEFT_TO_PDFPLUMBER)
def test_scan_doubtful_page_is_read_by_pdfplumber(tmp_path: Path, layout: Layout) -> None:
    path = _pdf(tmp_path / "letter.pdf", _letter, layout)
    assert _readers(path) == ["pdfium", "pdfplumber"]
    assert read_text_layer(path) == _by_pdfplumber(path)


def test_scan_rotated_page_is_read_by_pdfplumber(tmp_path: Path) -> None:
    source = _pdf(tmp_path / "upright.pdf", _letter)
    document = pdfium.PdfDocument(source)
    document[0].set_rotation(90)
    path = tmp_path / "rotated.pdf"
    document.save(path)
    document.close()
    assert _readers(path) == ["pdfplumber"]
    assert read_text_layer(path) == _by_pdfplumber(path)


def test_scan_glyphs_without_unicode_are_read_by_pdfplumber(tmp_path: Path) -> None:
    """Without a ToUnicode map pdfminer writes "(cid:N)": PDFium's guess is not kept."""
    pdf = FPDF(unit="pt", format="A4")
    pdf.compress = False
    pdf.add_font("DejaVu", "", str(find_font()))
    pdf.add_page()
    pdf.set_font("DejaVu", size=11)
    _line(pdf, "Référence client : 204 518 733\nJe conteste ma facture de 1 234,56 €.")
    path = tmp_path / "no-tounicode.pdf"
    path.write_bytes(bytes(pdf.output()).replace(b"/ToUnicode", b"/ToUnicodX"))
    assert _readers(path) == ["pdfplumber"]
    assert read_text_layer(path) == _by_pdfplumber(path)


def test_scan_tab_in_a_core_font_is_read_by_pdfplumber(tmp_path: Path) -> None:
    path = _pdf(tmp_path / "tabs.pdf", _letter, core_font=True)  # its right column: a tab
    assert _readers(path) == ["pdfplumber"]
    assert read_text_layer(path) == _by_pdfplumber(path)


def test_scan_accents_and_reference_survive(tmp_path: Path) -> None:
    path = make_text_pdf(sample_letter_text(customer_ref="555 123 987"), tmp_path / "l.pdf")
    assert _readers(path) == ["pdfium"]
    (page,) = read_text_layer(path) or []
    assert "Référence client : 555 123 987" in page
    for phrase in ("Jean-François Dupré", "Éclusiers", "Bâtiment", "Châtre", "trop-perçu"):
        assert phrase in page


def test_scan_tidy_lays_pdfium_text_out_as_pdfplumber() -> None:
    raw = "  Objet\u00a0:  Réclamation \r\n\r\n\tef\ufb01cace\u202fﬂeur \r\nfin"
    assert _tidy(raw) == "Objet : Réclamation\nefficace fleur\nfin"


def test_scan_image_only_pdf_has_no_layer_and_renders_as_pdfplumber(tmp_path: Path) -> None:
    path = render_letter_pdf("Jean Dupré\nRéférence client : 204 518 733", tmp_path / "s.pdf")
    with PdfLetter(path, ScanLimits()) as pdf:
        assert pdf.text_layer() is None
        (ours,) = list(pdf.renders(300, None))
    with pdfplumber.open(path) as reference:
        theirs = reference.pages[0].to_image(resolution=300).original.convert("L")
    assert ours.mode == "L"
    assert ours.size == theirs.size
    assert ours.tobytes() == theirs.tobytes()


def test_scan_renders_only_the_pages_asked(tmp_path: Path) -> None:
    path = render_letter_pdf(sample_letter_text(second_page="Page deux"), tmp_path / "two.pdf")
    with PdfLetter(path, ScanLimits()) as pdf:
        assert pdf.page_count == 2
        renders = list(pdf.renders(100, {1}))
    assert [image.size for image in renders] == [(827, 1170)]


def test_scan_corrupt_pdf_reason_names_pdfium_error(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.pdf"
    path.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\nnot a pdf\n")
    with pytest.raises(LetterRejected) as rejected:
        PdfLetter(path, ScanLimits())
    assert rejected.value.reason_code == "corrupt_pdf"
    assert "PDFium" in rejected.value.reason


def test_scan_threads_take_turns_in_pdfium(tmp_path: Path) -> None:
    """``InlineReader`` reads letters in threads: PDFium must see one call at a time."""
    scan = Image.new("L", (400, 560), 255)
    scan.save(tmp_path / "scan.png", dpi=(50, 50))
    paths = [
        make_text_pdf(
            sample_letter_text(customer_ref=f"{100 + n} 456 789"),
            tmp_path / f"{n}.pdf",
            image_pages=[tmp_path / "scan.png"],
        )
        for n in range(6)
    ]
    alone = [read_text_layer(path) for path in paths]
    results: dict[int, list[str] | None] = {}
    failures: list[BaseException] = []

    def read(number: int) -> None:
        try:
            for _ in range(3):
                results[number] = read_text_layer(paths[number])
                with PdfLetter(paths[number], ScanLimits()) as pdf:
                    list(pdf.renders(20, None))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=read, args=(n,)) for n in range(len(paths))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert [results[n] for n in range(len(paths))] == alone


WORDS = [
    *("Réclamation", "facture", "prélevé", "février", "dégrèvement", "trop-perçu"),
    *("Éclusiers", "Bâtiment", "Châtre", "Référence", "client", "204", "518", "733", "n°"),
    *("FA2026-004512", "1", "234,56", "€", "45,80", "œuvre", "Noël", "m³", "l'expression"),
    *("d'environ", "efficace"),
]


@st.composite
def _layouts(draw: st.DrawFn) -> list[tuple[str, int, str, str]]:
    """Blocks of a page: (kind, font size, text, more text)."""
    words = st.lists(st.sampled_from(WORDS), min_size=1, max_size=14).map(" ".join)
    block = st.tuples(
        st.sampled_from(["paragraph", "justified", "two-cells", "moved", "superscript", "spaced"]),
        st.sampled_from([8, 9, 10, 11, 12, 14, 18]),
        words,
        words,
    )
    return draw(st.lists(block, min_size=1, max_size=8))


def _draw(pdf: FPDF, blocks: list[tuple[str, int, str, str]]) -> None:
    for kind, size, text, more in blocks:
        pdf.set_font_size(size)
        height = size * 1.3
        if kind in ("paragraph", "justified"):
            align = Align.J if kind == "justified" else Align.L
            pdf.multi_cell(0, height, f"{text} {more}", align=align, new_x=XPos.LMARGIN)
            pdf.ln(height)
        elif kind == "two-cells":
            pdf.cell(40 + 7 * len(text), height, text)
            pdf.cell(0, height, more, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        elif kind == "moved":
            pdf.set_y(pdf.get_y() - 3 * size)
            pdf.set_x(60 + 10 * len(more))
            pdf.cell(0, height, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        elif kind == "superscript":
            pdf.write(height, text)
            pdf.char_vpos = "SUP"
            pdf.write(height, "er")
            pdf.char_vpos = "LINE"
            pdf.write(height, f" {more}")
            pdf.ln(height * 1.2)
        else:
            pdf.set_char_spacing(size / 3)
            pdf.cell(0, height, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.set_char_spacing(0)
        if pdf.get_y() > 700:
            return


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(blocks=_layouts())
def test_scan_any_layout_reads_as_pdfplumber(
    tmp_path: Path, blocks: list[tuple[str, int, str, str]]
) -> None:
    path = _pdf(tmp_path / "any.pdf", lambda pdf: _draw(pdf, blocks))
    assert read_text_layer(path) == _by_pdfplumber(path)

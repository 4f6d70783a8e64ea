"""Generated French letters through real tesseract (``fra``): PNG, TIFF, image-only PDF.

Letters are rendered at 300 dpi A4 with accents, slightly rotated and
speckled. The customer reference, TSA box and postcode must come out exactly
and the accents must survive. Few pages on purpose: about a second each.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from schemas.intake import IntakeItem
from services.intake_scan.adapters.text import (
    LetterRejected,
    LetterText,
    PageText,
    ocr_many,
    ocr_pages,
    read_letter,
)
from services.intake_scan.domain.facts import LetterFacts
from services.intake_scan.domain.letters import build_letter_item, extract_letter_facts
from services.intake_scan.domain.text import join_pages
from services.intake_scan.testing import (
    make_text_pdf,
    render_letter_pdf,
    render_letter_png,
    render_letter_tiff,
    sample_letter_text,
)

pytestmark = pytest.mark.ocr

SCANNED_AT = dt.datetime(2026, 3, 5, 7, 0, tzinfo=dt.UTC)

ACCENTED = (
    "Jean-François Dupré",
    "Éclusiers",
    "Bâtiment",
    "Châtre",
    "Référence client",
    "Réclamation",
    "prélevé le 12 février 2026",
    "Malgré",
    "signalée après",
    "été prise",
    "dégrèvement",
    "trop-perçu",
    "agréer",
    "distinguées",
)
SHORT = "Jean Dupré\nRéférence client : 204 518 733\nJe conteste ma facture."


@pytest.fixture(autouse=True)
def _one_tesseract_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_THREAD_LIMIT", "1")  # as ocr_many's workers do


def _assert_accents_survive(text: str) -> None:
    """Every accented phrase read exactly, bar one: noise may still flip a single letter."""
    missed = [phrase for phrase in ACCENTED if phrase not in text]
    assert len(missed) <= 1, missed


def _facts(pages: list[PageText]) -> LetterFacts:
    return extract_letter_facts(join_pages([page.text for page in pages]))


def _assert_identified(facts: LetterFacts, ref: str, box: str, postcode: str, city: str) -> None:
    assert facts.customer_ref is not None
    assert facts.customer_ref.value == ref
    assert facts.tsa_box is not None
    assert facts.tsa_box.value == box
    assert facts.postal_address is not None
    address = facts.postal_address.value
    assert (address.postcode, address.city) == (postcode, city)


def _item(facts: LetterFacts, letter: LetterText) -> IntakeItem:
    return build_letter_item(
        facts,
        item_id="scan:test:" + "0" * 64,
        source_ref="archive/00/letter",
        scanned_at=SCANNED_AT,
        tsa_box_from_index="50001",
        text=join_pages(letter.texts),
        page_confidences=letter.page_confidences,
        confidence_floor=60.0,
    )


def test_scan_png_letter(tmp_path: Path) -> None:
    text = sample_letter_text(customer_ref="123 456 789", tsa_box="60002")
    pages = ocr_pages(render_letter_png(text, tmp_path / "l.png", rotation_deg=1.2, noise=0.004))
    assert len(pages) == 1
    assert pages[0].confidence is not None
    assert pages[0].confidence > 75
    _assert_accents_survive(pages[0].text)
    facts = _facts(pages)
    _assert_identified(facts, "123456789", "60002", "69003", "Lyon")
    assert facts.last_resort_hint


def test_scan_multipage_tiff_letter(tmp_path: Path) -> None:
    text = sample_letter_text(
        customer_ref="204 518 733",
        tsa_box="50001",
        postcode="13008",
        city="Marseille",
        second_page="Pièce jointe : relevé du compteur.\nJe reste à votre disposition.",
    )
    path = render_letter_tiff(text, tmp_path / "l.tif", rotation_deg=-0.8, noise=0.004)
    pages = ocr_pages(path)
    assert len(pages) == 2
    _assert_accents_survive(pages[0].text)
    assert "Pièce jointe : relevé du compteur." in pages[1].text
    _assert_identified(_facts(pages), "204518733", "50001", "13008", "Marseille")


def test_scan_image_only_pdf_letter(tmp_path: Path) -> None:
    text = sample_letter_text(customer_ref="987 654 321", postcode="45000", city="Orléans")
    path = render_letter_pdf(text, tmp_path / "l.pdf", rotation_deg=0.6, noise=0.004)
    letter = read_letter(path)
    assert len(letter.page_confidences) == 1
    assert letter.page_confidences[0] > 75
    _assert_accents_survive(letter.texts[0])
    facts = _facts(list(letter.pages))
    _assert_identified(facts, "987654321", "50001", "45000", "Orléans")
    item = _item(facts, letter)
    assert item.sender.customer_ref == "987654321"
    assert item.ocr_page_confidences == letter.page_confidences
    assert not item.needs_manual_reading


def test_scan_blank_scan_still_becomes_an_item(tmp_path: Path) -> None:
    letter = read_letter(render_letter_png("", tmp_path / "blank.png", noise=0.001))
    assert letter.page_confidences == (0.0,)
    item = _item(_facts(list(letter.pages)), letter)
    assert item.needs_manual_reading
    assert item.ocr_confidence == 0.0


def test_scan_typed_letter_with_scanned_enclosure(tmp_path: Path) -> None:
    enclosure = render_letter_png(SHORT, tmp_path / "enclosure.png")
    path = make_text_pdf(sample_letter_text(), tmp_path / "mixed.pdf", image_pages=[enclosure])
    letter = read_letter(path)
    assert letter.pages[0].confidence is None  # text layer, no OCR
    assert letter.pages[1].confidence is not None  # only the scanned page went through OCR
    assert "Référence client : 204 518 733" in letter.pages[1].text


def test_scan_upside_down_page_is_turned(tmp_path: Path) -> None:
    (page,) = ocr_pages(render_letter_png(SHORT, tmp_path / "upside.png", rotation_deg=180))
    assert page.rotated_deg == 180
    assert "Référence client : 204 518 733" in page.text
    assert page.confidence is not None
    assert page.confidence > 75


def test_scan_many_letters_in_a_process_pool(tmp_path: Path) -> None:
    scan = render_letter_png(SHORT, tmp_path / "scan.png")
    typed = make_text_pdf(SHORT, tmp_path / "typed.pdf")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\nnot really\n")
    results = ocr_many([scan, broken, typed], workers=1)
    assert [type(result) for result in results] == [LetterText, LetterRejected, LetterText]
    first, second, third = results
    assert isinstance(first, LetterText)
    assert "204 518 733" in first.texts[0]
    assert isinstance(second, LetterRejected)
    assert second.reason_code == "corrupt_pdf"
    assert isinstance(third, LetterText)
    assert third.page_confidences == ()
    assert ocr_many([], workers=1) == []

"""The letter item carries the letter's own facts, its landline, its file and manual-reading flag."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from schemas.intake import AttachmentRef, LetterDetails
from services.intake_scan.domain.facts import Found, LetterFacts, PersonName, Phone
from services.intake_scan.domain.letters import build_letter_item, letter_details

J = dt.datetime(2026, 3, 5, 8, 30, tzinfo=dt.UTC)
FILE = AttachmentRef(sha256="cd" * 32, filename="a.pdf", content_type="application/pdf", size=10)


def test_scan_letter_details_from_facts() -> None:
    facts = LetterFacts(
        letter_date=Found(dt.date(2026, 3, 3), "place-and-date line"),
        invoice_numbers=(Found("FA2026-1", "r"), Found("FA2026-2", "r")),
        amounts=(Found(Decimal("1234.5"), "r"), Found(Decimal("60"), "r")),
        signatory=Found(PersonName("Dupré", "Jean-François"), "r"),
    )
    assert letter_details(facts) == LetterDetails(
        letter_date=dt.date(2026, 3, 3),
        invoice_numbers=("FA2026-1", "FA2026-2"),
        amounts_eur=("1234.50", "60.00"),
        signatory="Jean-François Dupré",
    )
    assert letter_details(LetterFacts(signatory=Found(PersonName("Martin"), "r"))) == (
        LetterDetails(signatory="Martin")
    )
    assert letter_details(LetterFacts()) is None


def test_scan_item_carries_landline_mobile_file_and_details() -> None:
    facts = LetterFacts(
        phones=(
            Found(Phone("+33477000001", mobile=False), "r"),
            Found(Phone("+33612345678", mobile=True), "r"),
            Found(Phone("+33477000002", mobile=False), "r"),
        ),
        letter_date=Found(dt.date(2026, 3, 3), "r"),
    )
    item = build_letter_item(
        facts,
        item_id="scan:B1:" + "cd" * 32,
        source_ref="scan://B1/a.pdf",
        scanned_at=J,
        tsa_box_from_index="60002",
        text="Lettre lisible",
        page_confidences=(),
        confidence_floor=60.0,
        attachments=(FILE,),
    )
    assert (item.sender.mobile, item.sender.phone) == ("+33612345678", "+33477000001")
    assert item.attachments == (FILE,)
    assert item.letter == LetterDetails(letter_date=dt.date(2026, 3, 3))
    assert item.tsa_box == "60002"
    assert not item.needs_manual_reading


def test_scan_item_manual_reading_when_told() -> None:
    item = build_letter_item(
        LetterFacts(),
        item_id="scan:B1:" + "cd" * 32,
        source_ref="scan://B1/a.pdf",
        scanned_at=J,
        tsa_box_from_index=None,
        text="Lettre lisible",
        page_confidences=(95.0,),
        confidence_floor=60.0,
        manual_reading=True,
    )
    assert item.needs_manual_reading
    assert item.letter is None

"""Whole letters to facts, and facts to the ``IntakeItem`` (channel "letter")."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.intake import IntakeItem, PostalAddress
from services.intake_scan.domain.facts import Found, LetterFacts, PersonName, Phone
from services.intake_scan.domain.letters import (
    build_letter_item,
    extract_letter_facts,
    letter_tsa_box,
    mean_confidence,
)
from services.intake_scan.domain.text import join_pages
from services.intake_scan.testing import sample_letter_text

SCANNED_AT = dt.datetime(2026, 3, 5, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))

OCR_LETTER = """| Mme Anne-Sophie LEFÈVRE
3, place du Marché _
42 000 Saint-Étienne

Service Client
TSA 50001
36400 La Chatre

Saint-Étienne, le 1er avril 2026 .

Objet: fuite après compteur - demande de dégrèvement
N° client : 98765432l

Madame,

Suite à la fuite du 12 mars 2026, ma facture n° 2026-00451 s'élève à 845,20 € au lieu
de 60 € habituellement. Vous pouvez me joindre au 04 77 00 00 01 ou par courriel
as.lefevre @ exemple.fr.

Je vous prie d'agréer, Madame, mes sentiments respectueux.
~ (signature) ~
A.-S. Lefèvre
Anne-Sophie LEFÈVRE
"""


def test_scan_sample_letter_facts() -> None:
    facts = extract_letter_facts(sample_letter_text(tsa_box="60002"))
    assert facts.customer_ref == Found("123456789", "labelled 'Référence client'")
    assert facts.name is not None
    assert facts.name.value == PersonName("Dupré", "Jean-François")
    assert facts.postal_address is not None
    assert facts.postal_address.value == PostalAddress(
        lines=("12 rue des Éclusiers", "Bâtiment B, appartement 4"), postcode="69003", city="Lyon"
    )
    assert facts.email is not None
    assert facts.email.value == "jf.dupre@exemple.fr"
    assert facts.mobile is not None
    assert facts.mobile.value == Phone("+33612345678", mobile=True)
    assert [found.value for found in facts.invoice_numbers] == ["FA2026-004512"]
    assert [found.value for found in facts.amounts] == [Decimal("1234.56"), Decimal("45.80")]
    assert facts.letter_date is not None
    assert facts.letter_date.value == dt.date(2026, 3, 3)
    assert facts.subject is not None
    assert facts.subject.value == "Réclamation sur la facture n° FA2026-004512"
    assert facts.signatory is not None
    assert facts.signatory.value == PersonName("Dupré", "Jean-François")
    assert facts.tsa_box is not None
    assert facts.tsa_box.value == "60002"
    assert facts.last_resort_hint


def test_scan_ocr_shaped_letter_facts() -> None:
    facts = extract_letter_facts(OCR_LETTER)
    assert facts.customer_ref == Found(
        "987654321", "labelled 'N° client' (OCR letters read as digits)"
    )
    assert facts.name is not None
    assert facts.name.value == PersonName("LEFÈVRE", "Anne-Sophie")
    assert facts.postal_address is not None
    assert facts.postal_address.value == PostalAddress(
        lines=("3, place du Marché",), postcode="42000", city="Saint-Étienne"
    )
    assert facts.email is not None
    assert facts.email.value == "as.lefevre@exemple.fr"
    assert facts.mobile is None
    assert [found.value for found in facts.phones] == [Phone("+33477000001", mobile=False)]
    assert [found.value for found in facts.invoice_numbers] == ["2026-00451"]
    assert [found.value for found in facts.amounts] == [Decimal("845.20"), Decimal("60")]
    assert facts.letter_date is not None
    assert facts.letter_date.value == dt.date(2026, 4, 1)
    assert facts.subject is not None
    assert facts.subject.value == "fuite après compteur - demande de dégrèvement"
    assert facts.signatory is not None
    assert facts.signatory.value == PersonName("LEFÈVRE", "Anne-Sophie")
    assert facts.tsa_box == Found("50001", "TSA box written in the letter")
    assert not facts.last_resort_hint


def test_scan_empty_letter_has_no_facts() -> None:
    assert extract_letter_facts("") == LetterFacts()
    assert LetterFacts().reasons() == ()


def test_scan_name_falls_back_to_signatory() -> None:
    facts = extract_letter_facts("Bonjour,\nJe résilie.\nCordialement,\nPaul Nguyen")
    assert facts.name == Found(
        PersonName("Nguyen", "Paul"), "signatory (no name in the sender's block)"
    )


def test_scan_reasons_carry_no_personal_data() -> None:
    reasons = extract_letter_facts(sample_letter_text()).reasons()
    assert "customer_ref: labelled 'Référence client'" in reasons
    text = " ".join(reasons)
    for value in ("123", "Dupré", "Lyon", "exemple.fr", "06 12", "FA2026", "1234"):
        assert value not in text


@pytest.mark.parametrize(
    ("from_index", "in_letter", "expected", "reason_part"),
    [
        pytest.param("60002", "50001", "60002", "scan index", id="index-60002"),
        pytest.param("50001", "60002", "60002", "letter mentions", id="letter-60002-wins"),
        pytest.param("50001", "50009", "50001", "scan index", id="index-beats-letter"),
        pytest.param(None, "50001", "50001", "written in the letter", id="letter-only"),
        pytest.param("5001X", "50001", "50001", "written in the letter", id="bad-index-ignored"),
        pytest.param(None, None, None, None, id="none"),
    ],
)
def test_scan_tsa_box_decision(
    from_index: str | None, in_letter: str | None, expected: str | None, reason_part: str | None
) -> None:
    facts = extract_letter_facts(f"TSA {in_letter}" if in_letter else "")
    found = letter_tsa_box(facts, from_index)
    assert (found.value if found else None) == expected
    assert (reason_part in found.reason) if found and reason_part else found is None


@pytest.mark.parametrize(
    ("confidences", "expected"),
    [
        pytest.param((), None, id="text-layer"),
        pytest.param((90.0, 80.0), 85.0, id="mean"),
        pytest.param((90.0, 0.0), 90.0, id="blank-verso-ignored"),
        pytest.param((0.0, 0.0), 0.0, id="all-blank"),
    ],
)
def test_scan_mean_confidence(confidences: tuple[float, ...], expected: float | None) -> None:
    assert mean_confidence(confidences) == expected


def _item(
    text: str, confidences: tuple[float, ...], *, index_box: str | None = "50001"
) -> IntakeItem:
    return build_letter_item(
        extract_letter_facts(text),
        item_id="scan:batch-1:" + "a" * 64,
        source_ref="archive/ab/abcdef.pdf",
        scanned_at=SCANNED_AT,
        tsa_box_from_index=index_box,
        text=text,
        page_confidences=confidences,
        confidence_floor=60.0,
    )


def test_scan_item_from_sample_letter() -> None:
    text = join_pages([sample_letter_text(), "Pièce jointe : copie de la facture"])
    item = _item(text, (91.5, 88.5))
    assert item.channel == "letter"
    assert item.received_at == dt.datetime(2026, 3, 5, 7, 30, tzinfo=dt.UTC)  # J, in UTC
    assert item.sender.customer_ref == "123456789"
    assert (item.sender.first_name, item.sender.last_name) == ("Jean-François", "Dupré")
    assert item.sender.email == "jf.dupre@exemple.fr"
    assert item.sender.mobile == "+33612345678"
    assert item.sender.postal_address is not None
    assert item.sender.postal_address.postcode == "69003"
    assert item.subject == "Réclamation sur la facture n° FA2026-004512"
    assert item.tsa_box == "50001"
    assert item.text == text
    assert item.ocr_confidence == 90.0
    assert item.ocr_page_confidences == (91.5, 88.5)
    assert not item.needs_manual_reading
    assert item.partition_key() == "123456789"


@pytest.mark.parametrize(
    ("text", "confidences", "manual"),
    [
        pytest.param("", (), True, id="empty-text-layer"),
        pytest.param("  \n ", (0.0,), True, id="blank-scan"),
        pytest.param("Lettre illisible", (42.0, 0.0), True, id="below-floor"),
        pytest.param("Lettre lisible", (60.0,), False, id="at-floor"),
        pytest.param("Lettre tapée", (), False, id="text-layer"),
    ],
)
def test_scan_manual_reading(text: str, confidences: tuple[float, ...], manual: bool) -> None:
    item = _item(text, confidences)
    assert item.needs_manual_reading is manual
    assert item.item_id.startswith("scan:batch-1:")  # never dropped: still an item


def test_scan_item_cuts_text_to_the_contract() -> None:
    item = _item("Objet : " + "a" * 1_200_000, (80.0,))
    assert len(item.text) == 1_000_000
    assert item.subject is not None
    assert len(item.subject) == 1000


def test_scan_naive_scan_date_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_letter_item(
            LetterFacts(),
            item_id="x",
            source_ref="y",
            scanned_at=dt.datetime(2026, 3, 5, 8, 30),  # naive on purpose
            tsa_box_from_index=None,
            text="",
            page_confidences=(),
            confidence_floor=60.0,
        )


_LETTERISH = st.lists(
    st.sampled_from(
        [
            *"0123456789 \n\t.,:;-/@+€°'|_()",
            *("Réf", "client", "N°", "TSA ", "Objet", "facture", "le ", "mars", "euros", "Lyon"),
            *("M. ", "Jean", "DUPRÉ", "rue", "salutations", "06 ", "+33", "fr", "Cedex"),
            *"ÉéèàçÂôœ\u00a0\u202f\ufb01ﾞ٣",
        ]
    ),
    max_size=200,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=600), _LETTERISH))
def test_scan_any_text_yields_facts_and_an_item(text: str) -> None:
    facts = extract_letter_facts(text)
    assert isinstance(facts, LetterFacts)
    item = _item(text, (50.0,), index_box=None)
    assert item.channel == "letter"
    if facts.customer_ref is not None:
        assert facts.customer_ref.value.isascii()
        assert len(facts.customer_ref.value) == 9

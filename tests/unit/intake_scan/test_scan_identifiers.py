"""Customer reference, invoice numbers, TSA box, e-mail and phones read from letter text."""

from __future__ import annotations

import pytest

from services.intake_scan.domain.facts import Phone
from services.intake_scan.domain.identifiers import (
    find_customer_ref,
    find_email,
    find_invoice_numbers,
    find_phones,
    find_tsa_box,
)
from services.intake_scan.domain.text import normalise


@pytest.mark.parametrize(
    ("text", "expected", "reason"),
    [
        pytest.param(
            "Référence client : 123456789", "123456789", "labelled 'Référence client'", id="plain"
        ),
        pytest.param(
            "Référence client : 123 456 789",
            "123456789",
            "labelled 'Référence client'",
            id="spaced",
        ),
        pytest.param(
            "Reference client: 12 34 56 789",
            "123456789",
            "labelled 'Référence client'",
            id="ocr-spacing-no-accent",
        ),
        pytest.param(
            "Réf. client 123.456.789", "123456789", "labelled 'Référence client'", id="dotted"
        ),
        pytest.param("N° client : 987654321", "987654321", "labelled 'N° client'", id="n-degree"),
        pytest.param("No client 987654321", "987654321", "labelled 'N° client'", id="no"),
        pytest.param(
            "Numéro de client : 987 654 321", "987654321", "labelled 'N° client'", id="numero"
        ),
        pytest.param(
            "N* d'abonné : 555666777", "555666777", "labelled 'N° client'", id="ocr-star-abonne"
        ),
        pytest.param("Réf. : 111222333", "111222333", "labelled 'Réf.'", id="bare-ref"),
        pytest.param("V/Réf 111 222 333", "111222333", "labelled 'Réf.'", id="votre-ref"),
        pytest.param(
            "Référence client :\n123 456 789",
            "123456789",
            "labelled 'Référence client'",
            id="value-on-next-line",
        ),
        pytest.param(
            "Référence client : 12345678O",
            "123456780",
            "labelled 'Référence client' (OCR letters read as digits)",
            id="ocr-letter-o",
        ),
        pytest.param(
            "Réf. : 111222333\nRéférence client : 444555666",
            "444555666",
            "labelled 'Référence client'",
            id="strongest-label-wins",
        ),
    ],
)
def test_scan_customer_ref_found(text: str, expected: str, reason: str) -> None:
    found = find_customer_ref(normalise(text))
    assert found is not None
    assert (found.value, found.reason) == (expected, reason)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Mon numéro est le 123456789.", id="unlabelled"),
        pytest.param("Référence client : 12345678", id="eight-digits"),
        pytest.param("Référence client : 1234567890", id="ten-digits"),
        pytest.param("Référence client : 123 456 789 0", id="trailing-digit"),
        pytest.param("Réf. facture : 123456789", id="invoice-ref"),
        pytest.param("Référence client : IIIOOOlll", id="letters-only"),
        pytest.param("Préférence client : 123456789", id="inside-a-word"),
    ],
)
def test_scan_customer_ref_not_found(text: str) -> None:
    assert find_customer_ref(normalise(text)) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Objet : facture n° FA2026-004512.", ("FA2026-004512",), id="letters-digits"),
        pytest.param("N° de facture : 2026001234", ("2026001234",), id="n-de-facture"),
        pytest.param("votre facture numéro 00451278", ("00451278",), id="numero"),
        pytest.param(
            "les factures n° 2026-00451, 2026-00452 et 2026-00453",
            ("2026-00451", "2026-00452", "2026-00453"),
            id="listed",
        ),
        pytest.param("Facture FA12-3 et facture B-001", (), id="too-few-digits"),
        pytest.param("ma facture 2025 est trop élevée", (), id="a-year"),
        pytest.param("la facture du 12 janvier", (), id="a-date"),
        pytest.param(
            "facture n° FA20260045 puis facture n° FA20260045", ("FA20260045",), id="dedup"
        ),
    ],
)
def test_scan_invoice_numbers(text: str, expected: tuple[str, ...]) -> None:
    assert tuple(found.value for found in find_invoice_numbers(normalise(text))) == expected


@pytest.mark.parametrize(
    ("text", "expected", "last_resort"),
    [
        pytest.param("Service Client\nTSA 50001\n36400 La Châtre", "50001", False, id="customer"),
        pytest.param("Direction Relation Client TSA 60002", "60002", True, id="escalation"),
        pytest.param("T.S.A 60 002", "60002", True, id="ocr-dots-and-space"),
        pytest.param("TSA 50001 ... copie à TSA 60002", "60002", True, id="60002-wins"),
        pytest.param("tsa n° 50001", "50001", False, id="lowercase"),
        pytest.param("NATSA 50001", None, False, id="inside-a-word"),
        pytest.param("TSA 500012", None, False, id="six-digits"),
    ],
)
def test_scan_tsa_box(text: str, expected: str | None, last_resort: bool) -> None:
    found = find_tsa_box(normalise(text))
    assert (found.value if found else None) == expected
    assert (found is not None and "4.9" in found.reason) is last_resort


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Courriel : jf.dupre@exemple.fr", "jf.dupre@exemple.fr", id="plain"),
        pytest.param("JF.Dupre @ Exemple.FR", "jf.dupre@exemple.fr", id="ocr-spaces-case"),
        pytest.param("jf. dupre@exemple.fr", "jf.dupre@exemple.fr", id="ocr-space-after-dot"),
        pytest.param(
            "écrire à marie+eau@mail.example.org.", "marie+eau@mail.example.org", id="dot"
        ),
        pytest.param("pas d'adresse @ ici", None, id="none"),
    ],
)
def test_scan_email(text: str, expected: str | None) -> None:
    found = find_email(normalise(text))
    assert (found.value if found else None) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Tél. : 06 12 34 56 78", (Phone("+33612345678", mobile=True),), id="mobile"),
        pytest.param("Portable 07.98.76.54.32", (Phone("+33798765432", mobile=True),), id="dots"),
        pytest.param("fixe : 04 72 00 00 01", (Phone("+33472000001", mobile=False),), id="fixed"),
        pytest.param("+33 6 12 34 56 78", (Phone("+33612345678", mobile=True),), id="intl"),
        pytest.param(
            "06 12 34 56 78 ou 0612345678", (Phone("+33612345678", mobile=True),), id="dedup"
        ),
        pytest.param("Référence client : 123 456 789", (), id="customer-ref-is-no-phone"),
        pytest.param("facture n° 2026001234", (), id="invoice-is-no-phone"),
    ],
)
def test_scan_phones(text: str, expected: tuple[Phone, ...]) -> None:
    assert tuple(found.value for found in find_phones(normalise(text))) == expected


def test_scan_phone_reason_names_the_label() -> None:
    (found,) = find_phones("Tél. : 06 12 34 56 78")
    assert found.reason == "mobile, after a phone label, region FR"

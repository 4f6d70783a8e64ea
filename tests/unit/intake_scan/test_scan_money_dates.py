"""Euro amounts and the letter's own date, written the French way."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from services.intake_scan.domain.money_dates import (
    find_amounts,
    find_letter_date,
    parse_french_date,
)
from services.intake_scan.domain.text import normalise


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("un montant de 1 234,56 € prélevé", ("1234.56",), id="french"),
        pytest.param("1\u202f234,56\u00a0€", ("1234.56",), id="typographic-spaces"),
        pytest.param("soit 45 euros", ("45.00",), id="euros-word"),
        pytest.param("soit 1 euro", ("1.00",), id="euro-singular"),
        pytest.param("1.234,56 EUR", ("1234.56",), id="dotted-thousands"),
        pytest.param("45.80 €", ("45.80",), id="decimal-dot"),
        pytest.param("12 345 678,9 €", ("12345678.90",), id="millions-one-decimal"),
        pytest.param("€ 12,50 puis EUR 3", ("12.50", "3.00"), id="prefix"),
        pytest.param("12€ et 12 €", ("12.00", "12.00"), id="repeats-kept"),
        pytest.param("leur 12 rue", (), id="eur-inside-a-word"),
        pytest.param("le 12 février 2026", (), id="no-currency"),
        pytest.param("facture 2026 1 234,56 €", ("1234.56",), id="preceded-by-a-year"),
    ],
)
def test_scan_amounts(text: str, expected: tuple[str, ...]) -> None:
    found = find_amounts(normalise(text))
    assert tuple(item.value for item in found) == tuple(Decimal(value) for value in expected)


def test_scan_amount_reason() -> None:
    (found,) = find_amounts("1 234,56 €")
    assert found.reason == "number followed by a euro sign"


@pytest.mark.parametrize(
    ("text", "expected", "reason"),
    [
        pytest.param("Lyon, le 3 mars 2026", dt.date(2026, 3, 3), "place-and-date line", id="lyon"),
        pytest.param(
            "Saint-Étienne le 1er août 2026", dt.date(2026, 8, 1), "place-and-date line", id="1er"
        ),
        pytest.param(
            "Fait à L'Isle-d'Abeau, le 15/01/2026",
            dt.date(2026, 1, 15),
            "place-and-date line",
            id="fait-a-numeric",
        ),
        pytest.param(
            "Paris, lundi 2 fevrier 2026.",
            dt.date(2026, 2, 2),
            "place-and-date line",
            id="weekday-no-accent",
        ),
        pytest.param(
            "Le 12 décembre 2025", dt.date(2025, 12, 12), "line holding only a date", id="date-only"
        ),
        pytest.param(
            "Madame,\nma facture du 12 janvier 2026 est fausse.\nLyon, le 3 mars 2026",
            dt.date(2026, 3, 3),
            "place-and-date line",
            id="body-date-ignored",
        ),
    ],
)
def test_scan_letter_date(text: str, expected: dt.date, reason: str) -> None:
    found = find_letter_date(normalise(text))
    assert found is not None
    assert (found.value, found.reason) == (expected, reason)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("ma facture du 12 janvier 2026 est fausse", id="in-a-sentence"),
        pytest.param("Lyon, le 31 février 2026", id="impossible-day"),
        pytest.param("Lyon, le 3 mars 1850", id="implausible-year"),
        pytest.param("Lyon, le 3 brumaire 2026", id="not-a-month"),
    ],
)
def test_scan_letter_date_not_found(text: str) -> None:
    assert find_letter_date(normalise(text)) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("3 mars 2026", dt.date(2026, 3, 3), id="words"),
        pytest.param("03/03/2026", dt.date(2026, 3, 3), id="numeric"),
        pytest.param("1er Décembre 2026", dt.date(2026, 12, 1), id="capital-month"),
        pytest.param("pas de date", None, id="none"),
    ],
)
def test_scan_parse_french_date(text: str, expected: dt.date | None) -> None:
    assert parse_french_date(text) == expected

"""Sender's name and address, signatory and subject line read from letter text."""

from __future__ import annotations

import pytest

from schemas.intake import PostalAddress
from services.intake_scan.domain.facts import PersonName
from services.intake_scan.domain.parties import (
    find_sender,
    find_signatory,
    find_subject,
    parse_person_name,
)
from services.intake_scan.domain.text import lines_of, normalise


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("Jean-François Dupré", PersonName("Dupré", "Jean-François"), id="plain"),
        pytest.param("M. Jean DUPONT", PersonName("DUPONT", "Jean"), id="civility-caps"),
        pytest.param("DUPONT Anne-Marie", PersonName("DUPONT", "Anne-Marie"), id="caps-first"),
        pytest.param("Madame Martin", PersonName("Martin"), id="civility-one-word"),
        pytest.param("M. et Mme Lefèvre", PersonName("Lefèvre"), id="couple"),
        pytest.param("Jean de La Fontaine", PersonName("de La Fontaine", "Jean"), id="particle"),
        pytest.param("Marie d'ALMEIDA", PersonName("d'ALMEIDA", "Marie"), id="d-apostrophe"),
        pytest.param("JEAN DUPONT", PersonName("DUPONT", "JEAN"), id="all-caps"),
        pytest.param("Jean Dupré.", PersonName("Dupré", "Jean"), id="trailing-dot"),
    ],
)
def test_scan_person_name(line: str, expected: PersonName) -> None:
    assert parse_person_name(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("Lyon", id="one-word-no-civility"),
        pytest.param("12 rue des Éclusiers", id="street"),
        pytest.param("Service Client", id="service"),
        pytest.param("Madame, Monsieur,", id="salutation"),
        pytest.param("Rue Victor Hugo", id="street-word"),
        pytest.param("Référence client : 123", id="label"),
        pytest.param("je vous écris", id="lowercase"),
        pytest.param("Lettre recommandée avec accusé", id="sentence"),
        pytest.param("A B C D E F", id="too-many-words"),
        pytest.param("", id="empty"),
    ],
)
def test_scan_not_a_person_name(line: str) -> None:
    assert parse_person_name(line) is None


def _sender(text: str) -> tuple[PersonName | None, PostalAddress | None]:
    name, address = find_sender(lines_of(normalise(text)))
    return (name.value if name else None, address.value if address else None)


@pytest.mark.parametrize(
    ("text", "name", "address"),
    [
        pytest.param(
            "Jean Dupré\n12 rue des Éclusiers\nBât. B\n69003 Lyon\n\n"
            "Service Client\nTSA 50001\n36400 La Châtre",
            PersonName("Dupré", "Jean"),
            PostalAddress(lines=("12 rue des Éclusiers", "Bât. B"), postcode="69003", city="Lyon"),
            id="blocks",
        ),
        pytest.param(
            "Service Client\nTSA 50001\n36400 La Châtre\n\n"
            "Mme Anne MARTIN\n3 place du Marché\n42 000 Saint-Étienne",
            PersonName("MARTIN", "Anne"),
            PostalAddress(lines=("3 place du Marché",), postcode="42000", city="Saint-Étienne"),
            id="recipient-first-ocr-spaced-postcode",
        ),
        pytest.param(
            "Lettre recommandée\nJean Dupré\n5 chemin Vert\n38080 L'Isle-d'Abeau\nService Client\n"
            "TSA 60002\n36400 La Châtre",
            PersonName("Dupré", "Jean"),
            PostalAddress(lines=("5 chemin Vert",), postcode="38080", city="L'Isle-d'Abeau"),
            id="text-layer-no-blank-lines",
        ),
        pytest.param(
            "12 rue Haute\n75015 Paris Cedex 15",
            None,
            PostalAddress(lines=("12 rue Haute",), postcode="75015", city="Paris Cedex 15"),
            id="no-name",
        ),
        pytest.param(
            "Service Client\nTSA 50001\n36400 La Châtre\n\nEn 2026, 75 personnes ont écrit",
            None,
            None,
            id="only-recipient",
        ),
        pytest.param(
            "Bonjour,\n75001 clients ont signé la pétition", None, None, id="number-in-sentence"
        ),
    ],
)
def test_scan_sender(text: str, name: PersonName | None, address: PostalAddress | None) -> None:
    assert _sender(text) == (name, address)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "Veuillez agréer mes salutations distinguées.\n\nJean-François Dupré",
            PersonName("Dupré", "Jean-François"),
            id="after-closing",
        ),
        pytest.param(
            "Cordialement,\n~~ signature ~~\nM. Paul NGUYEN\nP.J. : facture",
            PersonName("NGUYEN", "Paul"),
            id="skips-signature-scribble",
        ),
        pytest.param("Merci.\nAnne Martin", PersonName("Martin", "Anne"), id="last-lines"),
        pytest.param("Merci de votre aide.", None, id="none"),
    ],
)
def test_scan_signatory(text: str, expected: PersonName | None) -> None:
    found = find_signatory(lines_of(normalise(text)))
    assert (found.value if found else None) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Objet : Réclamation facture", "Réclamation facture", id="objet"),
        pytest.param("OBJET: fuite au compteur", "fuite au compteur", id="caps-no-space"),
        pytest.param("Concerne : mon abonnement", "mon abonnement", id="concerne"),
        pytest.param("Je vous écris à l'objet de", None, id="in-a-sentence"),
        pytest.param("Objet :", None, id="empty"),
    ],
)
def test_scan_subject(text: str, expected: str | None) -> None:
    found = find_subject(normalise(text))
    assert (found.value if found else None) == expected

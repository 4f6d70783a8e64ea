"""The contact-form layout (procedure 5.1.1 "Les e-mails"), text and HTML variants."""

from __future__ import annotations

import pytest

from services.intake_mail.domain import ContactForm, extract_contact_form
from services.intake_mail.domain.html_text import html_to_text

CANONICAL = """\
Nom : Martin
Prénom : Jeanne
Adresse e-mail : jeanne.martin@example.test
Numéro de téléphone mobile : 06 12 34 56 78
Référence client (facultative) : 123456789
Adresse (facultative) : 12 rue des Lilas 75011 Paris
Message : Ma facture est trop élevée."""

EXPECTED = ContactForm(
    last_name="Martin",
    first_name="Jeanne",
    email="jeanne.martin@example.test",
    mobile="06 12 34 56 78",
    customer_ref="123456789",
    address="12 rue des Lilas 75011 Paris",
    message="Ma facture est trop élevée.",
)


def _upper_labels(text: str) -> str:
    pairs = (line.split(" : ", 1) for line in text.split("\n"))
    return "\n".join(f"{label.upper()} : {value}" for label, value in pairs)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(CANONICAL, id="canonical"),
        pytest.param(_upper_labels(CANONICAL), id="upper-case-labels"),
        pytest.param(
            CANONICAL.replace("Prénom", "Prenom")
            .replace("Numéro", "Numero")
            .replace("Référence", "Reference"),
            id="no-accents",
        ),
        pytest.param(CANONICAL.replace(" : ", ":\t"), id="colon-tab"),
        pytest.param(CANONICAL.replace(" : ", "\t"), id="tab-only"),
        pytest.param(CANONICAL.replace(" : ", " :\n"), id="value-on-next-line"),
        pytest.param(CANONICAL.replace(" : ", " :\n\n"), id="value-after-blank-line"),
        pytest.param("\n".join(reversed(CANONICAL.split("\n"))), id="reversed-order"),
        pytest.param(
            CANONICAL.replace("Adresse e-mail", "Courriel")
            .replace("Numéro de téléphone mobile", "Tél. portable")
            .replace("Référence client (facultative)", "N° client"),
            id="synonyms",
        ),
        pytest.param(
            CANONICAL.replace("Prénom", "Prénomm").replace("Adresse e-mail", "Adrese e-mail"),
            id="typos",
        ),
        pytest.param(
            CANONICAL.replace("Nom :", "**Nom** :").replace("Prénom :", "Prénom* :"),
            id="markup-and-required-stars",
        ),
        pytest.param(
            "Nouveau message du site :\n\n"
            + CANONICAL
            + "\n\n--\nCe message a été envoyé depuis le formulaire de contact.",
            id="preamble-and-footer",
        ),
    ],
)
def test_liberal_labels(text: str) -> None:
    assert extract_contact_form(text) == EXPECTED


HTML_TABLE = """<table>
<tr><td><b>Nom</b></td><td>Martin</td></tr>
<tr><td><b>Prénom</b></td><td>Jeanne</td></tr>
<tr><td><b>Adresse e-mail</b></td><td>jeanne.martin@example.test</td></tr>
<tr><td>Numéro de téléphone mobile :</td><td>06 12 34 56 78</td></tr>
<tr><td>Référence client (facultative)</td><td>123456789</td></tr>
<tr><td>Adresse (facultative)</td><td>12 rue des Lilas 75011 Paris</td></tr>
<tr><td>Message</td><td>Ma facture est trop élevée.</td></tr></table>"""
HTML_TWO_COLUMNS = """<table>
<tr><th>Nom</th><th>Prénom</th></tr><tr><td>Martin</td><td>Jeanne</td></tr>
<tr><th>Adresse e-mail</th><th>Numéro de téléphone mobile</th></tr>
<tr><td>jeanne.martin@example.test</td><td>06 12 34 56 78</td></tr>
<tr><th>Référence client (facultative)</th><th>Adresse (facultative)</th></tr>
<tr><td>123456789</td><td>12 rue des Lilas 75011 Paris</td></tr></table>
<p>Message :</p><p>Ma facture est trop élevée.</p>"""
HTML_PAIRS_IN_ONE_ROW = """<table>
<tr><td>Nom</td><td>Martin</td><td>Prénom</td><td>Jeanne</td></tr>
<tr><td>Adresse e-mail</td><td>jeanne.martin@example.test</td>
<td>Numéro de téléphone mobile</td><td>06 12 34 56 78</td></tr>
<tr><td>Référence client (facultative)</td><td>123456789</td>
<td>Adresse (facultative)</td><td>12 rue des Lilas 75011 Paris</td></tr>
<tr><td>Message</td><td>Ma facture est trop élevée.</td></tr></table>"""
HTML_PARAGRAPHS = "".join(
    f"<p><strong>{line.replace(' : ', ' :</strong> ')}</p>" for line in CANONICAL.split("\n")
)


@pytest.mark.parametrize(
    "html",
    [
        pytest.param(HTML_TABLE, id="label-value-rows"),
        pytest.param(HTML_TWO_COLUMNS, id="header-row-over-values"),
        pytest.param(HTML_PAIRS_IN_ONE_ROW, id="two-pairs-per-row"),
        pytest.param(HTML_PARAGRAPHS, id="paragraphs"),
    ],
)
def test_html_variants(html: str) -> None:
    assert extract_contact_form(html_to_text(html)) == EXPECTED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "Nom : Martin\nAdresse e-mail : j@example.test\nMessage : Bonjour",
            ContactForm(last_name="Martin", email="j@example.test", message="Bonjour"),
            id="optional-fields-missing",
        ),
        pytest.param(
            "Nom : Martin\nPrénom :\nAdresse e-mail : j@example.test\nRéférence client :\n"
            "Message : Bonjour",
            ContactForm(last_name="Martin", email="j@example.test", message="Bonjour"),
            id="empty-values",
        ),
        pytest.param(
            "Nom : Martin\nAdresse e-mail : j@example.test\n"
            "Référence client : Votre référence client\n"
            "Numéro de téléphone mobile : 06 XX XX XX XX\nMessage : x",
            ContactForm(
                last_name="Martin", email="j@example.test", mobile="06 XX XX XX XX", message="x"
            ),
            id="placeholders",
        ),
        pytest.param(
            "Nom : Martin\nAdresse e-mail : j@example.test\nAdresse : 12 rue des Lilas\n"
            "Bâtiment B\n75011 Paris\n\nMessage :\nLigne 1\n\nLigne 2\nNom : encore",
            ContactForm(
                last_name="Martin",
                email="j@example.test",
                address="12 rue des Lilas\nBâtiment B\n75011 Paris",
                message="Ligne 1\n\nLigne 2\nNom : encore",
            ),
            id="multi-line-address-and-message",
        ),
        pytest.param(
            "Nom : Martin\nE-mail : j@example.test\nCode postal : 75011\nVille : Paris\n"
            "Objet : Facture\nMessage : x",
            ContactForm(
                last_name="Martin",
                email="j@example.test",
                postcode="75011",
                city="Paris",
                subject="Facture",
                message="x",
            ),
            id="separate-postcode-city-and-subject",
        ),
        pytest.param(
            "Nom : Martin\nTéléphone fixe : 01 23 45 67 89\nPortable : 06 12 34 56 78\nMessage : x",
            ContactForm(
                last_name="Martin", landline="01 23 45 67 89", mobile="06 12 34 56 78", message="x"
            ),
            id="landline-and-mobile-fields",
        ),
        pytest.param(
            "Message : Bonjour\nje suis Jeanne\nNom : Martin\nE-mail : j@example.test",
            ContactForm(
                last_name="Martin", email="j@example.test", message="Bonjour\nje suis Jeanne"
            ),
            id="message-first",
        ),
        pytest.param(
            "Nom : Martin\nE-mail : j@example.test\nMessage : x\n> Nom : Autre\n> Prénom : Quoted",
            ContactForm(last_name="Martin", email="j@example.test", message="x"),
            id="quoted-lines-ignored",
        ),
    ],
)
def test_field_values(text: str, expected: ContactForm) -> None:
    assert extract_contact_form(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param(
            "Bonjour,\nma facture est trop élevée.\nCordialement,\nJeanne", id="plain-mail"
        ),
        pytest.param("Nom : Martin\nMessage : Bonjour", id="two-fields-only"),
        pytest.param("Objet : facture\nMessage : x\nAdresse : 1 rue", id="no-identity-field"),
        pytest.param("Le 3 mars à 10:00 : RDV\nDate : demain\nPage : 2", id="colons-not-labels"),
    ],
)
def test_not_a_form(text: str) -> None:
    assert extract_contact_form(text) is None

"""Identity hints normalised (issue 4): e-mail, mobile E.164, 9-digit reference, address, names."""

from __future__ import annotations

import pytest

from schemas import PostalAddress
from services.intake_mail.domain.identity import (
    find_customer_ref,
    normalise_customer_ref,
    normalise_email,
    normalise_landline,
    normalise_mobile,
    parse_postal_address,
    split_display_name,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("Jeanne.Martin@Example.TEST", "jeanne.martin@example.test", id="lower-cased"),
        pytest.param(" <j@example.test> ", "j@example.test", id="brackets-and-spaces"),
        pytest.param("mailto:j@example.test?subject=x", "j@example.test", id="mailto"),
        pytest.param("j.o'neil+eau@sub.example.org", "j.o'neil+eau@sub.example.org", id="special"),
        pytest.param("j@example", None, id="no-tld"),
        pytest.param("j@@example.test", None, id="double-at"),
        pytest.param("j..m@example.test", None, id="double-dot"),
        pytest.param(".j@example.test", None, id="leading-dot"),
        pytest.param("j m@example.test", None, id="space"),
        pytest.param("j@-example.test", None, id="bad-label"),
        pytest.param("x" * 65 + "@example.test", None, id="local-too-long"),
        pytest.param("Votre adresse e-mail", None, id="placeholder"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="none"),
    ],
)
def test_normalise_email(value: str | None, expected: str | None) -> None:
    assert normalise_email(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("06 12 34 56 78", "+33612345678", id="spaced"),
        pytest.param("06.12.34.56.78", "+33612345678", id="dotted"),
        pytest.param("06-12-34-56-78", "+33612345678", id="dashed"),
        pytest.param("0612345678", "+33612345678", id="compact"),
        pytest.param("+33 6 12 34 56 78", "+33612345678", id="international"),
        pytest.param("+33 (0)6 12 34 56 78", "+33612345678", id="with-trunk-zero"),
        pytest.param("0033612345678", "+33612345678", id="00-prefix"),
        pytest.param("07 98 76 54 32", "+33798765432", id="07"),
        pytest.param("+32 470 12 34 56", "+32470123456", id="foreign"),
        # overseas mobiles in the national format (they used to become +33…: not valid)
        pytest.param("06 92 12 34 56", "+262692123456", id="reunion"),
        pytest.param("0690 12 34 56", "+590690123456", id="guadeloupe"),
        pytest.param("0696123456", "+596696123456", id="martinique"),
        pytest.param("01 23 45 67 89", None, id="landline-is-not-a-mobile"),
        pytest.param("06 XX XX XX XX", None, id="placeholder-letters"),
        pytest.param("06 12 34 56", None, id="too-short"),
        pytest.param("12345", None, id="not-a-number"),
        pytest.param("", None, id="empty"),
    ],
)
def test_normalise_mobile(value: str, expected: str | None) -> None:
    assert normalise_mobile(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("01 23 45 67 89", "+33123456789", id="paris"),
        pytest.param("+33 5 56 00 00 00", "+33556000000", id="international"),
        pytest.param("06 12 34 56 78", None, id="mobile-is-not-a-landline"),
        pytest.param("01 23", None, id="too-short"),
        pytest.param(None, None, id="none"),
    ],
)
def test_normalise_landline(value: str | None, expected: str | None) -> None:
    assert normalise_landline(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("123456789", "123456789", id="plain"),
        pytest.param("123 456 789", "123456789", id="spaced"),
        pytest.param("123.456.789", "123456789", id="dotted"),
        pytest.param("123-456-789", "123456789", id="dashed"),
        pytest.param("12345678", None, id="8-digits"),
        pytest.param("1234567890", None, id="10-digits"),
        pytest.param("12345678A", None, id="letter"),
        pytest.param("١٢٣٤٥٦٧٨٩", None, id="non-ascii-digits"),
        pytest.param(None, None, id="none"),
    ],
)
def test_normalise_customer_ref(value: str | None, expected: str | None) -> None:
    assert normalise_customer_ref(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Ma référence client : 123 456 789.", "123456789", id="reference-client"),
        pytest.param("Réf. client 123456789 – résiliation", "123456789", id="ref-abbrev"),
        pytest.param("N° client: 123.456.789", "123456789", id="numero"),
        pytest.param("numéro d'abonné 123456789", "123456789", id="abonne"),
        pytest.param("Référence client : 12345678", None, id="wrong-length"),
        pytest.param("Ma facture n° 123456789", None, id="not-labelled-as-customer"),
        pytest.param("J'habite au 123456789", None, id="bare-number"),
    ],
)
def test_find_customer_ref(text: str, expected: str | None) -> None:
    assert find_customer_ref(text) == expected


@pytest.mark.parametrize(
    ("value", "postcode", "city", "expected"),
    [
        pytest.param(
            "12 rue des Lilas, 75011 Paris",
            None,
            None,
            PostalAddress(lines=("12 rue des Lilas",), postcode="75011", city="Paris"),
            id="comma",
        ),
        pytest.param(
            "12 rue des Lilas 75011 Paris",
            None,
            None,
            PostalAddress(lines=("12 rue des Lilas",), postcode="75011", city="Paris"),
            id="one-line",
        ),
        pytest.param(
            "3 impasse du Moulin\nBât. B\n69003 Lyon 3e",
            None,
            None,
            PostalAddress(
                lines=("3 impasse du Moulin", "Bât. B"), postcode="69003", city="Lyon 3e"
            ),
            id="multi-line",
        ),
        pytest.param(
            "12 rue des Lilas",
            "75 011",
            "Paris",
            PostalAddress(lines=("12 rue des Lilas",), postcode="75011", city="Paris"),
            id="separate-fields",
        ),
        pytest.param(
            "Lieu-dit Les Granges",
            None,
            None,
            PostalAddress(lines=("Lieu-dit Les Granges",)),
            id="no-postcode",
        ),
        pytest.param(
            "12 rue des Lilas 7501 Paris",
            None,
            None,
            PostalAddress(lines=("12 rue des Lilas 7501 Paris",)),
            id="short-postcode",
        ),
        pytest.param("", None, None, None, id="empty"),
        pytest.param(None, None, None, None, id="none"),
    ],
)
def test_parse_postal_address(
    value: str | None, postcode: str | None, city: str | None, expected: PostalAddress | None
) -> None:
    assert parse_postal_address(value, postcode=postcode, city=city) == expected


@pytest.mark.parametrize(
    ("display", "expected"),
    [
        pytest.param("Jeanne Martin", ("Jeanne", "Martin"), id="first-last"),
        pytest.param("MARTIN Jeanne", ("Jeanne", "MARTIN"), id="upper-last-first"),
        pytest.param("Jeanne DE LA FONTAINE", ("Jeanne", "DE LA FONTAINE"), id="upper-compound"),
        pytest.param(
            "Service client de la mairie", (None, "Service client de la mairie"), id="org"
        ),
        pytest.param("jeanne@example.test", (None, None), id="address-as-name"),
        pytest.param("", (None, None), id="empty"),
        pytest.param(None, (None, None), id="none"),
    ],
)
def test_split_display_name(display: str | None, expected: tuple[str | None, str | None]) -> None:
    assert split_display_name(display) == expected

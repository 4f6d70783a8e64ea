"""Identity hints of a mail's sender, normalised for the router (procedure 5.1.1, 5.1.3.2).

Rules (issue 4, "Parsing": identity hints): an e-mail address is lower-cased and
must look deliverable (``local@domain.tld``); a phone number becomes E.164 with
``phonenumbers`` (region FR), must be valid, and is a mobile or a landline
(mobile and fixed-line-or-mobile types are mobiles, as in intake_scan); a customer reference
is exactly 9 digits once spaces, dots and dashes are removed (other lengths are
refused, never padded or cut). A value that fails is dropped, not guessed.
"""

from __future__ import annotations

import functools
import re

import phonenumbers

from schemas import PostalAddress
from schemas.phones import french_region

__all__ = [
    "find_customer_ref",
    "normalise_customer_ref",
    "normalise_email",
    "normalise_landline",
    "normalise_mobile",
    "normalise_name",
    "parse_postal_address",
    "split_display_name",
]

_LOCAL = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_EMAIL = re.compile(rf"^{_LOCAL}@{_LABEL}(?:\.{_LABEL})*\.[a-z]{{2,63}}$")
_MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)
_PHONE_CHARS = re.compile(r"^[+0-9 ().\-/]{6,40}$")
_REF_SEPARATORS = re.compile(r"[\s.\-/]")
_REF_IN_TEXT = re.compile(
    r"(?:r[ée]f(?:[ée]rence)?s?\.?|n[°o]\.?|num[ée]ro|compte)\s*(?:de\s+|d')?"
    r"(?:client|abonn[ée]e?|contrat)\s*(?:n[°o]\.?\s*)?[:=]?\s*(\d[\d .]{7,14}\d)",
    re.IGNORECASE,
)
_POSTCODE_CITY = re.compile(r"(?:^|[\s,])(\d{5})\s*,?\s+([^\d,\n][^,\n]{0,80})$")
_POSTCODE_ONLY = re.compile(r"(?:^|[\s,])(\d{5})\s*$")
_NAME_NOISE = re.compile(r"[\"<>@\d]")
_MAX_NAME = 200


def normalise_email(value: str | None) -> str | None:
    """Return the address lower-cased if it is a plausible Internet address, else None.

    Rule (issue 4, identity hints: "e-mail lower-cased"); ``mailto:`` and angle
    brackets are stripped; at most 254 characters, local part at most 64.
    """
    if not value:
        return None
    candidate = value.strip().strip("<>").strip()
    if candidate.lower().startswith("mailto:"):
        candidate = candidate[7:]
    candidate = candidate.split("?", 1)[0].strip().lower()
    if len(candidate) > 254 or not _EMAIL.match(candidate):
        return None
    if len(candidate.split("@", 1)[0]) > 64:
        return None
    return candidate


def _phone(value: str | None) -> tuple[str, bool] | None:
    """A valid number as (E.164, is a mobile), or None."""
    candidate = value.strip() if value else ""
    return _stripped_phone(candidate) if _PHONE_CHARS.match(candidate) else None


@functools.lru_cache(maxsize=1024)
def _stripped_phone(candidate: str) -> tuple[str, bool] | None:
    """``_phone`` of a stripped candidate of phone characters (at most 40), memoised: a
    form's number is read for ``mobile`` and again for ``phone``."""
    try:
        number = phonenumbers.parse(candidate, french_region(candidate))  # 0692…: Réunion
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164, phonenumbers.number_type(number) in _MOBILE_TYPES


def normalise_mobile(value: str | None) -> str | None:
    """Return a valid mobile number in E.164 (region FR by default), else None.

    Rule (issue 4, identity hints: "mobile to E.164"; procedure 5.1.1 form field
    "Numéro de téléphone mobile", 5.1.3.1 "Téléphone portable"). Letters are
    refused (a placeholder such as ``06 XX XX XX XX`` is not a number); a number
    ``phonenumbers`` classifies as a landline is not a mobile (see
    ``normalise_landline``).
    """
    number = _phone(value)
    return number[0] if number is not None and number[1] else None


def normalise_landline(value: str | None) -> str | None:
    """Return a valid number that is not a mobile in E.164 (region FR by default), else None.

    Rule (procedure 5.1.3.1 "Téléphone fixe"): a customer who types a landline
    into the form's mobile field still gave a way to reach them; it goes to
    ``SenderHints.phone`` instead of being lost.
    """
    number = _phone(value)
    return number[0] if number is not None and not number[1] else None


def normalise_customer_ref(value: str | None) -> str | None:
    """Return the 9-digit customer reference, or None when it has another length or shape.

    Rule (issue 4, identity hints: "9-digit customer reference validated";
    procedure 5.1.1 form field "Référence client (facultative)").
    """
    if not value:
        return None
    candidate = _REF_SEPARATORS.sub("", value)
    if len(candidate) == 9 and candidate.isascii() and candidate.isdigit():
        return candidate
    return None


def find_customer_ref(text: str) -> str | None:
    """Find a customer reference announced in free text ("référence client : 123 456 789").

    Rule (procedure 5.1.3.2: identification from what the mail says). Only a
    labelled number counts, and it must normalise to exactly 9 digits.
    """
    for match in _REF_IN_TEXT.finditer(text[:200_000]):
        ref = normalise_customer_ref(match.group(1))
        if ref is not None:
            return ref
    return None


def normalise_name(value: str | None) -> str | None:
    """Return a person's name with collapsed whitespace, or None if empty or not a name.

    Rule (procedure 5.1.1: "Nom", "Prénom" as the customer wrote them; no case change).
    """
    if not value:
        return None
    name = " ".join(value.split()).strip(" ,;:")
    if not name or _NAME_NOISE.search(name) or len(name) > _MAX_NAME:
        return None
    return name


def split_display_name(display: str | None) -> tuple[str | None, str | None]:
    """Split a From display name into (first name, last name) when it is clearly a person's.

    Rule (issue 4: "sender hints … else from the From header"). Upper-case words
    are the last name (French habit: ``DUPONT Jean``); otherwise two words are
    read as ``Prénom Nom``. Anything else (one word, a company) is left unsplit
    as the last name.
    """
    name = normalise_name(display)
    if name is None:
        return None, None
    words = name.split()
    upper = [word for word in words if word.isupper() and len(word) > 1]
    if upper and len(upper) < len(words):
        rest = [word for word in words if word not in upper]
        return " ".join(rest), " ".join(upper)
    if len(words) == 2:
        return words[0], words[1]
    return None, name


def parse_postal_address(
    value: str | None, *, postcode: str | None = None, city: str | None = None
) -> PostalAddress | None:
    """Split an address as typed into lines, a 5-digit postcode and a city.

    Rule (procedure 5.1.1 form field "Adresse (facultative)", 5.1.3.2): the
    postcode and city are read from the end (``12 rue des Lilas, 75011 Paris``) or
    from separate fields; what cannot be read stays in ``lines``.
    """
    parts = [
        " ".join(part.split())
        for chunk in (value or "").split("\n")
        for part in chunk.split(",")
        if part.strip()
    ]
    found_postcode = _valid_postcode(postcode)
    found_city = " ".join(city.split())[:200] or None if city else None
    if parts and found_postcode is None:
        last = parts[-1]
        match = _POSTCODE_CITY.search(last) or _POSTCODE_ONLY.search(last)
        if match is not None:
            found_postcode = match.group(1)
            if match.re is _POSTCODE_CITY and found_city is None:
                found_city = " ".join(match.group(2).split()) or None
            head = last[: match.start()].strip(" ,")
            parts = [*parts[:-1], head] if head else parts[:-1]
    if not parts and found_postcode is None and found_city is None:
        return None
    return PostalAddress(
        lines=tuple(part[:200] for part in parts[:6]), postcode=found_postcode, city=found_city
    )


def _valid_postcode(value: str | None) -> str | None:
    if value is None:
        return None
    digits = "".join(value.split())
    return digits if len(digits) == 5 and digits.isascii() and digits.isdigit() else None

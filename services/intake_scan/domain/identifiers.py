"""Numbers and addresses that identify a customer or a bill in a letter (5.1.2, 5.1.3.2).

Customer reference (9 digits after a label), invoice numbers, the TSA box the
letter was addressed to, e-mail and phone numbers. Every rule works on text
already passed through ``normalise`` and is tolerant of OCR spacing.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import Leniency, PhoneNumberFormat, PhoneNumberMatcher, PhoneNumberType

from services.intake_scan.domain.facts import TSA_LAST_RESORT, Found, Phone

__all__ = [
    "find_customer_ref",
    "find_email",
    "find_invoice_numbers",
    "find_phones",
    "find_tsa_box",
]

# Label then value. Labels, strongest first; OCR may drop accents or read "°" as "o" / "*".
_NUMERO = r"(?:n\s?[°o*]\.?|num[ée]ro|no\.)"
_REF_LABELS: tuple[tuple[str, str], ...] = (
    (
        r"r[ée]f[ée]rences?\s+(?:de\s+|du\s+)?(?:client|abonn[ée]|abonnement)"
        r"|r[ée]f\.?\s*(?:client|abonn[ée])",
        "labelled 'Référence client'",
    ),
    (
        _NUMERO + r"\s*(?:de\s+|d'|du\s+)?(?:client|abonn[ée]|abonnement)",
        "labelled 'N° client'",
    ),
    (r"(?:v(?:otre|/)\s*)?r[ée]f(?:[ée]rence)?\b\.?", "labelled 'Réf.'"),
)
_REF_SEPARATOR = r"[\s:=.\-]{0,6}(?:" + _NUMERO + r"\s?)?[\s:]{0,3}"
# Nine digits, a space or dot allowed between any two (OCR and "123 456 789" spacing);
# O/o and I/l/| are accepted where a digit is expected and read as 0 and 1.
_REF_VALUE = r"(?<![0-9])(?P<value>[0-9OoIl|](?:[ .]?[0-9OoIl|]){8})(?![ .]?[0-9])"
_REF_PATTERNS = tuple(
    (re.compile(r"(?:(?<=\W)|^)(?:" + label + r")" + _REF_SEPARATOR + _REF_VALUE, re.I), reason)
    for label, reason in _REF_LABELS
)
_OCR_DIGITS = str.maketrans({"O": "0", "o": "0", "I": "1", "l": "1", "|": "1", " ": "", ".": ""})
_MIN_TRUE_DIGITS = 6


def find_customer_ref(text: str) -> Found[str] | None:
    """Find the 9-digit customer reference next to its label (5.1.2: the customer reference).

    A bare 9-digit number is never taken: a wrong reference would file the
    letter under another customer, a missing one only costs a look-up.
    """
    for pattern, reason in _REF_PATTERNS:
        for match in pattern.finditer(text):
            raw = match.group("value")
            if sum(char.isdigit() for char in raw) < _MIN_TRUE_DIGITS:
                continue
            value = raw.translate(_OCR_DIGITS)
            if len(value) == 9 and value.isascii() and value.isdigit():
                corrected = any(char in "OoIl|" for char in raw)
                return Found(value, reason + (" (OCR letters read as digits)" if corrected else ""))
    return None


_INVOICE_LABEL = re.compile(
    r"(?:(?<=\W)|^)(?:factures?\s*(?:"
    + _NUMERO
    + r"|n°)?|"
    + _NUMERO
    + r"\s*(?:de\s+)?facture)[\s:.]{0,3}",
    re.I,
)
_INVOICE_VALUE = re.compile(r"(?P<value>[A-Z0-9](?:[A-Z0-9]|[-/](?=[A-Z0-9])){3,29})(?![\w-])")
_INVOICE_NEXT = re.compile(r"[ ]?(?:,|et|&)[ ]?(?:" + _NUMERO + r"|n°)?[ ]?", re.I)


def _invoice_like(value: str) -> bool:
    digits = sum(char.isdigit() for char in value)
    letters = sum(char.isalpha() for char in value)
    return digits >= 5 or (digits >= 4 and letters >= 1)


def find_invoice_numbers(text: str) -> tuple[Found[str], ...]:
    """Find invoice numbers written after "facture n°" or "N° de facture" (5.1.7.1 billing).

    A value is kept when it has at least five digits, or four digits and a
    letter, so that "ma facture 2025" (a year) is not read as an invoice number.
    Several numbers after one label ("factures n° A, B et C") are all kept.
    """
    found: dict[str, Found[str]] = {}
    for label in _INVOICE_LABEL.finditer(text):
        position = label.end()
        reason = "after 'facture n°'"
        while (match := _INVOICE_VALUE.match(text, position)) is not None:
            value = match.group("value").upper()
            if not _invoice_like(value):
                break
            found.setdefault(value, Found(value, reason))
            following = _INVOICE_NEXT.match(text, match.end())
            if following is None:
                break
            position = following.end()
            reason = "listed after 'facture n°'"
    return tuple(found.values())


_TSA = re.compile(
    r"(?:(?<=\W)|^)T[ .]?S[ .]?A\b[ .:]{0,3}(?:n°[ ]?)?(?P<box>[0-9]{2}[ ]?[0-9]{3})(?![0-9])",
    re.I,
)


def find_tsa_box(text: str) -> Found[str] | None:
    """Find the TSA postal box the letter is addressed to (5.1.1 TSA 50001; 4.9 NB TSA 60002).

    When several boxes are written, 60002 wins: a letter that names the
    customer-relations director's box is an escalation (RDR) wherever else it went.
    """
    boxes = [match.group("box").replace(" ", "") for match in _TSA.finditer(text)]
    if TSA_LAST_RESORT in boxes:
        return Found(TSA_LAST_RESORT, "letter mentions TSA 60002 (escalation to the director, 4.9)")
    if boxes:
        return Found(boxes[0], "TSA box written in the letter")
    return None


_EMAIL = re.compile(
    r"(?<![\w.+-])(?P<local>[A-Za-z0-9_%+-]{1,64}(?:\. ?[A-Za-z0-9_%+-]{1,64}){0,8}) ?@ ?"
    r"(?P<domain>[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24})(?![\w-])"
)


_MAX_EMAIL = 320


def find_email(text: str) -> Found[str] | None:
    """Find the first e-mail address, OCR spaces around "@" and after a dot forgiven (5.1.3.2)."""
    match = _EMAIL.search(text)
    if match is None:
        return None
    local = match.group("local").replace(" ", "")
    value = f"{local}@{match.group('domain')}".lower()
    return Found(value[:_MAX_EMAIL], "e-mail address written in the letter")


_PHONE_LABEL = re.compile(r"(?:t[ée]l|portable|mobile|gsm|fixe|phone)\w*\.?[\s:]*$", re.I)
_MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})


def find_phones(text: str) -> tuple[Found[Phone], ...]:
    """Find phone numbers as E.164 with French defaults (5.1.3.1: mobile and landline).

    Only numbers written the French way (a leading 0) or internationally (a
    leading +) are taken, so customer references and invoice numbers, which
    are digits too, are never read as phone numbers.
    """
    found: dict[str, Found[Phone]] = {}
    for match in PhoneNumberMatcher(text, "FR", leniency=Leniency.VALID):
        raw = match.raw_string.lstrip("(")
        if not raw.startswith(("0", "+")):
            continue
        number = match.number
        e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
        mobile = phonenumbers.number_type(number) in _MOBILE_TYPES
        before = text[max(0, match.start - 24) : match.start]
        kind = "mobile" if mobile else "landline"
        how = "after a phone label" if _PHONE_LABEL.search(before) else "phone number pattern"
        found.setdefault(e164, Found(Phone(e164, mobile), f"{kind}, {how}, region FR"))
    return tuple(found.values())

"""Telephone numbers: E.164 normalisation, hidden callers, mobiles (procedure 5.1.2).

"Si le téléphone est reconnu, le Chargé MTC dispose d'une remontée automatique
de la fiche client": the router can only recognise a caller whose number is in
one canonical form, so every platform's number (``0612345678``,
``33612345678``, ``+33 6 12 34 56 78``, ``0033612345678``) becomes E.164 with
``phonenumbers`` (default region FR). Numbers that are not telephone numbers
(extensions such as ``1001``, short numbers such as ``3949``) are kept as
given; withheld numbers (``anonymous``, ``Restricted``, Twilio's
``+266696687``…) become ``None`` with the *hidden* flag set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

from schemas.phones import french_region
from services.intake_phone.domain.events import PayloadRejected

__all__ = [
    "DEFAULT_REGION",
    "HIDDEN_PLACEHOLDERS",
    "HIDDEN_TOKENS",
    "Party",
    "is_mobile",
    "party",
    "to_e164",
]

DEFAULT_REGION = "FR"
HIDDEN_TOKENS = frozenset(
    {
        "anonymous",
        "anonyme",
        "restricted",
        "private",
        "privé",
        "prive",
        "withheld",
        "masqué",
        "masque",
        "numéro masqué",
        "numero masque",
        "unavailable",
        "blocked",
    }
)
"""Caller ids meaning "withheld", compared case-insensitively."""

HIDDEN_PLACEHOLDERS = frozenset({"266696687", "7378742833", "2562533", "8656696", "86282452253"})
"""Keypad spellings Twilio sends as ``From`` for withheld callers (ANONYMOUS, RESTRICTED…)."""

_UNKNOWN_TOKENS = frozenset({"", "unknown", "<unknown>", "inconnu", "none", "null"})
_SEPARATORS = re.compile(r"[\s.\-()/]")
_RAW_ALLOWED = re.compile(r"^[A-Za-z0-9+*#:@._-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Party:
    """A caller or called party: E.164 or raw number, or ``None`` with ``hidden`` set."""

    number: str | None
    hidden: bool = False


def to_e164(raw: str, region: str = DEFAULT_REGION) -> str | None:
    """Return the E.164 form of ``raw`` if it is a possible telephone number, else ``None``.

    Rule of procedure 5.1.2 (automatic recognition of the caller): national
    French numbers (overseas ones to their own country code: ``schemas.phones``),
    numbers with an ``00`` international prefix and numbers written with their
    country code but without ``+`` (as Ringover sends them) all normalise to the
    same ``+<country><number>``.
    """
    compact = _SEPARATORS.sub("", raw.strip())
    if not compact or len(compact) > 20:
        return None
    if region == DEFAULT_REGION:  # a national number may ring overseas (0692…: Réunion)
        region = french_region(compact)
    candidates = [compact]
    if compact.isdigit() and not compact.startswith("0") and len(compact) >= 10:
        candidates.append("+" + compact)
    for candidate in candidates:
        try:
            parsed = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(parsed) and phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    for candidate in candidates:
        try:
            parsed = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(parsed) and len(str(parsed.national_number)) >= 8:
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return None


def party(raw: str | None, *, hidden: bool = False, region: str = DEFAULT_REGION) -> Party:
    """Normalise one party of a call: E.164 if possible, raw if short or internal, else None.

    Rule of procedure 5.1.2: hidden or anonymous callers are kept as ``None``
    with ``hidden`` set, so that the router never tries to recognise them; a
    value that is neither a number nor a known placeholder is rejected.
    """
    if hidden:
        return Party(None, hidden=True)
    if raw is None:
        return Party(None)
    value = raw.strip()
    lowered = value.lower()
    if lowered in _UNKNOWN_TOKENS:
        return Party(None)
    if " ".join(lowered.split()) in HIDDEN_TOKENS or value.lstrip("+") in HIDDEN_PLACEHOLDERS:
        return Party(None, hidden=True)
    if lowered.startswith(("sip:", "tel:", "client:")):
        value = value.split(":", 1)[1].split("@", 1)[0] or value
    e164 = to_e164(value, region)
    if e164 is not None:
        return Party(e164)
    compact = _SEPARATORS.sub("", value)
    if not _RAW_ALLOWED.match(compact):
        raise PayloadRejected("invalid_number", "a telephone number field is not a number")
    return Party(compact)


def is_mobile(number: str | None) -> bool:
    """Say whether an E.164 number is a mobile one (the sender's mobile, procedure 5.1.3).

    Only numbers ``phonenumbers`` classifies as ``MOBILE`` count: a fixed
    line is not a mobile to which the SLA watcher could text a holding message.
    """
    if number is None or not number.startswith("+"):
        return False
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE

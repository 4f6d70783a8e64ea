"""What a customer letter says, each fact with how it was found (procedure 4.3, 5.1.3.2).

Values are frozen. A ``Found`` pairs a value with its reason; reasons name the
rule that matched (a label, a position in the letter) and never repeat the
value, so they can be logged without personal data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, TypeVar

from schemas.intake import PostalAddress

__all__ = [
    "TSA_CUSTOMER_SERVICE",
    "TSA_LAST_RESORT",
    "Found",
    "LetterFacts",
    "PersonName",
    "Phone",
]

TSA_CUSTOMER_SERVICE = "50001"
"""Customer-service postal box: Service Client TSA 50001 36400 La Châtre (5.1.1)."""
TSA_LAST_RESORT = "60002"
"""Customer-relations director's box: a letter there is an escalation, an RDR dossier (4.9 NB)."""

T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True, slots=True)
class Found(Generic[T_co]):
    """A value read from a letter and the rule that found it."""

    value: T_co
    reason: str


@dataclass(frozen=True, slots=True)
class PersonName:
    """A person's name as written: last name always, first name when it can be told apart."""

    last_name: str
    first_name: str | None = None


@dataclass(frozen=True, slots=True)
class Phone:
    """A phone number in E.164 and whether it can receive text messages (a mobile)."""

    e164: str
    mobile: bool


@dataclass(frozen=True, slots=True)
class LetterFacts:
    """Everything ``extract_letter_facts`` could read from one letter's text."""

    customer_ref: Found[str] | None = None
    name: Found[PersonName] | None = None
    postal_address: Found[PostalAddress] | None = None
    email: Found[str] | None = None
    phones: tuple[Found[Phone], ...] = ()
    invoice_numbers: tuple[Found[str], ...] = ()
    amounts: tuple[Found[Decimal], ...] = ()
    letter_date: Found[dt.date] | None = None
    subject: Found[str] | None = None
    signatory: Found[PersonName] | None = None
    tsa_box: Found[str] | None = None

    @property
    def mobile(self) -> Found[Phone] | None:
        """The first mobile number in the letter, the one the SenderHints contract carries."""
        return next((phone for phone in self.phones if phone.value.mobile), None)

    @property
    def last_resort_hint(self) -> bool:
        """True when the letter itself mentions TSA 60002 (escalation, procedure 4.9 NB)."""
        return self.tsa_box is not None and self.tsa_box.value == TSA_LAST_RESORT

    def reasons(self) -> tuple[str, ...]:
        """One ``field: reason`` line per fact found, safe to log (no values, no personal data)."""
        lines: list[str] = []
        single: dict[str, Found[object] | None] = {
            "customer_ref": self.customer_ref,
            "name": self.name,
            "postal_address": self.postal_address,
            "email": self.email,
            "letter_date": self.letter_date,
            "subject": self.subject,
            "signatory": self.signatory,
            "tsa_box": self.tsa_box,
        }
        for field, found in single.items():
            if found is not None:
                lines.append(f"{field}: {found.reason}")
        many: dict[str, tuple[Found[object], ...]] = {
            "phones": self.phones,
            "invoice_numbers": self.invoice_numbers,
            "amounts": self.amounts,
        }
        for field, items in many.items():
            lines.extend(f"{field}: {found.reason}" for found in items)
        return tuple(lines)

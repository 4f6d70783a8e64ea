"""The ``IntakeItem`` contract: one incoming customer contact, whatever its channel."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from schemas._base import Contract, UtcDatetime, Value

__all__ = [
    "AttachmentRef",
    "CallDetails",
    "Channel",
    "IntakeItem",
    "LetterDetails",
    "PostalAddress",
    "SenderHints",
]

Channel = Literal["email", "letter", "phone"]

CUSTOMER_REF_PATTERN = r"^\d{9}$"
E164_PATTERN = r"^\+[1-9]\d{6,14}$"


class PostalAddress(Value):
    """A postal address as written by the customer (procedure 5.1.3.2)."""

    lines: tuple[str, ...] = ()
    postcode: str | None = Field(default=None, pattern=r"^\d{5}$")
    city: str | None = None


class SenderHints(Value):
    """What the contact says about who sent it; the router identifies the customer from it."""

    customer_ref: str | None = Field(default=None, pattern=CUSTOMER_REF_PATTERN)
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = Field(default=None, max_length=320)
    mobile: str | None = Field(default=None, pattern=E164_PATTERN)
    phone: str | None = Field(default=None, pattern=E164_PATTERN, description="landline")
    postal_address: PostalAddress | None = None


class AttachmentRef(Value):
    """A file kept in the attachment store, referenced by its content hash, never inlined."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    filename: str
    content_type: str
    size: int = Field(ge=0)


class CallDetails(Value):
    """What the telephony platform told us about a handled call."""

    caller: str | None = Field(default=None, description="E.164 when it could be parsed")
    called: str | None = None
    ivr_path: tuple[str, ...] = ()
    agent: str | None = None
    answered: bool = False
    duration_s: int = Field(default=0, ge=0)
    wrap_up_code: str | None = None
    wrap_up_note: str | None = None
    voicemail: bool = False
    closed_by_timeout: bool = Field(default=False, description="no end event ever arrived")


class LetterDetails(Value):
    """Facts read from a letter that the router and agents may use."""

    letter_date: dt.date | None = Field(default=None, description="the date the customer wrote")
    invoice_numbers: tuple[str, ...] = ()
    amounts_eur: tuple[str, ...] = Field(default=(), description="decimal strings, e.g. '412.50'")
    signatory: str | None = None


class IntakeItem(Contract):
    """One incoming contact on ``intake.items.v1`` (procedure 4.1: every request is recorded).

    ``item_id`` is derived from the source (Message-ID + UIDVALIDITY/UID, scan
    batch + file hash, telephony call id) so that re-ingesting a source never
    yields a second item. ``received_at`` is the contact date: for a letter, its
    scan date J (procedure 5.1.4).
    """

    item_id: str = Field(min_length=1, max_length=256)
    channel: Channel
    received_at: UtcDatetime
    source_ref: str = Field(min_length=1, max_length=1024, description="where it came from")
    sender: SenderHints = SenderHints()
    subject: str | None = Field(default=None, max_length=1000)
    text: str = Field(default="", max_length=1_000_000)
    attachments: tuple[AttachmentRef, ...] = ()
    tsa_box: str | None = Field(default=None, pattern=r"^\d{5}$", description="letters only")
    ocr_confidence: float | None = Field(default=None, ge=0, le=100)
    ocr_page_confidences: tuple[float, ...] = ()
    needs_manual_reading: bool = False
    internal: bool = Field(default=False, description="request initiated by the utility (4.2)")
    call: CallDetails | None = None
    letter: LetterDetails | None = None

    def partition_key(self) -> str:
        """Key that keeps one customer's contacts in order on one partition."""
        hints = self.sender
        for value in (hints.customer_ref, hints.email, hints.mobile):
            if value:
                return value.lower()
        return self.item_id

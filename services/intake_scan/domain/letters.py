"""From a letter's text to its facts and its ``IntakeItem`` (procedure 4.3, 4.9 NB, 5.1.1, 5.1.4).

Every customer letter becomes an item: when its text is empty or its OCR
confidence is under the floor the item is flagged for manual reading, never
dropped (4.3: every letter is scanned and attached to a dossier).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from schemas.intake import AttachmentRef, IntakeItem, LetterDetails, SenderHints
from services.intake_scan.domain.facts import TSA_LAST_RESORT, Found, LetterFacts, PersonName
from services.intake_scan.domain.identifiers import (
    find_customer_ref,
    find_email,
    find_invoice_numbers,
    find_phones,
    find_tsa_box,
)
from services.intake_scan.domain.money_dates import find_amounts, find_letter_date
from services.intake_scan.domain.parties import find_sender, find_signatory, find_subject
from services.intake_scan.domain.text import lines_of, normalise

__all__ = [
    "build_letter_item",
    "extract_letter_facts",
    "letter_details",
    "letter_tsa_box",
    "mean_confidence",
    "needs_manual_reading",
]

_MAX_TEXT = 1_000_000
_MAX_SUBJECT = 1000
_BOX = re.compile(r"^[0-9]{5}$")


def extract_letter_facts(text: str) -> LetterFacts:
    """Read what a letter says about its sender and request (5.1.3.2: data on the letter).

    Customer reference, sender's name and address, e-mail, phones, invoice
    numbers, amounts, the letter's own date, its "Objet :" line, signatory and
    TSA box, each with its reason. Missing facts are ``None`` or empty; any
    text, however garbled, yields a ``LetterFacts`` and never an error.
    """
    clean = normalise(text)
    lines = lines_of(clean)
    name, address = find_sender(lines)
    signatory = find_signatory(lines)
    if name is None and signatory is not None:
        name = Found(signatory.value, "signatory (no name in the sender's block)")
    return LetterFacts(
        customer_ref=find_customer_ref(clean),
        name=name,
        postal_address=address,
        email=find_email(clean),
        phones=find_phones(clean),
        invoice_numbers=find_invoice_numbers(clean),
        amounts=find_amounts(clean),
        letter_date=find_letter_date(clean),
        subject=find_subject(clean),
        signatory=signatory,
        tsa_box=find_tsa_box(clean),
    )


def letter_tsa_box(facts: LetterFacts, tsa_box_from_index: str | None) -> Found[str] | None:
    """Decide the item's TSA box from the provider's index and the letter (5.1.1; 4.9 NB).

    TSA 60002 from either source wins, since it makes the letter an escalation
    to the customer-relations director (RDR); otherwise the index, which says
    where the letter was actually received, beats what the customer wrote.
    An index value that is not five digits is ignored.
    """
    index_box = tsa_box_from_index.strip() if tsa_box_from_index else None
    if index_box is not None and not _BOX.match(index_box):
        index_box = None
    if index_box == TSA_LAST_RESORT:
        return Found(TSA_LAST_RESORT, "scan index: received at TSA 60002 (escalation, 4.9)")
    if facts.tsa_box is not None and facts.tsa_box.value == TSA_LAST_RESORT:
        return facts.tsa_box
    if index_box is not None:
        return Found(index_box, "scan index: box the letter was received at")
    return facts.tsa_box


def mean_confidence(page_confidences: Sequence[float]) -> float | None:
    """Mean OCR confidence of a letter, pages without any recognised word left out (4.3).

    A blank page (the verso of a one-sided letter) has confidence 0 and says
    nothing about legibility; if every page is blank the mean is 0. ``None``
    when no page went through OCR (a PDF text layer).
    """
    if not page_confidences:
        return None
    read = [confidence for confidence in page_confidences if confidence > 0]
    return round(sum(read) / len(read), 2) if read else 0.0


def needs_manual_reading(text: str, confidence: float | None, confidence_floor: float) -> bool:
    """True when a person must read the scan: no text, or OCR confidence under the floor (4.3)."""
    return not text.strip() or (confidence is not None and confidence < confidence_floor)


def _full_name(person: PersonName) -> str:
    return f"{person.first_name} {person.last_name}" if person.first_name else person.last_name


def letter_details(facts: LetterFacts) -> LetterDetails | None:
    """The letter's own facts for the router and agents (5.1.4 contact date, 5.1.7.1 billing).

    The date the customer wrote (kept apart from the scan date J, which is
    the contact date), the invoice numbers and euro amounts quoted (as
    two-decimal strings) and who signed. ``None`` when the letter says none of it.
    """
    details = LetterDetails(
        letter_date=facts.letter_date.value if facts.letter_date else None,
        invoice_numbers=tuple(found.value for found in facts.invoice_numbers),
        amounts_eur=tuple(f"{found.value:.2f}" for found in facts.amounts),
        signatory=_full_name(facts.signatory.value) if facts.signatory else None,
    )
    return None if details == LetterDetails() else details


def build_letter_item(
    facts: LetterFacts,
    *,
    item_id: str,
    source_ref: str,
    scanned_at: dt.datetime,
    tsa_box_from_index: str | None,
    text: str,
    page_confidences: Sequence[float],
    confidence_floor: float,
    attachments: Sequence[AttachmentRef] = (),
    manual_reading: bool = False,
) -> IntakeItem:
    """Turn a letter into its ``IntakeItem`` on channel "letter" (4.3, 4.9 NB, 5.1.1, 5.1.4).

    The contact date is the scan date J (5.1.4), never the date written on the
    letter. The sender hints come from the facts (the first mobile number goes
    in ``mobile``, the first landline in ``phone``); the TSA box follows
    ``letter_tsa_box``; the letter's own date, invoice numbers, amounts and
    signatory go in ``letter``. An empty text, a mean OCR confidence under
    ``confidence_floor`` or ``manual_reading`` (another reason a person must
    look, such as pages missing against the scan index) flags the item for
    manual reading: the letter is never dropped. The scanned file travels by
    reference in ``attachments``. Text beyond the contract's limit is cut.
    """
    if scanned_at.tzinfo is None or scanned_at.utcoffset() is None:
        raise ValueError("scanned_at must be timezone-aware (the scan date J, 5.1.4)")
    name = facts.name.value if facts.name is not None else None
    mobile = facts.mobile
    landline = next((phone for phone in facts.phones if not phone.value.mobile), None)
    confidence = mean_confidence(page_confidences)
    box = letter_tsa_box(facts, tsa_box_from_index)
    sender = SenderHints(
        customer_ref=facts.customer_ref.value if facts.customer_ref else None,
        first_name=name.first_name if name else None,
        last_name=name.last_name if name else None,
        email=facts.email.value if facts.email else None,
        mobile=mobile.value.e164 if mobile else None,
        phone=landline.value.e164 if landline else None,
        postal_address=facts.postal_address.value if facts.postal_address else None,
    )
    manual = manual_reading or needs_manual_reading(text, confidence, confidence_floor)
    return IntakeItem(
        item_id=item_id,
        channel="letter",
        received_at=scanned_at,
        source_ref=source_ref,
        sender=sender,
        subject=facts.subject.value[:_MAX_SUBJECT] if facts.subject else None,
        text=text[:_MAX_TEXT],
        tsa_box=box.value if box else None,
        ocr_confidence=confidence,
        ocr_page_confidences=tuple(page_confidences),
        needs_manual_reading=manual,
        attachments=tuple(attachments),
        letter=letter_details(facts),
    )

"""From a parsed mail to the ``IntakeItem`` published on ``intake.items.v1``.

Rules (procedure 4.1: every request is recorded; issue 4: dedupe on
Message-ID + content hash; ARCHITECTURE "Event contracts"): the item id is a
hash of the Message-ID and the content hash, or of the content hash alone when
the mail has none, so that reading the same mail twice (another UID after a
UIDVALIDITY change, a crash before the move) yields the same id. The contact
date is the mail's Date when plausible, else the caller's fallback (the
mailbox's arrival time).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

from schemas import AttachmentRef, IntakeItem
from services.intake_mail.domain.parsing import ParsedMail

__all__ = ["MAX_DATE_AGE", "MAX_DATE_SKEW", "build_intake_item", "contact_date", "item_id_for"]

MAX_DATE_SKEW = dt.timedelta(minutes=15)
"""A Date later than the arrival time by more than this is a wrong clock: not plausible."""
MAX_DATE_AGE = dt.timedelta(days=7)
"""A Date older than the arrival time by more than this is not plausible either."""

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MAX_SUBJECT = 1000
_MAX_TEXT = 1_000_000


def item_id_for(message_id: str | None, content_sha256: str) -> str:
    """Return the stable item id of a mail: ``mail-`` and 32 hex digits.

    Rule (issue 4, IMAP source: "dedupe on Message-ID + content hash";
    ARCHITECTURE: re-ingesting a source never yields a second item). Without a
    Message-ID the content hash alone decides. Nothing personal shows in the id.
    """
    if not _SHA256.match(content_sha256):
        raise ValueError("content_sha256 must be 64 lower-case hex digits")
    message_id = (message_id or "").strip().strip("<>").strip()
    key = f"mid:{message_id}\nsha256:{content_sha256}" if message_id else f"sha256:{content_sha256}"
    return "mail-" + hashlib.sha256(key.encode("utf-8", errors="surrogatepass")).hexdigest()[:32]


def contact_date(mail_date: dt.datetime | None, fallback: dt.datetime) -> dt.datetime:
    """Return the contact date: the mail's Date if plausible, else ``fallback`` (both aware).

    Rule (procedure 4.12: the 48 h e-mail deadline runs from the contact date;
    issue 4). Plausible means no later than ``fallback`` + ``MAX_DATE_SKEW`` and
    no earlier than ``fallback`` - ``MAX_DATE_AGE``; a Date slightly in the
    future is capped at ``fallback``.
    """
    if fallback.tzinfo is None or fallback.utcoffset() is None:
        raise ValueError("received_at_fallback must be an aware datetime")
    fallback = fallback.astimezone(dt.UTC)
    if mail_date is None or mail_date.tzinfo is None:
        return fallback
    if fallback - MAX_DATE_AGE <= mail_date <= fallback + MAX_DATE_SKEW:
        return min(mail_date.astimezone(dt.UTC), fallback)
    return fallback


def build_intake_item(
    parsed: ParsedMail,
    *,
    item_id: str,
    source_ref: str,
    received_at_fallback: dt.datetime,
    attachments: tuple[AttachmentRef, ...],
) -> IntakeItem:
    """Build the ``IntakeItem`` (channel ``email``) of an accepted mail.

    Rule (procedure 4.1 and 5.1.1; issue 4 "Parsing"): the text is the
    customer's message, the sender hints come from the form or else the From
    header (``parse_mail`` decided), attachments are the references the caller
    stored; ``received_at`` follows ``contact_date``. Subject and text are cut
    to the contract's limits.
    """
    subject = parsed.subject[:_MAX_SUBJECT] if parsed.subject else None
    return IntakeItem(
        item_id=item_id,
        channel="email",
        received_at=contact_date(parsed.date, received_at_fallback),
        source_ref=source_ref,
        sender=parsed.sender,
        subject=subject,
        text=parsed.text[:_MAX_TEXT],
        attachments=attachments,
    )

"""``parse_mail``: the raw bytes of one mail to a ``ParsedMail`` (issue 4, "Parsing").

The ``email`` package parses with ``mime_policy.ReadingPolicy``: ``compat32``
message objects whose MIME header values read as ``policy.default`` reads them
(memoised: the package re-reads them a dozen times per part). Where
``policy.default`` raises on one of those values, it is read as ``compat32``
reads it; where the parse fails anyway, the same bytes are parsed again with
plain ``compat32``; both are noted as the ``DefaultPolicyFailed`` defect, and
only when ``compat32`` fails too is the mail rejected as unparseable. Shapes on
which ``policy.default`` is quadratic (thousands of parts, a Content-Type of
thousands of parameters) go straight to ``compat32`` so that one hostile mail
cannot stall the partition. Everything else a real
mailbox contains (wrong charsets, broken boundaries, no content type, 8-bit
headers) is repaired and noted in ``ParsedMail.defects``. Pure: no I/O, no clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import Policy, compat32

from schemas import SenderHints
from services.intake_mail.domain.charsets import clean_text, decode_header_text
from services.intake_mail.domain.form import ContactForm, extract_contact_form
from services.intake_mail.domain.headers import (
    LOOP_HEADERS,
    HeaderView,
    parse_addresses,
    parse_mail_date,
    parse_message_id,
    read_headers,
)
from services.intake_mail.domain.hints import reply_address, sender_hints
from services.intake_mail.domain.html_text import html_to_text
from services.intake_mail.domain.mime_policy import PARSER_ERRORS, ReadingPolicy
from services.intake_mail.domain.parts import MAX_PARTS, MailAttachment, MimeContent, collect_parts
from services.intake_mail.domain.rejections import (
    MailTooLarge,
    NoUsableSender,
    UnparseableMime,
)
from services.intake_mail.domain.replies import customer_text, strip_quoted_history

__all__ = ["ParsedMail", "parse_mail"]

TRACE_FIELDS = frozenset(
    {
        b"received",
        b"x-received",
        b"return-path",
        b"delivered-to",
        b"x-original-to",
        b"envelope-to",
        b"authentication-results",
        b"received-spf",
        b"arc-seal",
        b"arc-message-signature",
        b"arc-authentication-results",
        b"x-spam-status",
        b"x-spam-score",
        b"x-spam-flag",
        b"x-spam-level",
        b"x-virus-scanned",
    }
)
"""Header fields added on the way (trace, verdicts of each hop), not written by the sender."""
_PLAIN_SHARE_OF_HTML = 0.25
_MAX_TEXT_CHARS = 1_000_000
_MAX_HTML_CHARS = 2_000_000
_MAX_MIME_HEADER = 4096
_MIME_HEADER = re.compile(rb"(?im)^content-(?:type|disposition)[ \t]*:(?:[^\r\n]|\r?\n[ \t])*")


@dataclass(frozen=True, slots=True)
class ParsedMail:
    """One mail as the domain understands it: headers, the customer's text, hints, attachments.

    ``text`` is the customer's message (the form's message, or the body without
    quoted history and signature when there is no form or its message is empty);
    ``body_text`` is the whole decoded body.
    ``content_sha256`` hashes the raw bytes with line endings normalised to LF,
    without the header fields each hop of the delivery adds (``Received``,
    ``Delivered-To``…: ``TRACE_FIELDS``): the same mail delivered twice (an MTA
    retry after a lost reply, an alias delivering it again) is one item.
    """

    message_id: str | None
    from_address: str | None
    from_name: str | None
    to_addresses: tuple[str, ...]
    reply_to: tuple[str, ...]
    date: dt.datetime | None
    subject: str | None
    body_text: str
    text: str
    form: ContactForm | None
    sender: SenderHints
    reply_address: str | None
    attachments: tuple[MailAttachment, ...]
    loop_headers: tuple[tuple[str, str], ...]
    content_type: str
    is_delivery_report: bool
    content_sha256: str
    size: int
    defects: tuple[str, ...] = ()

    def header(self, name: str) -> str | None:
        """Return the first kept loop-relevant header value (lower-case name), or None."""
        wanted = name.lower()
        return next((value for key, value in self.loop_headers if key == wanted), None)

    def has_header(self, name: str) -> bool:
        """Tell whether a loop-relevant header field is present at all (even empty)."""
        wanted = name.lower()
        return any(key == wanted for key, _ in self.loop_headers)


def _parse(raw: bytes, policy: Policy) -> tuple[HeaderView, MimeContent, str]:
    message = BytesParser(policy=policy).parsebytes(raw)
    headers = read_headers(message)
    if not headers.fields:
        raise UnparseableMime("no header fields: not an Internet message")
    content = collect_parts(message)
    content.defects.update(type(defect).__name__ for defect in message.defects)
    return headers, content, message.get_content_type()


def _first_policy(raw: bytes) -> Policy:
    """``ReadingPolicy`` unless the mail would make ``policy.default`` slow (quadratic shapes)."""
    if raw.count(b"\n--") > 2 * MAX_PARTS:
        return compat32
    for match in _MIME_HEADER.finditer(raw):
        if match.end() - match.start() > _MAX_MIME_HEADER:
            return compat32
    return ReadingPolicy()


def _parse_robustly(raw: bytes) -> tuple[HeaderView, MimeContent, str]:
    policy = _first_policy(raw)
    try:
        headers, content, content_type = _parse(raw, policy)
        if policy is compat32:
            content.defects.add("DefaultPolicySkipped")
        elif isinstance(policy, ReadingPolicy) and policy.failures:
            content.defects.add("DefaultPolicyFailed")
    except PARSER_ERRORS:
        try:
            headers, content, content_type = _parse(raw, compat32)
        except PARSER_ERRORS as exc:
            raise UnparseableMime(f"MIME parser failed: {type(exc).__name__}") from exc
        content.defects.add("DefaultPolicyFailed")
    return headers, content, content_type


def _body(content: MimeContent) -> tuple[str, str]:
    """Return (body text, HTML-derived text): plain text unless it is empty or a stub."""
    plain = clean_text(
        "\n\n".join(text for text in content.plain if text.strip())[:_MAX_TEXT_CHARS]
    )
    html = "\n".join(content.html)[:_MAX_HTML_CHARS]
    from_html = html_to_text(html)[:_MAX_TEXT_CHARS] if html.strip() else ""
    if from_html and len(plain) < len(from_html) * _PLAIN_SHARE_OF_HTML:
        return from_html, from_html
    return plain, from_html


def _form(body_text: str, html_text: str) -> ContactForm | None:
    for candidate in (body_text, html_text):
        if candidate:
            form = extract_contact_form(strip_quoted_history(candidate) or candidate)
            if form is not None:
                return form
    return None


def _form_text(form: ContactForm) -> str:
    message = clean_text(form.message)
    if form.subject and message:
        return f"{form.subject}\n\n{message}".strip()
    return message


def _usable(hints: SenderHints) -> bool:
    """Someone can be answered or identified: address, phone, reference, or name and address."""
    if hints.email or hints.mobile or hints.phone or hints.customer_ref:
        return True
    return bool(hints.last_name and hints.postal_address)


def _as_written(data: bytes) -> bytes:
    """The mail as its sender wrote it: LF line endings, no trace header fields."""
    normal = data.replace(b"\r\n", b"\n")
    head, blank, body = normal.partition(b"\n\n")
    kept: list[bytes] = []
    skipping = False
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t"):  # a folded continuation of the field above
            if not skipping:
                kept.append(line)
            continue
        skipping = line.split(b":", 1)[0].strip().lower() in TRACE_FIELDS
        if not skipping:
            kept.append(line)
    return b"\n".join(kept) + blank + body


def parse_mail(raw: bytes, *, max_bytes: int) -> ParsedMail:
    """Parse the raw bytes of one mail into a ``ParsedMail`` or raise ``MailRejected``.

    Rules (issue 4, "Parsing" and "Bad input"; procedure 5.1.1 "Les e-mails"):
    over ``max_bytes`` → ``MailTooLarge``; no header fields or a MIME parser
    failure → ``UnparseableMime``; undecodable body text → ``UndecodableCharset``;
    nobody to answer or identify (no valid e-mail address, phone number or
    customer reference, nor a name with a postal address) → ``NoUsableSender``.
    Any bytes either return a ``ParsedMail`` or raise one of these.
    """
    data = bytes(raw)
    if len(data) > max_bytes:
        raise MailTooLarge(f"mail of {len(data)} bytes is over the limit of {max_bytes} bytes")
    if not data.strip():
        raise UnparseableMime("empty input")
    digest = hashlib.sha256(_as_written(data)).hexdigest()
    headers, content, content_type = _parse_robustly(data.lstrip(b"\r\n"))
    body_text, html_text = _body(content)
    form = _form(body_text, html_text)
    text = (_form_text(form) if form is not None else "") or customer_text(body_text)
    senders = parse_addresses(headers.all("from")) or parse_addresses(headers.all("sender"))
    sender = senders[0] if senders else None
    reply_to = tuple(box.address for box in parse_addresses(headers.all("reply-to")))
    subject = decode_header_text(headers.first("subject") or "") or None
    hints = sender_hints(form, sender, reply_to, f"{subject or ''}\n{body_text}")
    if not _usable(hints):
        raise NoUsableSender("no valid sender address, phone number or customer reference")
    return ParsedMail(
        message_id=parse_message_id(headers.first("message-id")),
        from_address=sender.address if sender else None,
        from_name=sender.name if sender else None,
        to_addresses=tuple(box.address for box in parse_addresses(headers.all("to"))),
        reply_to=reply_to,
        date=parse_mail_date(headers.first("date")),
        subject=subject,
        body_text=body_text,
        text=text,
        form=form,
        sender=hints,
        reply_address=reply_address(form, hints, sender, reply_to),
        attachments=tuple(content.attachments),
        loop_headers=tuple(
            (name, decode_header_text(value)[:1000])
            for name, value in headers.fields
            if name in LOOP_HEADERS
        ),
        content_type=content_type,
        is_delivery_report=content.report,
        content_sha256=digest,
        size=len(data),
        defects=tuple(sorted(content.defects)),
    )

"""Walking the MIME tree of a mail: body text parts, HTML parts and attachments.

Rules (issue 4, "Parsing"): a text part without a file name that is not marked
``attachment`` is body text; every other leaf is an attachment returned with
its bytes, SHA-256 and size for the caller to store (``winmail.dat`` included,
as it came); a nested ``message/rfc822`` is kept whole as an ``.eml``
attachment; a multipart whose boundary is missing or wrong is re-split on the
boundary its body actually uses, else read as plain text; nesting deeper than
``MAX_DEPTH`` and parts beyond ``MAX_PARTS`` are dropped (and noted as defects).
"""

from __future__ import annotations

import hashlib
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32

from schemas import AttachmentRef
from services.intake_mail.domain.charsets import decode_body, decode_header_text

__all__ = ["MAX_DEPTH", "MAX_PARTS", "MailAttachment", "MimeContent", "collect_parts"]

MAX_DEPTH = 20
MAX_PARTS = 500
REPORT_TYPES = frozenset(
    {
        "multipart/report",
        "message/delivery-status",
        "message/global-delivery-status",
        "message/disposition-notification",
        "message/feedback-report",
    }
)
_BODY_TYPES = frozenset({"text/plain", "text/html"})
_EXTENSIONS = {
    "application/pdf": ".pdf",
    "application/ms-tnef": ".dat",
    "application/vnd.ms-tnef": ".dat",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/tiff": ".tif",
    "text/plain": ".txt",
    "text/html": ".html",
    "text/calendar": ".ics",
    "message/rfc822": ".eml",
    "message/delivery-status": ".txt",
    "text/rfc822-headers": ".txt",
}
_BOUNDARY_LINE = re.compile(r"(?m)^--([^\s\"\\]{1,200}?)(?:--)?[ \t]*\r?$")
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f\"*:<>?|]")
_MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class MailAttachment:
    """One attachment of a mail, with what the caller needs to store and reference it."""

    filename: str
    content_type: str
    data: bytes
    sha256: str
    size: int

    def ref(self) -> AttachmentRef:
        """Return the ``AttachmentRef`` that points at this attachment once stored by its hash."""
        return AttachmentRef(
            sha256=self.sha256, filename=self.filename, content_type=self.content_type,
            size=self.size,
        )  # fmt: skip


@dataclass(slots=True)
class MimeContent:
    """What the walk found: decoded plain and HTML texts, attachments, report flag, defects."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[MailAttachment] = field(default_factory=list)
    report: bool = False
    defects: set[str] = field(default_factory=set)
    parts: int = 0


def _attachment(data: bytes, filename: str, content_type: str) -> MailAttachment:
    return MailAttachment(
        filename=filename, content_type=content_type, data=data,
        sha256=hashlib.sha256(data).hexdigest(), size=len(data),
    )  # fmt: skip


def _raw_filename(part: Message) -> str:
    """The file name the part declares (Content-Disposition, else Content-Type ``name``)."""
    raw = part.get_filename() or part.get_param("name")
    if isinstance(raw, tuple):
        raw = raw[2]
    return str(raw) if raw else ""


def _filename(raw: str, content_type: str, index: int) -> str:
    name = decode_header_text(raw) if raw else ""
    name = _UNSAFE_NAME.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip(" .")
    if not name:
        name = f"part-{index}{_EXTENSIONS.get(content_type, '.bin')}"
    if len(name) > _MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        keep_ext = dot and len(ext) <= 10
        name = f"{stem[: _MAX_NAME - len(ext) - 1]}.{ext}" if keep_ext else name[:_MAX_NAME]
    return name


def _payload_bytes(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _message_bytes(part: Message) -> bytes | None:
    payload = part.get_payload()
    if not isinstance(payload, list) or not payload or not isinstance(payload[0], Message):
        return _payload_bytes(part) or None
    buffer = io.BytesIO()
    generator = BytesGenerator(buffer, mangle_from_=False, maxheaderlen=0, policy=compat32)
    generator.flatten(payload[0], linesep="\r\n")
    return buffer.getvalue()


def _repaired(part: Message) -> Message | None:
    """Re-split a multipart whose declared boundary does not match its body."""
    body = part.get_payload()
    if not isinstance(body, str):
        return None
    counts = Counter(_BOUNDARY_LINE.findall(body))
    if not counts:
        return None
    boundary, seen = counts.most_common(1)[0]
    if seen < 2 and f"--{boundary}--" not in body:
        return None
    header = f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
    data = (header + body).encode("utf-8", errors="surrogateescape")
    repaired = BytesParser(policy=compat32).parsebytes(data)
    return repaired if repaired.is_multipart() else None


def _collect(part: Message, depth: int, found: MimeContent) -> None:
    found.parts += 1
    if found.parts > MAX_PARTS:
        found.defects.add("TooManyParts")
        return
    found.defects.update(type(defect).__name__ for defect in part.defects)
    content_type = part.get_content_type()
    if content_type in REPORT_TYPES:
        found.report = True
    if depth > MAX_DEPTH:
        found.defects.add("NestingTooDeep")
        return
    if content_type.startswith("message/") and content_type not in REPORT_TYPES:
        data = _message_bytes(part)
        if data:
            name = _filename(_raw_filename(part), "message/rfc822", found.parts)
            found.attachments.append(_attachment(data, name, "message/rfc822"))
        return
    payload = part.get_payload()
    if isinstance(payload, list):
        for child in payload:
            if isinstance(child, Message):
                _collect(child, depth + 1, found)
        return
    if content_type.startswith("multipart/"):
        repaired = _repaired(part)
        if repaired is not None:
            found.defects.add("BoundaryRepaired")
            _collect(repaired, depth + 1, found)
            return
        found.plain.append(decode_body(_payload_bytes(part), part.get_content_charset()))
        return
    _leaf(part, content_type, found)


def _leaf(part: Message, content_type: str, found: MimeContent) -> None:
    disposition = part.get_content_disposition()
    raw_name = _raw_filename(part)
    if content_type in _BODY_TYPES and disposition != "attachment" and not raw_name:
        text = decode_body(_payload_bytes(part), part.get_content_charset())
        (found.plain if content_type == "text/plain" else found.html).append(text)
        return
    data = _payload_bytes(part)
    if not data and not raw_name:
        return
    name = _filename(raw_name, content_type, found.parts)
    found.attachments.append(_attachment(data, name, content_type))


def collect_parts(message: Message) -> MimeContent:
    """Walk a parsed message and return its body texts and attachments (see module docstring).

    Rule (issue 4, "Parsing": nested message/rfc822, winmail.dat, broken
    boundaries, missing content type read as text/plain). Raises
    ``UndecodableCharset`` when a body text part cannot be decoded.
    """
    found = MimeContent()
    _collect(message, 0, found)
    return found

"""The acknowledgement e-mail: the French Jinja2 template, rendered into a loop-safe message.

Procedure 4.12 NB and 5.1.1 "Les e-mails": every customer who writes through
the contact form receives an automatic "accusé de réception de prise en
charge"; 5.1.7: the national TSA address appears on every mail sent to a
customer. RFC 3834: the message says it is automatic (``Auto-Submitted:
auto-replied``), answers the customer's message (``In-Reply-To``) and carries
a Message-ID derived from the item id, so that a resend can be recognised.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import re
import zoneinfo
from dataclasses import dataclass
from email.charset import QP, Charset
from email.utils import format_datetime, formataddr, parseaddr

import jinja2

__all__ = [
    "TSA_ADDRESS",
    "AcknowledgementRenderer",
    "RenderedAcknowledgement",
    "acknowledgement_message_id",
]

TSA_ADDRESS = "Service Client TSA 50001 36400 La Chatre"
"""The national single address (procedure 5.1.1 "Les courriers" and 5.1.7)."""
RESPONSE_DELAY = "48 heures"
"""The e-mail response commitment (procedure 4.12)."""
TEMPLATE = "accuse_reception.txt.j2"

_PARIS = zoneinfo.ZoneInfo("Europe/Paris")
_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip
_MESSAGE_ID = re.compile(r"^<[^\s<>()\"]{1,900}>$")
_WORD_BYTES = 42
_MAX_ASCII_SUBJECT = 60
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


@dataclass(frozen=True, slots=True)
class RenderedAcknowledgement:
    """The acknowledgement, ready for the relay."""

    message_id: str
    data: bytes


def acknowledgement_message_id(item_id: str, from_address: str) -> str:
    """The deterministic Message-ID of an item's acknowledgement (one per item, 4.12 NB)."""
    return f"<{item_id}.ar@{_domain_of(from_address)}>"


@functools.lru_cache(maxsize=16)
def _domain_of(from_address: str) -> str:
    return parseaddr(from_address)[1].rpartition("@")[2] or "aiguillage.invalid"


def french_date(moment: dt.datetime) -> str:
    """``3 mars 2025 à 10 h 15``, in Paris time."""
    local = moment.astimezone(_PARIS)
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year} à {local.hour} h {local:%M}"


class AcknowledgementRenderer:
    """Renders the bundled template (or one from ``directory``) into messages."""

    def __init__(self, from_address: str, directory: str | None = None) -> None:
        loader: jinja2.BaseLoader = (
            jinja2.FileSystemLoader(directory)
            if directory
            else jinja2.PackageLoader("services.intake_mail", "templates")
        )
        environment = jinja2.Environment(
            loader=loader,
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # noqa: S701 - plain-text mail, never HTML
            keep_trailing_newline=True,
        )
        self._template = environment.get_template(TEMPLATE)
        self._from = from_address
        name, address = parseaddr(from_address)
        self._from_header = formataddr((name, address), charset="utf-8")

    def render(
        self,
        *,
        item_id: str,
        recipient: str,
        contact_date: dt.datetime,
        in_reply_to: str | None,
        now: dt.datetime,
    ) -> RenderedAcknowledgement:
        """Build the acknowledgement of one item (procedure 4.12 NB, 5.1.7; RFC 3834)."""
        variables = {
            "reference": item_id,
            "received_on": french_date(contact_date),
            "response_delay": RESPONSE_DELAY,
            "tsa_address": TSA_ADDRESS,
        }
        module = self._template.make_module(variables)
        message_id = acknowledgement_message_id(item_id, self._from)
        subject = str(getattr(module, "subject", "Accusé de réception"))
        headers = [
            ("MIME-Version", "1.0"),
            ("From", self._from_header),
            ("To", recipient),
            ("Subject", _encoded_words(subject)),
            ("Date", format_datetime(now.astimezone(dt.UTC))),
            ("Message-ID", message_id),
        ]
        if in_reply_to and _MESSAGE_ID.match(in_reply_to):
            headers += [("In-Reply-To", in_reply_to), ("References", in_reply_to)]
        headers += [
            ("Auto-Submitted", "auto-replied"),
            ("X-Auto-Response-Suppress", "All"),
            ("X-Aiguillage-Item", item_id),
            ("Content-Type", 'text/plain; charset="utf-8"'),
            ("Content-Transfer-Encoding", "quoted-printable"),
        ]
        return RenderedAcknowledgement(message_id, _assemble(headers, str(module)))


def _encoded_words(text: str) -> str:
    """The header value of ``text``: as is when ASCII, else RFC 2047 base64 encoded words.

    Each word carries whole characters, at most ``_WORD_BYTES`` bytes of UTF-8,
    so that a folded line stays under 78 characters; decoders join adjacent
    words without the folding white space. (``email.header.Header`` does the
    same in milliseconds, measuring every split it tries.)
    """
    if text.isascii() and len(text) <= _MAX_ASCII_SUBJECT:
        return text
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in text:
        width = len(char.encode("utf-8", errors="surrogatepass"))
        if size + width > _WORD_BYTES and chunk:
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(char)
        size += width
    if chunk:
        words.append("".join(chunk))
    return "\r\n ".join(
        f"=?utf-8?b?{base64.b64encode(word.encode('utf-8', errors='replace')).decode()}?="
        for word in words
    )


def _assemble(headers: list[tuple[str, str]], body: str) -> bytes:
    """The message bytes: headers, a blank line, the quoted-printable body, CRLF line ends.

    Built by hand: the ``email`` generators spend milliseconds per message
    folding headers that need none. Only our own folding (a line break followed
    by a space, from ``_encoded_words``) may appear in a value: any other line
    break would inject a header, and raises ``ValueError``.
    """
    lines = []
    for name, value in headers:
        folded = value.replace("\r\n ", "\n ").replace("\n ", "\r\n ")
        if "\r" in folded.replace("\r\n ", "") or "\n" in folded.replace("\r\n ", ""):
            raise ValueError(f"line break in the {name} header")
        lines.append(f"{name}: {folded}")
    encoded = (_UTF8_QP.body_encode(body) or "").replace("\r\n", "\n").replace("\n", "\r\n")
    return ("\r\n".join(lines) + "\r\n\r\n" + encoded).encode("utf-8")

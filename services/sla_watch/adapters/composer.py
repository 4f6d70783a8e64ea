"""Holding mails as MIME messages, from the Jinja2 French templates in ``templates/``.

The Message-ID is derived from the action id (one per deadline), so a mail
sent again after a crash is the same message, which receiving systems can
recognise as a duplicate. ``Auto-Submitted`` keeps auto-responders quiet.

``encode`` gives the bytes handed to SMTP. Building an ``EmailMessage`` costs
about a millisecond (every header is parsed into objects, then folded back),
more than the rest of a send; for the usual mail — a bare ASCII address and
ids — ``encode`` writes the same headers and a quoted-printable body itself,
and falls back to ``compose`` for anything else. A test parses both and
checks they say the same.
"""

from __future__ import annotations

import binascii
import datetime as dt
import hashlib
import re
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from services.sla_watch.domain import PARIS, HoldingMailFacts

__all__ = ["MailComposer", "french_date", "message_id_for"]

# A bare addr-spec and header values that need neither encoding nor folding.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_PLAIN_VALUE = re.compile(r"[\x21-\x7e]{1,200}")

_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip


def french_date(at: dt.datetime, *, with_time: bool = True, zone: ZoneInfo = PARIS) -> str:
    """Wall-clock date in French (Paris's, or the customer's region's), e.g. ``1er juin 2026
    à 10 h 00``."""
    local = at.astimezone(zone)
    day = "1er" if local.day == 1 else str(local.day)
    text = f"{day} {_MONTHS[local.month - 1]} {local.year}"
    return f"{text} à {local.hour} h {local.minute:02d}" if with_time else text


def message_id_for(action_id: str, domain: str) -> str:
    """The deterministic Message-ID of a holding mail (one per deadline, 4.12)."""
    digest = hashlib.sha256(action_id.encode()).hexdigest()[:32]
    return f"<sla.{digest}@{domain}>"


class MailComposer:
    """Renders the holding-mail templates into an ``EmailMessage``."""

    def __init__(self, *, mail_from: str) -> None:
        self._from = mail_from
        self._from_header = SMTP.fold_binary("From", mail_from)  # encoded and folded once
        environment = Environment(
            loader=PackageLoader("services.sla_watch", "templates"),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,
        )
        # Compiled once: rendering is then a plain function call (no loader, no stat).
        self._subject = environment.get_template("holding_mail_subject.txt.j2")
        self._body = environment.get_template("holding_mail.txt.j2")

    def render(self, facts: HoldingMailFacts) -> tuple[str, str]:
        """Subject and plain-text body of the holding mail (4.11, 4.12, 5.1.7)."""
        values = {
            "reference": facts.dossier_id,
            "customer_ref": facts.customer_ref,
            "received_on": french_date(facts.received_at, with_time=False, zone=facts.zone),
            "due_on": french_date(facts.due_at, zone=facts.zone),
            "apologies": facts.apologies,
        }
        subject = self._subject.render(values).strip()
        body = self._body.render(values)
        return subject, body

    def compose(
        self, facts: HoldingMailFacts, *, recipient: str, message_id: str, now: dt.datetime
    ) -> EmailMessage:
        """The MIME message of a holding mail, dated ``now``, with its deterministic Message-ID."""
        subject, body = self.render(facts)
        message = EmailMessage()
        message["From"] = self._from
        message["To"] = recipient
        message["Subject"] = subject
        message["Date"] = format_datetime(now.astimezone(PARIS))
        message["Message-ID"] = message_id
        message["Auto-Submitted"] = "auto-generated"
        message["X-Aiguillage-Dossier"] = facts.dossier_id
        message.set_content(body, charset="utf-8", cte="quoted-printable")
        message["Content-Language"] = "fr"  # after set_content, which drops Content-* headers
        return message

    def encode(
        self, facts: HoldingMailFacts, *, recipient: str, message_id: str, now: dt.datetime
    ) -> bytes:
        """The holding mail as the bytes to send (CRLF lines): what ``compose`` would give,
        written directly when the address and ids are plain ASCII (4.12)."""
        plain = (
            _PLAIN_ADDRESS.fullmatch(recipient)
            and _PLAIN_VALUE.fullmatch(message_id)
            and _PLAIN_VALUE.fullmatch(facts.dossier_id)
        )
        if not plain:
            message = self.compose(facts, recipient=recipient, message_id=message_id, now=now)
            return message.as_bytes(policy=SMTP)
        subject, body = self.render(facts)
        date = format_datetime(now.astimezone(PARIS))
        head = b"".join(
            (
                self._from_header,
                b"To: %s\r\n" % recipient.encode(),
                SMTP.fold_binary("Subject", subject),
                b"Date: %s\r\n" % date.encode(),
                b"Message-ID: %s\r\n" % message_id.encode(),
                b"Auto-Submitted: auto-generated\r\n",
                b"X-Aiguillage-Dossier: %s\r\n" % facts.dossier_id.encode(),
                b'Content-Type: text/plain; charset="utf-8"\r\n',
                b"Content-Transfer-Encoding: quoted-printable\r\n",
                b"MIME-Version: 1.0\r\nContent-Language: fr\r\n\r\n",
            )
        )
        lines = body.replace("\r\n", "\n").encode()
        return head + binascii.b2a_qp(lines, istext=True).replace(b"\n", b"\r\n")

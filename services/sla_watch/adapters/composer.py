"""Holding mails as MIME messages, from the Jinja2 French templates in ``templates/``.

The Message-ID is derived from the action id (one per deadline), so a mail
sent again after a crash is the same message, which receiving systems can
recognise as a duplicate. ``Auto-Submitted`` keeps auto-responders quiet.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from email.message import EmailMessage
from email.utils import format_datetime

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from services.sla_watch.domain import PARIS, HoldingMailFacts

__all__ = ["MailComposer", "french_date", "message_id_for"]

_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip


def french_date(at: dt.datetime, *, with_time: bool = True) -> str:
    """Paris wall-clock date in French, e.g. ``1er juin 2026 à 10 h 00``."""
    local = at.astimezone(PARIS)
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
        self._env = Environment(
            loader=PackageLoader("services.sla_watch", "templates"),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def render(self, facts: HoldingMailFacts) -> tuple[str, str]:
        """Subject and plain-text body of the holding mail (4.11, 4.12, 5.1.7)."""
        values = {
            "reference": facts.dossier_id,
            "customer_ref": facts.customer_ref,
            "received_on": french_date(facts.received_at, with_time=False),
            "due_on": french_date(facts.due_at),
            "apologies": facts.apologies,
        }
        subject = self._env.get_template("holding_mail_subject.txt.j2").render(values).strip()
        body = self._env.get_template("holding_mail.txt.j2").render(values)
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
        message["Content-Language"] = "fr"
        message["X-Aiguillage-Dossier"] = facts.dossier_id
        message.set_content(body, charset="utf-8", cte="quoted-printable")
        return message

"""Whether a parsed mail is a customer contact or automatic mail (not a contact).

Procedure 4.1 (every customer request is recorded) and 4.8 (a new contact on an
open dossier makes it a multi-contact): an auto-reply, a bounce, a read receipt
or a mailing-list message is not a customer writing to us, and publishing it
would make the router signal a false multi-contact. ``automatic_reason`` (RFC
3834) says a machine sent the mail; a mail whose contact form could be read is
a customer's nonetheless (the website's form robot writes on their behalf).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.intake_mail.domain.acknowledgement import automatic_reason
from services.intake_mail.domain.parsing import ParsedMail

__all__ = ["Triage", "triage"]


@dataclass(frozen=True, slots=True)
class Triage:
    """A customer contact or not, and why (the reason carries no personal data)."""

    customer_contact: bool
    reason: str


def triage(parsed: ParsedMail) -> Triage:
    """Tell a customer contact from automatic mail (procedure 4.1 and 4.8; RFC 3834).

    Automatic (not published, filed apart and counted): whatever
    ``automatic_reason`` recognises (Auto-Submitted, X-Autoreply, bounces and
    delivery or read reports, mailing lists, Precedence bulk/junk/list), unless
    a contact form was read from the mail. Everything else is a customer contact.
    """
    reason = automatic_reason(parsed)
    if reason is None:
        return Triage(customer_contact=True, reason="customer mail")
    if parsed.form is not None:
        return Triage(customer_contact=True, reason="contact form, although " + reason)
    return Triage(customer_contact=False, reason=reason)

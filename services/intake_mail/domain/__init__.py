"""The pure domain of intake_mail: a raw mail to an ``IntakeItem``, and whether to acknowledge it.

Procedure P_NAT_CLI_10, 5.1.1 "Les e-mails" (the contact form), 4.1 (every
request is recorded), 4.12 NB (automatic acknowledgement); issue 4 "Parsing",
"Acknowledgement" and "Bad input". No I/O, no clock, no settings.
"""

from services.intake_mail.domain.acknowledgement import (
    Decision,
    acknowledgement_decision,
    automatic_reason,
)
from services.intake_mail.domain.form import ContactForm, extract_contact_form
from services.intake_mail.domain.items import build_intake_item, contact_date, item_id_for
from services.intake_mail.domain.parsing import ParsedMail, parse_mail
from services.intake_mail.domain.parts import MailAttachment
from services.intake_mail.domain.rejections import (
    MailRejected,
    MailTooLarge,
    NoUsableSender,
    UndecodableCharset,
    UnparseableMime,
)
from services.intake_mail.domain.triage import Triage, triage

__all__ = [
    "ContactForm",
    "Decision",
    "MailAttachment",
    "MailRejected",
    "MailTooLarge",
    "NoUsableSender",
    "ParsedMail",
    "Triage",
    "UndecodableCharset",
    "UnparseableMime",
    "acknowledgement_decision",
    "automatic_reason",
    "build_intake_item",
    "contact_date",
    "extract_contact_form",
    "item_id_for",
    "parse_mail",
    "triage",
]

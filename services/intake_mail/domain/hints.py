"""Who sent a mail, as hints for the router: from the contact form, else from the headers.

Rule (issue 4, "Parsing": identity hints; procedure 5.1.1 "Les e-mails" and
5.1.3.2 "la vérification se fait sur la base des informations présentes sur
l'e-mail"). A form mail's hints are its fields, normalised; when the form's
e-mail is unusable, Reply-To then From stand in; a landline typed in the
mobile field becomes ``phone`` (and a mobile typed in a landline field
``mobile``). A plain mail's hints are its From address and display name, plus
a customer reference the mail announces ("référence client : …"). The
acknowledgement goes to the form's e-mail, else to Reply-To, else to From.
"""

from __future__ import annotations

from schemas import SenderHints
from services.intake_mail.domain.form import ContactForm
from services.intake_mail.domain.headers import Mailbox
from services.intake_mail.domain.identity import (
    find_customer_ref,
    normalise_customer_ref,
    normalise_email,
    normalise_landline,
    normalise_mobile,
    normalise_name,
    parse_postal_address,
    split_display_name,
)

__all__ = ["reply_address", "sender_hints"]


def _header_address(sender: Mailbox | None, reply_to: tuple[str, ...]) -> str | None:
    if reply_to:
        return reply_to[0]
    return sender.address if sender else None


def sender_hints(
    form: ContactForm | None, sender: Mailbox | None, reply_to: tuple[str, ...], text: str
) -> SenderHints:
    """Return the normalised identity hints of a mail (see module docstring).

    Rule (issue 4, identity hints; procedure 5.1.1, 5.1.3.2). ``text`` is where
    a plain mail may announce its customer reference (subject and body).
    """
    if form is not None:
        return SenderHints(
            customer_ref=(
                normalise_customer_ref(form.customer_ref) or find_customer_ref(form.message)
            ),
            first_name=normalise_name(form.first_name),
            last_name=normalise_name(form.last_name),
            email=normalise_email(form.email) or _header_address(sender, reply_to),
            mobile=normalise_mobile(form.mobile) or normalise_mobile(form.landline),
            phone=normalise_landline(form.landline) or normalise_landline(form.mobile),
            postal_address=parse_postal_address(
                form.address, postcode=form.postcode, city=form.city
            ),
        )
    first, last = split_display_name(sender.name) if sender else (None, None)
    return SenderHints(
        customer_ref=find_customer_ref(text),
        first_name=first,
        last_name=last,
        email=sender.address if sender else _header_address(None, reply_to),
    )


def reply_address(
    form: ContactForm | None,
    hints: SenderHints,
    sender: Mailbox | None,
    reply_to: tuple[str, ...],
) -> str | None:
    """Return where an acknowledgement of this mail would go, or None.

    Rule (procedure 4.12 NB / 5.1.1: the customer who wrote receives the
    acknowledgement): the form's e-mail, else Reply-To, else From.
    """
    if form is not None and hints.email:
        return hints.email
    return _header_address(sender, reply_to)

"""intake_mail errors: one base, named subclasses; foreign errors are translated at the boundary.

Bad input is not an error here: the domain's ``MailRejected`` sends a mail to
quarantine with its reason. These are the infrastructure failures a pass can
meet; the mailbox loop reconnects and retries after each of them, so the mail
concerned stays in the mailbox and is read again.
"""

from __future__ import annotations

from services.common.retry import OUTAGE

__all__ = [
    "TRANSIENT_ERRORS",
    "AcknowledgementNotSent",
    "IntakeMailError",
    "MailboxMisconfigured",
    "MailboxUnavailable",
]


class IntakeMailError(Exception):
    """Base of intake_mail's own errors."""


class MailboxUnavailable(IntakeMailError):
    """The mailbox cannot be reached or answered in an unexpected way (reconnect and retry)."""


class MailboxMisconfigured(IntakeMailError):
    """The mailbox refuses what we need (login, folder, TLS): retried, but logged as an error."""


class AcknowledgementNotSent(IntakeMailError):
    """The SMTP relay did not accept an acknowledgement, or may not have.

    ``permanent`` is true when the relay refused it for good (5xx: bad
    recipient, policy): it is not retried. ``ambiguous`` is true when the
    message was handed over but no answer came: it may have left, so it is
    never resent. ``reason`` names the error class and SMTP code only, never an
    address.
    """

    def __init__(self, reason: str, *, permanent: bool, ambiguous: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.ambiguous = ambiguous


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (IntakeMailError, *OUTAGE, TimeoutError)
"""Infrastructure failures after which a pass or a sweep is retried (never bad input)."""

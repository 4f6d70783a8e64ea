"""sla_watch errors: one base, named subclasses; foreign errors are translated at the boundary."""

from __future__ import annotations

from services.common.dlq import PoisonMessage

__all__ = [
    "UNFOLDABLE",
    "ClockError",
    "MailDeferred",
    "MailError",
    "MailRejected",
    "MailUncertain",
    "SettingsError",
    "SlaWatchError",
    "UnprocessableDossier",
]


class SlaWatchError(Exception):
    """Base of sla_watch's own errors."""


class SettingsError(SlaWatchError, ValueError):
    """A setting or the SLA policy file is invalid (raised at start-up)."""


class ClockError(SlaWatchError, ValueError):
    """The clock file is missing or does not hold an aware ISO-8601 instant."""


# What the deadline rules raise on events they cannot fold: a contract value they do not
# know (ValueError, pydantic's ValidationError), a date the calendar cannot reach
# (OverflowError, an ArithmeticError: a contact in year 9999).
UNFOLDABLE: tuple[type[Exception], ...] = (ValueError, ArithmeticError)


class UnprocessableDossier(PoisonMessage, SlaWatchError):
    """A dossier event that the deadline rules cannot fold (goes to the DLQ with its reason)."""

    def __init__(self, dossier_id: str, error: Exception) -> None:
        super().__init__(
            "sla_unprocessable", f"dossier {dossier_id}: {type(error).__name__} in deadline rules"
        )


class MailError(SlaWatchError):
    """Sending a holding mail failed; ``code`` is an SMTP reply code or a short error name."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class MailRejected(MailError):
    """The server refused the mail for good (5xx): it was not sent and never will be."""


class MailDeferred(MailError):
    """The mail was certainly not accepted (no connection, 4xx): retry later."""


class MailUncertain(MailError):
    """The connection broke during DATA: the server may or may not have queued the mail."""

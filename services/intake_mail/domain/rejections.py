"""Why a mail cannot become an intake item: one base error, named subclasses.

Procedure 4.1 says every request is recorded; a mail that cannot be read goes to
quarantine with its reason instead (issue 4, "Bad input"), so that a person can
look at it and nothing is lost. ``reason_code`` is stable (it is counted and
travels in the ``DeadLetter``); ``reason`` is a short sentence without personal data.
"""

from __future__ import annotations

__all__ = [
    "MailRejected",
    "MailTooLarge",
    "NoUsableSender",
    "UndecodableCharset",
    "UnparseableMime",
]


class MailRejected(Exception):
    """A mail that cannot become an ``IntakeItem``; it goes to quarantine with its reason.

    Rule "Bad input" of issue 4 (procedure 4.1: nothing is lost, a person reads it).
    ``reason_code`` matches ``^[a-z][a-z0-9_]*$`` like ``DeadLetter.reason_code``.
    """

    def __init__(self, reason_code: str, reason: str) -> None:
        super().__init__(f"{reason_code}: {reason}")
        self.reason_code = reason_code
        self.reason = reason


class UnparseableMime(MailRejected):
    """The bytes are not an Internet message (no header fields, or the MIME parser failed)."""

    def __init__(self, reason: str) -> None:
        super().__init__("unparseable_mime", reason)


class NoUsableSender(MailRejected):
    """Neither the headers nor the contact form give an address, a mobile or a customer ref."""

    def __init__(self, reason: str) -> None:
        super().__init__("no_usable_sender", reason)


class MailTooLarge(MailRejected):
    """The raw mail is over the configured size limit."""

    def __init__(self, reason: str) -> None:
        super().__init__("over_size_limit", reason)


class UndecodableCharset(MailRejected):
    """The message text is in a charset that neither its label nor any fallback decodes."""

    def __init__(self, reason: str) -> None:
        super().__init__("undecodable_charset", reason)

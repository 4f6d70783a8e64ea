"""What sla_watch needs from the outside world: a clock and a mailer (tiny Protocols)."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from typing import Protocol

__all__ = ["Clock", "Mailer"]


class Clock(Protocol):
    """Tells the time the SLA rules run on (aware UTC); tests and demos move it."""

    def now(self) -> dt.datetime:
        """The current instant, aware, in UTC."""
        ...


class Mailer(Protocol):
    """Hands a message to the mail server, telling apart "refused", "not sent" and "unknown"."""

    async def send(self, message: EmailMessage, *, sender: str, recipient: str) -> None:
        """Send one message; raise ``MailRejected``, ``MailDeferred`` or ``MailUncertain``."""
        ...

    async def close(self) -> None:
        """Close any open connection."""
        ...

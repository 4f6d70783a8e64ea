"""What sla_watch needs from the outside world: a clock and a mailer (tiny Protocols)."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

__all__ = ["Clock", "Mailer"]


class Clock(Protocol):
    """Tells the time the SLA rules run on (aware UTC); tests and demos move it."""

    def now(self) -> dt.datetime:
        """The current instant, aware, in UTC."""
        ...


class Mailer(Protocol):
    """Hands a message to the mail server, telling apart "refused", "not sent" and "unknown"."""

    async def send(self, message: bytes, *, sender: str, recipient: str) -> None:
        """Send one encoded message (CRLF lines); raise ``MailRejected``, ``MailDeferred`` or
        ``MailUncertain``. Concurrent calls are allowed (the adapter bounds them)."""
        ...

    async def close(self) -> None:
        """Close any open connection."""
        ...

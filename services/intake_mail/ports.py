"""The ports intake_mail needs: a mail source, a mailer, an attachment store.

Real adapters live in ``adapters/`` (IMAP, Maildir, aiosmtplib, files); tests
use the same adapters on real servers, or small fakes implementing these
Protocols.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from schemas import AttachmentRef
from services.intake_mail.domain import MailAttachment

__all__ = [
    "AttachmentStore",
    "FetchedMail",
    "FolderState",
    "ItemPublisher",
    "MailSession",
    "MailSource",
    "Mailer",
]


@dataclass(frozen=True, slots=True)
class FolderState:
    """The selected folder and its UIDVALIDITY (RFC 3501 2.3.1.1): UIDs are keyed by both."""

    folder: str
    uidvalidity: int


@dataclass(frozen=True, slots=True)
class FetchedMail:
    """One mail read from the source; ``raw`` is None when it is over the size limit."""

    uid: str
    raw: bytes | None
    size: int
    arrived_at: dt.datetime | None


class MailSource(Protocol):
    """A mailbox: open it, list what waits, fetch, move elsewhere, wait for news.

    The mailbox loop may ask for ``pending`` or ``fetch`` while a ``move`` of the
    previous batch is under way (other UIDs): an adapter serializes what its
    protocol cannot interleave.
    """

    account: str

    async def open(self) -> FolderState:
        """Connect, create the target folders when missing, select the mailbox."""
        ...

    async def pending(self, limit: int) -> list[str]:
        """UIDs of the mails still in the mailbox, oldest first, at most ``limit``."""
        ...

    async def fetch(self, uids: Sequence[str], max_bytes: int) -> list[FetchedMail]:
        """The mails of ``uids`` without marking them seen; over ``max_bytes``: size only."""
        ...

    async def move(self, uids: Sequence[str], folder: str) -> None:
        """Move mails to ``folder`` (never delete them)."""
        ...

    async def wait_for_mail(self, timeout: float) -> None:
        """Return when new mail may have arrived, or after ``timeout`` seconds."""
        ...

    async def close(self) -> None:
        """Log out and close the connection (best effort)."""
        ...


class MailSession(Protocol):
    """One connection to the SMTP relay."""

    async def send(self, envelope_from: str, recipient: str, message: bytes) -> None:
        """Hand one message to the relay or raise ``AcknowledgementNotSent``."""
        ...


class Mailer(Protocol):
    """Opens SMTP sessions (``AcknowledgementNotSent`` when the relay is unreachable)."""

    def session(self) -> AbstractAsyncContextManager[MailSession]:
        """A connected session for a share of a batch of messages (several may be open)."""
        ...

    async def close(self) -> None:
        """Close the connections kept between sessions (at shutdown)."""
        ...


class AttachmentStore(Protocol):
    """Keeps attachment bytes, content-addressed; items carry references only."""

    async def save(self, attachments: Sequence[MailAttachment]) -> tuple[AttachmentRef, ...]:
        """Store the bytes (idempotent by hash) and return their references, in order."""
        ...


class ItemPublisher(Protocol):
    """Publishes to one topic (a FastStream ``KafkaPublisher``); without confirmation it
    returns the acknowledgement to await."""

    async def publish(self, message: bytes, *, key: bytes, no_confirm: bool) -> Any:
        """Publish ``message`` under ``key``."""
        ...

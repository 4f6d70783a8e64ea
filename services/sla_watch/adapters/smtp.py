"""The SMTP mailer (aiosmtplib): one kept-alive connection, errors sorted by what they mean.

What matters for exactly-once is *when* a failure happened. Before DATA
(connect, EHLO, STARTTLS, AUTH, MAIL, RCPT) nothing was handed over:
``MailDeferred`` (4xx, network, timeout) or ``MailRejected`` (5xx). A reply to
DATA is the server's verdict. A broken connection or a timeout while DATA is
in flight is the one case where the server may have queued the mail without
our knowing: ``MailUncertain``. Each phase is bounded by ``timeout_s``, so one
send never outlasts two timeouts (the sender's lease is sized on that).
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from email.policy import SMTP
from typing import Literal

import aiosmtplib
from pydantic import SecretStr

from services.sla_watch.errors import MailDeferred, MailRejected, MailUncertain

__all__ = ["SmtpMailer"]

_NETWORK = (aiosmtplib.SMTPException, OSError, TimeoutError)


def _refusal(error: aiosmtplib.SMTPResponseException) -> MailRejected | MailDeferred:
    code = str(error.code)
    return MailRejected(code) if 500 <= error.code < 600 else MailDeferred(code)


class SmtpMailer:
    """Sends holding mails through an SMTP server (plain, STARTTLS or implicit TLS)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: Literal["none", "starttls", "tls"],
        username: str | None,
        password: SecretStr | None,
        timeout_s: float,
    ) -> None:
        self._host = host
        self._port = port
        self._security = security
        self._username = username
        self._password = password
        self._timeout = timeout_s
        self._client: aiosmtplib.SMTP | None = None

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            use_tls=self._security == "tls",
            start_tls=self._security == "starttls",
            username=self._username,
            password=self._password.get_secret_value() if self._password else None,
            timeout=self._timeout,
        )
        try:
            await client.connect()
        except aiosmtplib.SMTPResponseException as error:
            client.close()
            raise _refusal(error) from error
        except _NETWORK as error:
            client.close()
            raise MailDeferred(type(error).__name__) from error
        self._client = client
        return client

    async def _envelope(self, sender: str, recipient: str) -> aiosmtplib.SMTP:
        """Open (or reuse) the connection and send MAIL and RCPT; nothing is handed over yet."""
        kept = self._client if self._client is not None and self._client.is_connected else None
        client = kept or await self._connect()
        try:
            await client.mail(sender)
            await client.rcpt(recipient)
        except UnicodeEncodeError as error:
            await self._reset()
            raise MailRejected("address_not_ascii") from error
        except aiosmtplib.SMTPResponseException as error:
            await self._reset()
            raise _refusal(error) from error
        except _NETWORK as error:
            self._abort()
            if kept is None:
                raise MailDeferred(type(error).__name__) from error
            return await self._envelope(sender, recipient)  # the kept connection had gone stale
        return client

    async def send(self, message: EmailMessage, *, sender: str, recipient: str) -> None:
        """Send one message: ``MailRejected``/``MailDeferred`` when it surely was not handed
        over, ``MailUncertain`` when the connection broke while DATA was in flight."""
        try:
            async with asyncio.timeout(self._timeout):
                client = await self._envelope(sender, recipient)
        except TimeoutError as error:
            self._abort()
            raise MailDeferred("timeout") from error
        try:
            async with asyncio.timeout(self._timeout):
                await client.data(message.as_bytes(policy=SMTP))
        except aiosmtplib.SMTPResponseException as error:
            await self._reset()
            raise _refusal(error) from error
        except _NETWORK as error:
            self._abort()
            raise MailUncertain(type(error).__name__) from error

    async def _reset(self) -> None:
        if self._client is None or not self._client.is_connected:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._client.rset()
        except _NETWORK:
            self._abort()

    def _abort(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def close(self) -> None:
        """Say QUIT when possible and forget the connection."""
        client, self._client = self._client, None
        if client is None or not client.is_connected:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await client.quit()
        except _NETWORK:
            client.close()

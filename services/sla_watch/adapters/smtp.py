"""The SMTP mailer (aiosmtplib): a few kept-alive connections, errors sorted by what they mean.

What matters for exactly-once is *when* a failure happened. Before DATA
(connect, EHLO, STARTTLS, AUTH, MAIL, RCPT) nothing was handed over:
``MailDeferred`` (4xx, network, timeout) or ``MailRejected`` (5xx). A reply to
DATA is the server's verdict. A broken connection or a timeout while DATA is
in flight is the one case where the server may have queued the mail without
our knowing: ``MailUncertain``. Each phase is bounded by ``timeout_s``, so one
send never outlasts two timeouts (the sender's lease is sized on that).

Throughput comes from a small pool: up to ``connections`` sessions, each
carrying one mail at a time (aiosmtplib does not pipeline, and a server need
not offer PIPELINING), reused for the next mail (no reconnect per mail).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

import aiosmtplib
from pydantic import SecretStr

from services.common.logging import get_logger
from services.sla_watch.errors import MailDeferred, MailRejected, MailUncertain

__all__ = ["SmtpMailer"]

log = get_logger(__name__)

_NETWORK = (aiosmtplib.SMTPException, OSError, TimeoutError)


def _refusal(error: aiosmtplib.SMTPResponseException) -> MailRejected | MailDeferred:
    """A refusal of this mail (RCPT, DATA): 5xx for good, anything else for now."""
    code = str(error.code)
    return MailRejected(code) if 500 <= error.code < 600 else MailDeferred(code)


def _refuses_us(step: str, error: aiosmtplib.SMTPResponseException) -> MailDeferred:
    """A refusal of the service itself (greeting, AUTH, MAIL FROM), whatever its code: a
    wrong sender address, a changed password or a lost relay permission says nothing of
    the customer's address, and must not turn every queued mail into a call for good. The
    mail stays queued (backoff) and ops are told; past its deadline it becomes a call."""
    log.error("smtp.server_refuses_the_service", step=step, code=error.code)
    return MailDeferred(f"{step}:{error.code}")


@dataclass(frozen=True, slots=True)
class _Server:
    host: str
    port: int
    security: Literal["none", "starttls", "tls"]
    username: str | None
    password: SecretStr | None
    timeout: float


class _Session:
    """One kept-alive SMTP connection, used by one send at a time."""

    def __init__(self, server: _Server) -> None:
        self._server = server
        self._client: aiosmtplib.SMTP | None = None

    async def _connect(self) -> aiosmtplib.SMTP:
        server = self._server
        client = aiosmtplib.SMTP(
            hostname=server.host,
            port=server.port,
            use_tls=server.security == "tls",
            start_tls=server.security == "starttls",
            username=server.username,
            password=server.password.get_secret_value() if server.password else None,
            timeout=server.timeout,
        )
        try:
            await client.connect()
        except aiosmtplib.SMTPResponseException as error:  # greeting, STARTTLS, AUTH
            client.close()
            raise _refuses_us("connect", error) from error
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
        except aiosmtplib.SMTPResponseException as error:
            await self._reset()
            raise _refuses_us("mail_from", error) from error
        except _NETWORK as error:
            self.abort()
            if kept is None:
                raise MailDeferred(type(error).__name__) from error
            return await self._envelope(sender, recipient)  # the kept connection had gone stale
        try:
            await client.rcpt(recipient)
        except UnicodeEncodeError as error:
            await self._reset()
            raise MailRejected("address_not_ascii") from error
        except aiosmtplib.SMTPResponseException as error:
            await self._reset()
            raise _refusal(error) from error
        except _NETWORK as error:
            self.abort()
            if kept is None:
                raise MailDeferred(type(error).__name__) from error
            return await self._envelope(sender, recipient)  # the kept connection had gone stale
        return client

    async def send(self, data: bytes, sender: str, recipient: str) -> None:
        timeout = self._server.timeout
        try:
            async with asyncio.timeout(timeout):
                client = await self._envelope(sender, recipient)
        except TimeoutError as error:
            self.abort()
            raise MailDeferred("timeout") from error
        try:
            async with asyncio.timeout(timeout):
                await client.data(data)
        except aiosmtplib.SMTPResponseException as error:
            await self._reset()
            raise _refusal(error) from error
        except _NETWORK as error:
            self.abort()
            raise MailUncertain(type(error).__name__) from error

    async def _reset(self) -> None:
        if self._client is None or not self._client.is_connected:
            return
        try:
            async with asyncio.timeout(self._server.timeout):
                await self._client.rset()
        except _NETWORK:
            self.abort()

    def abort(self) -> None:
        """Drop the connection without a word (its state is unknown)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def close(self) -> None:
        """Say QUIT when possible and forget the connection."""
        client, self._client = self._client, None
        if client is None or not client.is_connected:
            return
        try:
            async with asyncio.timeout(self._server.timeout):
                await client.quit()
        except _NETWORK:
            client.close()


class SmtpMailer:
    """Sends holding mails through an SMTP server (plain, STARTTLS or implicit TLS), over
    up to ``connections`` kept-alive connections, one send on each at a time."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: Literal["none", "starttls", "tls"],
        username: str | None,
        password: SecretStr | None,
        timeout_s: float,
        connections: int = 1,
    ) -> None:
        self._server = _Server(host, port, security, username, password, timeout_s)
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[_Session] = []  # at most ``connections`` sessions ever exist

    async def send(self, message: bytes, *, sender: str, recipient: str) -> None:
        """Send one encoded message: ``MailRejected``/``MailDeferred`` when it surely was not
        handed over, ``MailUncertain`` when the connection broke while DATA was in flight. With
        all connections busy, waits for one (callers bound their concurrency to ``connections``)."""
        async with self._slots:
            session = self._idle.pop() if self._idle else _Session(self._server)
            try:
                await session.send(message, sender, recipient)
            except asyncio.CancelledError:
                session.abort()  # cancelled mid-dialogue: the connection's state is unknown
                raise
            finally:
                self._idle.append(session)

    async def close(self) -> None:
        """Say QUIT on every idle connection and forget them."""
        sessions, self._idle = self._idle, []
        await asyncio.gather(*(session.close() for session in sessions))

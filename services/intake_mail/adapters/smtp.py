"""The SMTP relay (aiosmtplib): sessions over kept-alive connections.

The acknowledger opens a few sessions per batch and sends on them
concurrently, one message at a time on each (aiosmtplib does not pipeline).
Up to ``keep_alive`` connections that ended their session in a clean state
are kept for the next batch (no connect, EHLO and login per batch); one the
relay has dropped meanwhile is noticed before anything is handed over (at
MAIL or RCPT) and replaced once, transparently.

Foreign errors are translated into ``AcknowledgementNotSent``: a 5xx answer
(refused recipient, policy) is permanent and never retried; a 4xx answer, a
lost connection or a timeout before DATA is transient; a lost connection or a
timeout after DATA was sent is ambiguous (the relay may have the message).
Reasons carry the error class and SMTP code only, never an address.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiosmtplib

from services.intake_mail.errors import AcknowledgementNotSent
from services.intake_mail.settings import IntakeMailSettings, Security

__all__ = ["SmtpMailer", "SmtpSession"]

_TRANSIENT = (aiosmtplib.SMTPException, OSError, TimeoutError)
_QUIT_TIMEOUT_S = 5.0


def _translate(exc: BaseException) -> AcknowledgementNotSent:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [error.code for error in exc.recipients]
        permanent = bool(codes) and all(code >= 500 for code in codes)
        return AcknowledgementNotSent(f"recipient refused {codes}", permanent=permanent)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return AcknowledgementNotSent(
            f"{type(exc).__name__} {exc.code}", permanent=500 <= exc.code < 600
        )
    return AcknowledgementNotSent(type(exc).__name__, permanent=False)


class SmtpSession:
    """A connected aiosmtplib client, one message at a time; replaced once if found stale."""

    def __init__(
        self,
        client: aiosmtplib.SMTP,
        connect: Callable[[], Awaitable[aiosmtplib.SMTP]],
        *,
        reused: bool = False,
    ) -> None:
        self.client: aiosmtplib.SMTP | None = client
        self._connect = connect
        self._reused = reused

    @property
    def clean(self) -> bool:
        """Connected and between transactions: fit to be kept for another session."""
        return self.client is not None and self.client.is_connected

    async def send(self, envelope_from: str, recipient: str, message: bytes) -> None:
        """Hand one message to the relay (``MAIL FROM:<>`` when ``envelope_from`` is empty).

        An error before DATA means not sent (the transaction is reset); a refusal
        of DATA too; but no answer after DATA was sent is *ambiguous*: the relay
        may have taken the message, so it must not be resent. A kept connection
        the relay dropped fails at MAIL or RCPT, before anything was handed
        over: it is replaced once and the message sent on the new one.
        """
        client = await self._envelope(envelope_from, recipient)
        try:
            await client.data(message)
        except aiosmtplib.SMTPResponseException as exc:
            raise _translate(exc) from exc
        except _TRANSIENT as exc:
            self.abort()
            raise AcknowledgementNotSent(
                f"no answer to DATA: {type(exc).__name__}", permanent=False, ambiguous=True
            ) from exc
        self._reused = True

    async def _envelope(self, envelope_from: str, recipient: str) -> aiosmtplib.SMTP:
        client = self.client
        if client is None or not client.is_connected:
            self.abort()
            try:
                client = self.client = await self._connect()
            except _TRANSIENT as exc:
                raise _translate(exc) from exc
            self._reused = False
        smtputf8 = not recipient.isascii()
        if smtputf8 and not client.supports_extension("smtputf8"):
            raise AcknowledgementNotSent("non-ASCII recipient, no SMTPUTF8", permanent=True)
        options, encoding = (["SMTPUTF8"], "utf-8") if smtputf8 else ([], "ascii")
        try:
            await client.mail(envelope_from, options=options, encoding=encoding)
            await client.rcpt(recipient, encoding=encoding)
        except aiosmtplib.SMTPResponseException as exc:
            with contextlib.suppress(*_TRANSIENT):
                await client.rset()
            raise _translate(exc) from exc
        except _TRANSIENT as exc:
            self.abort()
            if not self._reused:
                raise _translate(exc) from exc
            self._reused = False  # the kept connection had gone stale: one fresh attempt
            return await self._envelope(envelope_from, recipient)
        return client

    def abort(self) -> None:
        """Drop the connection without a word (its state is unknown)."""
        client, self.client = self.client, None
        if client is not None:
            client.close()


class SmtpMailer:
    """Opens sessions on the configured relay: plain, STARTTLS or TLS, with optional login."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: Security,
        user: str = "",
        password: str = "",
        timeout: float = 30.0,
        ca_file: Path | None = None,
        keep_alive: int = 0,
    ) -> None:
        self._host, self._port, self._security = host, port, security
        self._user, self._password = user, password
        self._timeout = timeout
        self._ca_file = ca_file
        self._keep_alive = keep_alive
        self._idle: list[aiosmtplib.SMTP] = []

    @classmethod
    def from_settings(cls, settings: IntakeMailSettings) -> SmtpMailer:
        """The mailer the settings describe."""
        return cls(
            host=settings.smtp_host,
            port=settings.resolved_smtp_port(),
            security=settings.smtp_security,
            user=settings.smtp_user,
            password=settings.smtp_secret(),
            timeout=settings.smtp_timeout_s,
            ca_file=settings.smtp_ca_file,
            keep_alive=settings.ack_concurrency,
        )

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[SmtpSession]:
        """A connected (and authenticated) session: a kept connection, else a new one."""
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:
                session = SmtpSession(client, self._connect, reused=True)
                break
            client.close()  # the relay dropped it while it was kept
        else:
            try:
                session = SmtpSession(await self._connect(), self._connect)
            except _TRANSIENT as exc:
                raise _translate(exc) from exc
        try:
            yield session
        except BaseException:
            session.abort()  # interrupted mid-dialogue: the connection's state is unknown
            raise
        kept = session.client
        if kept is not None and session.clean and len(self._idle) < self._keep_alive:
            self._idle.append(kept)
        elif kept is not None:
            await _quit(kept)

    async def close(self) -> None:
        """Say QUIT on every kept connection and forget them."""
        clients, self._idle = self._idle, []
        await asyncio.gather(*(_quit(client) for client in clients))

    async def _connect(self) -> aiosmtplib.SMTP:
        context = None
        if self._security != "plain":
            cafile = str(self._ca_file) if self._ca_file else None
            context = ssl.create_default_context(cafile=cafile)
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            timeout=self._timeout,
            use_tls=self._security == "tls",
            start_tls=self._security == "starttls",
            tls_context=context,
        )
        try:
            await client.connect()
            if client.is_ehlo_or_helo_needed:
                await client.ehlo()  # learn the extensions (SMTPUTF8) before the first message
            if self._user:
                await client.login(self._user, self._password)
        except BaseException:
            client.close()
            raise
        return client


async def _quit(client: aiosmtplib.SMTP) -> None:
    """QUIT when possible (bounded), else just close."""
    try:
        async with asyncio.timeout(_QUIT_TIMEOUT_S):
            await client.quit()
    except _TRANSIENT:
        client.close()

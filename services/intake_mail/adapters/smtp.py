"""The SMTP relay (aiosmtplib): one session per batch of acknowledgements.

Foreign errors are translated into ``AcknowledgementNotSent``: a 5xx answer
(refused recipient, policy) is permanent and never retried; a 4xx answer, a
lost connection or a timeout before DATA is transient; a lost connection or a
timeout after DATA was sent is ambiguous (the relay may have the message).
Reasons carry the error class and SMTP code only, never an address.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiosmtplib

from services.intake_mail.errors import AcknowledgementNotSent
from services.intake_mail.settings import IntakeMailSettings, Security

__all__ = ["SmtpMailer", "SmtpSession"]

_TRANSIENT = (aiosmtplib.SMTPException, OSError, TimeoutError)


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
    """A connected aiosmtplib client."""

    def __init__(self, client: aiosmtplib.SMTP) -> None:
        self._client = client

    async def send(self, envelope_from: str, recipient: str, message: bytes) -> None:
        """Hand one message to the relay (``MAIL FROM:<>`` when ``envelope_from`` is empty).

        An error before DATA means not sent (the transaction is reset); a refusal
        of DATA too; but no answer after DATA was sent is *ambiguous*: the relay
        may have taken the message, so it must not be resent.
        """
        smtputf8 = not recipient.isascii()
        if smtputf8 and not self._client.supports_extension("smtputf8"):
            raise AcknowledgementNotSent("non-ASCII recipient, no SMTPUTF8", permanent=True)
        options, encoding = (["SMTPUTF8"], "utf-8") if smtputf8 else ([], "ascii")
        try:
            await self._client.mail(envelope_from, options=options, encoding=encoding)
            await self._client.rcpt(recipient, encoding=encoding)
        except _TRANSIENT as exc:
            with contextlib.suppress(*_TRANSIENT):
                await self._client.rset()
            raise _translate(exc) from exc
        try:
            await self._client.data(message)
        except aiosmtplib.SMTPResponseException as exc:
            raise _translate(exc) from exc
        except _TRANSIENT as exc:
            raise AcknowledgementNotSent(
                f"no answer to DATA: {type(exc).__name__}", permanent=False, ambiguous=True
            ) from exc


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
    ) -> None:
        self._host, self._port, self._security = host, port, security
        self._user, self._password = user, password
        self._timeout = timeout
        self._ca_file = ca_file

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
        )

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[SmtpSession]:
        """A connected (and authenticated) session, closed on exit."""
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
        except _TRANSIENT as exc:
            raise _translate(exc) from exc
        try:
            yield SmtpSession(client)
        finally:
            with contextlib.suppress(*_TRANSIENT):
                await client.quit()

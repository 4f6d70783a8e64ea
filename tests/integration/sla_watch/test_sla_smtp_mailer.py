"""The SMTP adapter against a real aiosmtpd server: what each failure means for exactly-once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from pydantic import SecretStr

from services.common.embedded import free_port
from services.sla_watch.adapters.smtp import SmtpMailer
from services.sla_watch.errors import MailDeferred, MailRejected, MailUncertain

pytestmark = [pytest.mark.smtp]


class Server:
    """Replies as told: ``rcpt``/``data`` hold the reply code, ``stall`` never answers DATA."""

    def __init__(self, **smtp_options: Any) -> None:
        self.mail_from = "250 OK"
        self.rcpt = "250 OK"
        self.data = "250 Message accepted"
        self.stall = False
        self.received: list[bytes] = []
        self.sessions: set[object] = set()
        self.port = free_port()
        server = self

        class _Handler:
            async def handle_MAIL(
                self, srv: Any, session: Any, envelope: Any, address: str, options: Any
            ) -> str:
                envelope.mail_from = address
                return server.mail_from

            async def handle_RCPT(
                self, srv: Any, session: Any, envelope: Any, address: str, options: Any
            ) -> str:
                envelope.rcpt_tos.append(address)
                return server.rcpt

            async def handle_DATA(self, srv: Any, session: Any, envelope: Any) -> str:
                server.received.append(envelope.original_content)
                server.sessions.add(session.peer)
                if server.stall:
                    await asyncio.sleep(5)
                return server.data

        self.controller = Controller(
            _Handler(), hostname="127.0.0.1", port=self.port, **smtp_options
        )


@pytest.fixture
def server() -> Iterator[Server]:
    instance = Server()
    instance.controller.start()
    yield instance
    instance.controller.stop()


def mailer(port: int) -> SmtpMailer:
    return SmtpMailer(
        host="127.0.0.1", port=port, security="none", username=None, password=None, timeout_s=1
    )


def message() -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "sc@eau.example"
    mail["To"] = "client@example.test"
    mail["Subject"] = "Votre demande : réponse à venir"
    mail.set_content("Délai dépassé ?\n.\nUne ligne avec un point seul.", charset="utf-8")
    return mail


async def send(smtp: SmtpMailer, recipient: str = "client@example.test") -> None:
    await smtp.send(message().as_bytes(policy=SMTP), sender="sc@eau.example", recipient=recipient)


async def test_sla_mails_go_over_one_kept_connection(server: Server) -> None:
    smtp = mailer(server.port)
    await send(smtp)
    await send(smtp)
    await smtp.close()
    assert len(server.received) == 2
    assert b"\r\n..\r\n" not in server.received[0]  # dot-stuffing undone by the server


@pytest.mark.parametrize(
    ("field", "reply", "error"),
    [
        pytest.param("rcpt", "550 No such user", MailRejected, id="rcpt-refused"),
        pytest.param("rcpt", "451 Try again later", MailDeferred, id="rcpt-deferred"),
        pytest.param("data", "554 Rejected as spam", MailRejected, id="data-refused"),
        pytest.param("data", "452 Mailbox full", MailDeferred, id="data-deferred"),
    ],
)
async def test_sla_server_replies_tell_refused_from_deferred(
    server: Server, field: str, reply: str, error: type[Exception]
) -> None:
    setattr(server, field, reply)
    smtp = mailer(server.port)
    with pytest.raises(error) as caught:
        await send(smtp)
    assert getattr(caught.value, "code", None) == reply[:3]
    setattr(server, field, "250 OK")
    await send(smtp)  # the connection was reset and is still usable
    await smtp.close()


async def test_sla_a_refusal_of_the_service_itself_defers_the_mail(server: Server) -> None:
    """A 5xx at MAIL FROM (a wrong sender address, a lost relay permission) says nothing of
    the customer's address: it used to record every queued mail as refused, for good."""
    server.mail_from = "553 Sender address rejected"
    smtp = mailer(server.port)
    with pytest.raises(MailDeferred) as caught:
        await send(smtp)
    assert caught.value.code == "mail_from:553"
    server.mail_from = "250 OK"
    await send(smtp)
    await smtp.close()


async def test_sla_a_failed_login_defers_the_mail() -> None:
    """A changed password (535 at AUTH) is the service's problem, not the customer's."""

    def refuse(*_args: object) -> AuthResult:
        return AuthResult(success=False, handled=False)

    server = Server(authenticator=refuse, auth_require_tls=False)
    server.controller.start()
    try:
        smtp = SmtpMailer(
            host="127.0.0.1",
            port=server.port,
            security="none",
            username="sla",
            password=SecretStr("changed"),
            timeout_s=1,
        )
        with pytest.raises(MailDeferred) as caught:
            await send(smtp)
        assert caught.value.code == "connect:535"
        assert server.received == []
    finally:
        server.controller.stop()


async def test_sla_no_server_means_not_sent() -> None:
    with pytest.raises(MailDeferred):
        await send(mailer(free_port()))


async def test_sla_non_ascii_address_is_refused_for_good(server: Server) -> None:
    with pytest.raises(MailRejected, match="address_not_ascii"):
        await send(mailer(server.port), recipient="élodie@exemple.fr")


async def test_sla_silence_after_data_is_an_unknown_outcome(server: Server) -> None:
    server.stall = True
    smtp = mailer(server.port)
    with pytest.raises(MailUncertain):
        await send(smtp)
    assert len(server.received) == 1  # the server has it: resending would duplicate it
    server.stall = False
    await send(smtp)  # a fresh connection is opened
    await smtp.close()


async def test_sla_concurrent_sends_share_a_bounded_pool_of_kept_connections(
    server: Server,
) -> None:
    smtp = SmtpMailer(
        host="127.0.0.1",
        port=server.port,
        security="none",
        username=None,
        password=None,
        timeout_s=1,
        connections=2,
    )
    await asyncio.gather(*(send(smtp) for _ in range(6)))
    await asyncio.gather(*(send(smtp) for _ in range(4)))
    await smtp.close()
    assert len(server.received) == 10
    assert len(server.sessions) == 2  # the pool's connections, reused for every mail

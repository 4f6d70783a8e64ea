"""The SMTP adapter against a real aiosmtpd peer: what is sent, what is refused for good, what is
worth retrying, and what is ambiguous (no answer after DATA: never resent)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from services.common.embedded import free_port
from services.intake_mail.adapters.smtp import SmtpMailer
from services.intake_mail.errors import AcknowledgementNotSent

pytestmark = [pytest.mark.smtp]


class Relay:
    """Accepts mail, except: refused@ (550 at RCPT), busy@ (451 at DATA), slow@ (no answer)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str]]] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.startswith("refused@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        (recipient,) = envelope.rcpt_tos
        if recipient.startswith("busy@"):
            return "451 4.3.0 try again later"
        if recipient.startswith("slow@"):
            await asyncio.sleep(2)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 accepted"


@pytest.fixture
def relay() -> Iterator[tuple[Relay, int]]:
    handler, port = Relay(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    yield handler, port
    controller.stop()


async def _send(port: int, recipient: str, timeout: float = 5) -> None:
    mailer = SmtpMailer(host="127.0.0.1", port=port, security="plain", timeout=timeout)
    async with mailer.session() as session:
        await session.send("", recipient, b"Subject: test\r\n\r\nBonjour\r\n")


async def test_sent_refused_retried_and_ambiguous(relay: tuple[Relay, int]) -> None:
    handler, port = relay
    await _send(port, "client@example.test")
    await _send(port, "clïent@exemple.test")  # SMTPUTF8
    assert handler.received == [
        ("<>", ["client@example.test"]),
        ("<>", ["clïent@exemple.test"]),
    ]
    with pytest.raises(AcknowledgementNotSent) as refused:
        await _send(port, "refused@example.test")
    assert (refused.value.permanent, refused.value.ambiguous) == (True, False)
    assert "@" not in refused.value.reason
    with pytest.raises(AcknowledgementNotSent) as busy:
        await _send(port, "busy@example.test")
    assert (busy.value.permanent, busy.value.ambiguous) == (False, False)
    with pytest.raises(AcknowledgementNotSent) as slow:
        await _send(port, "slow@example.test", timeout=0.5)
    assert slow.value.ambiguous


async def test_an_unreachable_relay_fails_the_session_not_a_message() -> None:
    mailer = SmtpMailer(host="127.0.0.1", port=free_port(), security="plain", timeout=2)
    with pytest.raises(AcknowledgementNotSent) as unreachable:
        async with mailer.session():
            pass
    assert not unreachable.value.permanent

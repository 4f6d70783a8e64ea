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


async def test_kept_connections_are_reused_and_replaced_once_the_relay_dropped_them() -> None:
    handler, port = Relay(), free_port()

    def serve() -> Controller:
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        return controller

    controller = serve()
    mailer = SmtpMailer(host="127.0.0.1", port=port, security="plain", timeout=5, keep_alive=1)
    try:
        async with mailer.session() as session:
            await session.send("", "first@example.test", b"Subject: 1\r\n\r\nBonjour\r\n")
            kept = session.client
        async with mailer.session() as session:
            assert session.client is kept, "the connection was kept for the next session"
            await session.send("", "second@example.test", b"Subject: 2\r\n\r\nBonjour\r\n")
        # The relay restarts; no await in between, so the kept connection still looks
        # open: MAIL fails on it, before anything was handed over, and a new one is used.
        controller.stop()
        controller = serve()
        async with mailer.session() as session:
            await session.send("", "third@example.test", b"Subject: 3\r\n\r\nBonjour\r\n")
            assert session.client is not kept
    finally:
        await mailer.close()
        controller.stop()
    assert [recipients for _, recipients in handler.received] == [
        ["first@example.test"],
        ["second@example.test"],
        ["third@example.test"],
    ]

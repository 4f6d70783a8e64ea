"""The IMAP adapter on a real Dovecot: folders, UID SEARCH, BODY.PEEK[], MOVE and its fallback,
IDLE, STARTTLS and TLS, and a lost connection translated into ``MailboxUnavailable``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aioimaplib import IMAP4

from services.intake_mail.adapters import imap
from services.intake_mail.adapters.imap import ImapSource
from services.intake_mail.errors import MailboxMisconfigured, MailboxUnavailable
from services.intake_mail.settings import Security
from services.intake_mail.testing import DovecotServer, ImapMailbox, normalised_hash

pytestmark = [pytest.mark.imap]

USER = "service-client@eau.example.org"
PASSWORD = "secret-imap"

FOLDERS = ("Traités", "Quarantaine", "Automatiques")


def _mail(n: int, body: bytes = b"Bonjour") -> bytes:
    return (
        (
            f"From: Client {n} <client{n}@example.test>\r\nTo: {USER}\r\nSubject: Demande {n}\r\n"
            f"Message-ID: <imap-{n}@example.test>\r\n\r\n"
        ).encode()
        + body
        + b"\r\n"
    )


def _source(
    server: DovecotServer,
    *,
    port: int | None = None,
    security: Security = "plain",
    ca_file: Path | None = None,
    password: str = PASSWORD,
) -> ImapSource:
    return ImapSource(
        host=server.host,
        port=port or server.port,
        security=security,
        user=USER,
        password=password,
        mailbox="INBOX",
        folders=FOLDERS,
        account="imap://test",
        timeout=5,
        ca_file=ca_file,
    )


async def _flags(mailbox: ImapMailbox) -> list[bytes]:
    client = IMAP4(mailbox.host, mailbox.port, timeout=5)
    await client.wait_hello_from_server()
    await client.login(USER, PASSWORD)
    await client.select("INBOX")
    response = await client.uid("fetch", "1:*", "(UID FLAGS)")
    await client.logout()
    return [bytes(line) for line in response.lines[:-1]]


async def test_open_fetch_and_move_never_mark_seen_nor_delete(
    dovecot: DovecotServer, mailbox: ImapMailbox
) -> None:
    mails = [_mail(n) for n in range(3)]
    await mailbox.append(*mails)
    source = _source(dovecot)
    state = await source.open()
    try:
        assert state.folder == "INBOX"
        assert state.uidvalidity > 0
        uids = await source.pending(10)
        assert uids == ["1", "2", "3"]
        assert await source.pending(2) == ["1", "2"]
        fetched = await source.fetch(uids, max_bytes=1_000_000)
        assert [normalised_hash(m.raw or b"") for m in fetched] == [
            normalised_hash(m) for m in mails
        ]
        assert all(m.arrived_at is not None for m in fetched)
        assert not any(b"\\Seen" in line for line in await _flags(mailbox))

        await source.move(["1", "3"], "Traités")
        assert await source.pending(10) == ["2"]
    finally:
        await source.close()
    assert await mailbox.counts("INBOX", *FOLDERS) == {
        "INBOX": 1, "Traités": 2, "Quarantaine": 0, "Automatiques": 0,
    }  # fmt: skip
    wire_names = (dovecot.root / "mail").rglob(".Trait&AOk-s")
    assert list(wire_names), "the folder is named in modified UTF-7 on the server"


async def test_a_mail_over_the_limit_is_fetched_by_size_only(
    dovecot: DovecotServer, mailbox: ImapMailbox
) -> None:
    await mailbox.append(_mail(1), _mail(2, body=b"x" * 5000))
    source = _source(dovecot)
    await source.open()
    try:
        small, big = await source.fetch(["1", "2"], max_bytes=2000)
    finally:
        await source.close()
    assert small.raw is not None
    assert big.raw is None
    assert big.size > 5000


async def test_one_fetch_reads_at_most_its_byte_budget_of_bodies(
    dovecot: DovecotServer, mailbox: ImapMailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of large mails used to be read in one FETCH (100 x 25 MB, held twice): the
    pod was killed and its restart fetched the same batch. Past the budget, the mails stay
    in the mailbox for the next batch; an over-size one is still reported by its size."""
    await mailbox.append(
        _mail(1, body=b"a" * 3000), _mail(2, body=b"b" * 3000), _mail(3, body=b"c" * 9000)
    )
    monkeypatch.setattr(imap, "FETCH_BYTES", 4000)
    source = _source(dovecot)
    await source.open()
    try:
        first = await source.fetch(["1", "2", "3"], max_bytes=8000)
        rest = await source.fetch(["2"], max_bytes=8000)
    finally:
        await source.close()
    assert [(m.uid, m.raw is not None) for m in first] == [("1", True), ("3", False)]
    assert [(m.uid, m.raw is not None) for m in rest] == [("2", True)]


@pytest.fixture
def dovecot_without_move(tmp_path: Path) -> Iterator[DovecotServer]:
    # A server advertising neither MOVE nor UIDPLUS after login.
    extra = "imap_capability = IMAP4rev1 IDLE LITERAL+ NAMESPACE"
    server = DovecotServer({USER: PASSWORD}, extra_config=extra).start()
    yield server
    server.stop()


async def test_without_move_or_uidplus_mail_is_copied_and_flagged_never_expunged(
    dovecot_without_move: DovecotServer,
) -> None:
    mailbox = ImapMailbox(dovecot_without_move.host, dovecot_without_move.port, USER, PASSWORD)
    await mailbox.append(_mail(1), _mail(2))
    source = _source(dovecot_without_move)
    await source.open()
    try:
        await source.move(["1"], "Traités")
        assert await source.pending(10) == ["2"]
    finally:
        await source.close()
    counts = await mailbox.counts("INBOX", "Traités")
    assert counts == {"INBOX": 2, "Traités": 1}  # flagged \Deleted, left for a human


async def test_idle_wakes_up_when_mail_arrives(
    dovecot: DovecotServer, mailbox: ImapMailbox
) -> None:
    source = _source(dovecot)
    await source.open()
    try:
        started = time.monotonic()
        waiting = asyncio.create_task(source.wait_for_mail(20))
        await asyncio.sleep(0.5)
        await mailbox.append(_mail(7))
        await asyncio.wait_for(waiting, 10)
        assert time.monotonic() - started < 5
        assert await source.pending(10) == ["1"]
    finally:
        await source.close()


async def test_starttls_and_implicit_tls_verify_the_server(
    tls_dovecot: DovecotServer, tls_files: tuple[Path, Path]
) -> None:
    cert, _ = tls_files
    await ImapMailbox(tls_dovecot.host, tls_dovecot.port, USER, PASSWORD).append(_mail(1))
    modes: list[tuple[Security, int]] = [
        ("starttls", tls_dovecot.port),
        ("tls", tls_dovecot.tls_port),
    ]
    for security, port in modes:
        source = _source(tls_dovecot, port=port, security=security, ca_file=cert)
        await source.open()
        try:
            assert await source.pending(10) == ["1"], security
            fetched = await source.fetch(["1"], max_bytes=100_000)
            assert fetched[0].raw
            assert b"Demande 1" in fetched[0].raw
        finally:
            await source.close()
    untrusted = _source(tls_dovecot, port=tls_dovecot.tls_port, security="tls")
    with pytest.raises(MailboxUnavailable, match="SSL"):
        await untrusted.open()
    await untrusted.close()


async def test_a_refused_login_is_a_misconfiguration(dovecot: DovecotServer) -> None:
    with pytest.raises(MailboxMisconfigured, match="LOGIN answered NO AUTHENTICATIONFAILED"):
        await _source(dovecot, password="wrong").open()


async def test_a_lost_server_is_translated_during_idle_and_after(dovecot: DovecotServer) -> None:
    source = _source(dovecot)
    await source.open()
    waiting = asyncio.create_task(source.wait_for_mail(30))
    await asyncio.sleep(0.3)
    dovecot.kill()
    with pytest.raises(MailboxUnavailable):
        await asyncio.wait_for(waiting, 10)
    with pytest.raises(MailboxUnavailable):
        await source.pending(10)
    await source.close()
    with pytest.raises(MailboxUnavailable):
        await source.open()

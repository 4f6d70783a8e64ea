"""Real parts for intake_mail: a private Dovecot (plain, or with TLS), an aiosmtpd sink.

Dovecot is installed by ``make test`` (``dovecot-imapd``); a missing server
fails the run, never skips it.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.common.testing import SmtpSink
from services.intake_mail.testing import DovecotServer, ImapMailbox

USER = "service-client@eau.example.org"
PASSWORD = "secret-imap"
FROM_ADDRESS = "Service Client <service-client@eau.example.org>"


@pytest.fixture
def dovecot() -> Iterator[DovecotServer]:
    """A private Dovecot with the service's account, on a free loopback port."""
    server = DovecotServer({USER: PASSWORD}).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mailbox(dovecot: DovecotServer) -> ImapMailbox:
    """Test client of the Dovecot account."""
    return ImapMailbox(dovecot.host, dovecot.port, USER, PASSWORD)


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """An aiosmtpd server keeping what it receives."""
    sink = SmtpSink().start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (openssl)."""
    directory = tmp_path_factory.mktemp("tls")
    directory.chmod(0o755)
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    key.chmod(0o644)
    return cert, key


@pytest.fixture
async def tls_dovecot(tls_files: tuple[Path, Path]) -> AsyncIterator[DovecotServer]:
    """Dovecot offering STARTTLS on ``port`` and implicit TLS on ``tls_port``."""
    cert, key = tls_files
    server = DovecotServer({USER: PASSWORD}, tls_cert=cert, tls_key=key).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def service_env(
    kafka_env: dict[str, str], dovecot: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> dict[str, str]:
    """Environment of an intake-mail process on the test's Dovecot, sink, tansu and SQLite."""
    return {
        **kafka_env,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'store.db'}",
        "INTAKE_MAIL_IMAP_HOST": dovecot.host,
        "INTAKE_MAIL_IMAP_PORT": str(dovecot.port),
        "INTAKE_MAIL_IMAP_SECURITY": "plain",
        "INTAKE_MAIL_IMAP_USER": USER,
        "INTAKE_MAIL_IMAP_PASSWORD": PASSWORD,
        "INTAKE_MAIL_POLL_INTERVAL_S": "10",
        "INTAKE_MAIL_ATTACHMENTS_DIR": str(tmp_path / "attachments"),
        "INTAKE_MAIL_SMTP_HOST": smtp_sink.host,
        "INTAKE_MAIL_SMTP_PORT": str(smtp_sink.port),
        "INTAKE_MAIL_SMTP_SECURITY": "plain",
        "INTAKE_MAIL_FROM_ADDRESS": FROM_ADDRESS,
        "INTAKE_MAIL_OWN_ADDRESSES": "noreply@eau.example.org",
        "INTAKE_MAIL_ACK_SWEEP_INTERVAL_S": "1",
    }

"""Test helpers of intake_mail: a private Dovecot, an IMAP client, a recording mailer, sample mail.

``DovecotServer`` is a private Dovecot IMAP server for tests, demos and
benchmarks (Debian ``dovecot-imapd``).

Started with its own configuration under a temporary directory, on a free
loopback port, plain-text login over an unencrypted loopback connection.
Given a certificate and key, it also offers STARTTLS on that port and
implicit TLS (IMAPS) on ``tls_port``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from aioimaplib import IMAP4

from services.common.embedded import free_port
from services.intake_mail.adapters.imap_responses import parse_fetch, parse_search
from services.intake_mail.adapters.imap_utf7 import quote_mailbox
from services.intake_mail.errors import AcknowledgementNotSent

__all__ = [
    "DovecotServer",
    "DovecotUnavailable",
    "ImapMailbox",
    "RecordingMailer",
    "form_mail",
    "normalised_hash",
    "plain_mail",
]

_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{root}/mail/%d/%n/Maildir
mail_uid = {user}
mail_gid = {group}
first_valid_uid = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={root}/mail/%d/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
{extra}
"""


class DovecotUnavailable(RuntimeError):
    """Dovecot is not installed (``apt-get install dovecot-imapd``) or did not start."""


class DovecotServer:
    """One private Dovecot instance with the given users (``user@domain`` -> password).

    ``extra_config`` is appended to the configuration (``imap_capability = …``
    to play a server without MOVE or UIDPLUS).
    """

    def __init__(
        self,
        users: dict[str, str],
        root: Path | None = None,
        *,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        extra_config: str = "",
    ) -> None:
        # Dovecot's auth and mail processes run as unprivileged users: the
        # whole path to the configuration must be traversable by them.
        self.root = root or Path(tempfile.mkdtemp(prefix="aiguillage-dovecot-"))
        self.root.chmod(0o755)
        self._own_root = root is None
        self.users = users
        self.port = free_port()
        self.tls = tls_cert is not None and tls_key is not None
        self.tls_port = free_port() if self.tls else 0
        self._tls_files = (tls_cert, tls_key)
        self._extra = extra_config
        self._process: subprocess.Popen[bytes] | None = None
        self.host = "127.0.0.1"
        self._config = self.root / "dovecot.conf"

    def start(self, timeout: float = 10.0) -> DovecotServer:
        """Write the configuration, start the server and wait until it listens."""
        binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        if not Path(binary).exists():
            raise DovecotUnavailable("dovecot is not installed: apt-get install dovecot-imapd")
        for folder in ("run", "state", "mail"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        (self.root / "passwd").write_text(
            "".join(f"{user}:{{PLAIN}}{password}\n" for user, password in self.users.items())
        )
        cert, key = self._tls_files
        ssl = f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}" if self.tls else "ssl = no"
        settings = {"port": self.port, "tls_port": self.tls_port, "ssl": ssl, "extra": self._extra}
        self._config.write_text(
            _CONFIG.format(root=self.root, user="nobody", group="nogroup", **settings)
        )
        shutil.chown(self.root / "mail", "nobody", "nogroup")
        # In the foreground, in its own session: stopping kills the whole process
        # group at once (a graceful ``dovecot stop`` takes seconds). Its children
        # inherit stdout: never capture it.
        self._process = subprocess.Popen(
            [binary, "-F", "-c", str(self._config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise DovecotUnavailable(f"dovecot did not listen on port {self.port}")

    def kill(self) -> None:
        """Kill the server and its children at once, like a crash (mail on disk stays)."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        """Stop the server (killed: a test server keeps nothing in memory worth saving)."""
        self.kill()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        """The server's log, for failing tests."""
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def normalised_hash(raw: bytes) -> str:
    """SHA-256 of a mail as a server may store it: CRLF as LF, NUL as 0x80 (Dovecot does)."""
    return hashlib.sha256(raw.replace(b"\r\n", b"\n").replace(b"\x00", b"\x80")).hexdigest()


@dataclass
class ImapMailbox:
    """A test client of one account: deliver mail into INBOX, read any folder back."""

    host: str
    port: int
    user: str
    password: str

    async def _client(self) -> IMAP4:
        client = IMAP4(self.host, self.port, timeout=10)
        await client.wait_hello_from_server()
        response = await client.login(self.user, self.password)
        if response.result != "OK":
            raise DovecotUnavailable(f"test login refused: {response.result}")
        return client

    async def append(self, *mails: bytes) -> list[str]:
        """Deliver mails into INBOX; return their UIDs (APPENDUID)."""
        client = await self._client()
        uids = []
        try:
            for raw in mails:
                response = await client.append(raw, mailbox="INBOX")
                if response.result != "OK":
                    raise DovecotUnavailable(f"APPEND refused: {response.lines!r}")
                uids.append(response.lines[0].split()[2].decode().rstrip("]"))
        finally:
            await client.logout()
        return uids

    async def messages(self, folder: str) -> list[bytes]:
        """Every message of a folder, oldest first (empty when the folder does not exist)."""
        client = await self._client()
        try:
            selected = await client.select(quote_mailbox(folder))
            if selected.result != "OK":
                return []
            if not parse_search((await client.uid_search("ALL", charset=None)).lines):
                return []
            response = await client.uid("fetch", "1:*", "(UID BODY.PEEK[])")
            return [record.body or b"" for record in parse_fetch(response.lines)]
        finally:
            await client.logout()

    async def counts(self, *folders: str) -> dict[str, int]:
        """How many messages each folder holds."""
        return {folder: len(await self.messages(folder)) for folder in folders}


@dataclass
class RecordingMailer:
    """A fake ``Mailer`` for component tests: keeps what it is given, fails on demand.

    ``fail`` maps a recipient to the error its sends raise; ``unreachable``
    makes opening a session fail like a relay that does not answer.
    """

    sent: list[tuple[str, str, bytes]] = field(default_factory=list)
    fail: dict[str, AcknowledgementNotSent] = field(default_factory=dict)
    unreachable: bool = False
    sessions: int = 0

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[RecordingMailer]:
        """A session (this same object)."""
        if self.unreachable:
            raise AcknowledgementNotSent("SMTPConnectError", permanent=False)
        self.sessions += 1
        yield self

    async def send(self, envelope_from: str, recipient: str, message: bytes) -> None:
        """Record the message, or raise the error configured for its recipient."""
        error = self.fail.get(recipient)
        if error is not None:
            raise error
        self.sent.append((envelope_from, recipient, message))

    async def close(self) -> None:
        """Nothing kept: nothing to close."""


def form_mail(n: int) -> bytes:
    """A contact-form mail (procedure 5.1.1) from synthetic customer ``n`` (0-99)."""
    return (
        "From: Site internet <formulaire@eau.example.org>\r\n"
        "To: service-client@eau.example.org\r\n"
        f"Subject: Nouveau message depuis le formulaire de contact {n}\r\n"
        f"Message-ID: <form-{n}@www.eau.example.org>\r\n"
        "Date: Mon, 3 Mar 2025 10:15:00 +0100\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Nom : Martin{n}\r\nPrénom : Jeanne\r\n"
        f"Adresse e-mail : client.form{n}@example.test\r\n"
        f"Numéro de téléphone mobile : 06 12 34 56 {n:02d}\r\n"
        f"Référence client (facultative) : {100000000 + n}\r\n"
        "Message : Ma facture de février est deux fois plus élevée que d'habitude.\r\n"
    ).encode()


def plain_mail(n: int, *, body: str = "") -> bytes:
    """A plain e-mail from synthetic customer ``n``."""
    return (
        f"From: Paul Durand{n} <client.plain{n}@example.test>\r\n"
        "To: service-client@eau.example.org\r\n"
        f"Subject: Relevé de compteur {n}\r\n"
        f"Message-ID: <plain-{n}@example.test>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body or f'Bonjour, voici mon index : {1000 + n} m3.'}\r\n"
    ).encode()

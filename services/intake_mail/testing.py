"""A private Dovecot IMAP server for tests, demos and benchmarks (Debian ``dovecot-imapd``).

Started with its own configuration under a temporary directory, on a free
loopback port, plain-text login over an unencrypted loopback connection.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from services.common.embedded import free_port

__all__ = ["DovecotServer", "DovecotUnavailable"]

_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
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
    port = 0
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
"""


class DovecotUnavailable(RuntimeError):
    """Dovecot is not installed (``apt-get install dovecot-imapd``) or did not start."""


class DovecotServer:
    """One private Dovecot instance with the given users (``user@domain`` -> password)."""

    def __init__(self, users: dict[str, str], root: Path | None = None) -> None:
        # Dovecot's auth and mail processes run as unprivileged users: the
        # whole path to the configuration must be traversable by them.
        self.root = root or Path(tempfile.mkdtemp(prefix="aiguillage-dovecot-"))
        self.root.chmod(0o755)
        self._own_root = root is None
        self.users = users
        self.port = free_port()
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
        self._config.write_text(
            _CONFIG.format(root=self.root, port=self.port, user="nobody", group="nogroup")
        )
        shutil.chown(self.root / "mail", "nobody", "nogroup")
        # Dovecot daemonises and its children inherit stdout: never capture it.
        subprocess.run(
            [binary, "-c", str(self._config)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise DovecotUnavailable(f"dovecot did not listen on port {self.port}")

    def stop(self) -> None:
        """Stop the server."""
        binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        subprocess.run(
            [binary, "-c", str(self._config), "stop"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
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

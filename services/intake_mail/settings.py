"""intake_mail settings (env prefix ``INTAKE_MAIL_``; infrastructure settings are shared).

The mailbox is an IMAP account (``INTAKE_MAIL_IMAP_HOST`` …) or, for the
embedded demo only, a Maildir drop folder (``INTAKE_MAIL_MAILDIR``). With
neither the service starts, says so, and waits (``aiguillage up`` runs it
anyway). Acknowledgements go out through ``INTAKE_MAIL_SMTP_HOST``; without it
none is sent. Secrets come from the environment or from files
(``INTAKE_MAIL_IMAP_PASSWORD_FILE``, ``INTAKE_MAIL_SMTP_PASSWORD_FILE``) and are
never logged. Lists (``INTAKE_MAIL_OWN_ADDRESSES``) are comma-separated or JSON.
"""

from __future__ import annotations

import json
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.common.settings import ServiceSettings

__all__ = ["CrashPoint", "IntakeMailSettings", "Security"]

Security = Literal["plain", "starttls", "tls"]
CrashPoint = Literal["", "after_publish", "before_move"]
TextList = Annotated[tuple[str, ...], NoDecode]

_IMAP_PORTS = {"plain": 143, "starttls": 143, "tls": 993}
_SMTP_PORTS = {"plain": 25, "starttls": 587, "tls": 465}


def _secret(value: SecretStr | None, path: Path | None) -> str:
    if path is not None:
        return path.read_text(encoding="utf-8").strip()
    return value.get_secret_value() if value is not None else ""


class IntakeMailSettings(ServiceSettings):
    """What intake_mail needs beyond the shared infrastructure settings."""

    model_config = SettingsConfigDict(env_prefix="INTAKE_MAIL_", extra="ignore", frozen=True)

    imap_host: str = Field(default="", description="IMAP server; empty: no IMAP mailbox")
    imap_port: int | None = Field(default=None, ge=1, le=65535, description="default by security")
    imap_security: Security = Field(default="tls", description="plain, starttls or tls")
    imap_user: str = ""
    imap_password: SecretStr | None = None
    imap_password_file: Path | None = None
    imap_ca_file: Path | None = Field(default=None, description="CA bundle for a private CA")
    imap_timeout_s: float = Field(default=30.0, gt=0, description="one IMAP command")
    account: str = Field(default="", description="account label in the store; user@host")
    mailbox: str = Field(default="INBOX", description="folder the contact form delivers to")
    processed_folder: str = Field(default="Traités", description="accepted mail ends here")
    quarantine_folder: str = Field(default="Quarantaine", description="bad input ends here")
    automatic_folder: str = Field(
        default="Automatiques", description="auto-replies, bounces, lists end here"
    )
    batch_size: int = Field(default=100, ge=1, le=1000, description="mails fetched at once")
    idle: bool = Field(default=True, description="IMAP IDLE when the server offers it")
    poll_interval_s: float = Field(
        default=60.0, gt=0, description="re-scan period (and IDLE renewal)"
    )
    reconnect_max_s: float = Field(default=60.0, gt=0, description="longest reconnect backoff")
    max_message_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    attachments_dir: Path = Field(default=Path("var/attachments"))
    maildir: Path | None = Field(
        default=None, description="Maildir drop folder, for the embedded demo only"
    )

    smtp_host: str = Field(default="", description="SMTP relay; empty: no acknowledgements")
    smtp_port: int | None = Field(default=None, ge=1, le=65535, description="default by security")
    smtp_security: Security = "starttls"
    smtp_user: str = ""
    smtp_password: SecretStr | None = None
    smtp_password_file: Path | None = None
    smtp_ca_file: Path | None = None
    smtp_timeout_s: float = Field(default=30.0, gt=0)
    from_address: str = Field(
        default="", description='acknowledgement sender, e.g. "Service Client <sc@eau.fr>"'
    )
    envelope_from: str = Field(
        default="", description="SMTP MAIL FROM; empty: null sender (RFC 3834 section 3.3)"
    )
    own_addresses: TextList = Field(
        default=(), description="our addresses (or @domain): never acknowledged"
    )
    ack_lease_s: float = Field(
        default=300.0, gt=0, description="a send claimed longer ago than this was interrupted"
    )
    ack_max_attempts: int = Field(default=12, ge=1, description="transient SMTP failures")
    ack_sweep_interval_s: float = Field(default=30.0, gt=0)
    ack_concurrency: int = Field(
        default=4, ge=1, le=32, description="SMTP connections sending acknowledgements at once"
    )
    outbox_sweep_interval_s: float = Field(default=1.0, gt=0)
    db_retry_max_s: float = Field(default=30.0, gt=0)
    test_crash_at: CrashPoint = Field(
        default="",
        description="TESTS ONLY: SIGKILL the process at this point of a pass (crash tests)",
    )

    @field_validator("own_addresses", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            decoded: object = json.loads(text)
            return decoded
        return tuple(part.strip() for part in text.split(",") if part.strip())

    @field_validator("from_address")
    @classmethod
    def _valid_from(cls, value: str) -> str:
        if value and "@" not in parseaddr(value)[1]:
            raise ValueError("from_address must hold an e-mail address")
        return value

    @property
    def mailbox_configured(self) -> bool:
        """True when an IMAP account or a Maildir drop folder is configured."""
        return bool(self.imap_host) or self.maildir is not None

    @property
    def acknowledgements_enabled(self) -> bool:
        """True when an SMTP relay and a sender address are configured (procedure 4.12 NB)."""
        return bool(self.smtp_host and self.from_address)

    def resolved_imap_port(self) -> int:
        """The IMAP port: the setting, else 993 for TLS and 143 otherwise."""
        return self.imap_port or _IMAP_PORTS[self.imap_security]

    def resolved_smtp_port(self) -> int:
        """The SMTP port: the setting, else 465 (TLS), 587 (STARTTLS) or 25."""
        return self.smtp_port or _SMTP_PORTS[self.smtp_security]

    def imap_secret(self) -> str:
        """The IMAP password, from ``INTAKE_MAIL_IMAP_PASSWORD_FILE`` when given (never logged)."""
        return _secret(self.imap_password, self.imap_password_file)

    def smtp_secret(self) -> str:
        """The SMTP password, from ``INTAKE_MAIL_SMTP_PASSWORD_FILE`` when given (never logged)."""
        return _secret(self.smtp_password, self.smtp_password_file)

    def account_label(self) -> str:
        """The account key of the store's records: the setting, else ``imap://user@host`` (RFC
        5092, the user percent-encoded) or ``maildir:<path>``."""
        if self.account:
            return self.account
        if self.imap_host:
            return f"imap://{quote(self.imap_user, safe='')}@{self.imap_host}"
        return f"maildir:{self.maildir}"

    def own_address_set(self) -> tuple[str, ...]:
        """Our own addresses: the setting plus the sender and the mailbox user (RFC 3834 loops)."""
        extra = [parseaddr(self.from_address)[1], self.imap_user]
        return tuple(
            dict.fromkeys(a.strip().lower() for a in (*self.own_addresses, *extra) if "@" in a)
        )

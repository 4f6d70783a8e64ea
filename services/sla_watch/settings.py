"""sla_watch settings (env prefix ``SLA_WATCH_``; infrastructure settings are shared).

The SLA rules ops tune (durations, lead times, sending window, default region)
are one ``SlaPolicy``: from ``SLA_WATCH_POLICY_FILE`` (YAML) when given, else
from ``SLA_WATCH_POLICY`` (JSON) or nested variables such as
``SLA_WATCH_POLICY__LETTER_WORKING_DAYS=5``; the procedure's values otherwise.
Everything is validated at start-up and an error names the bad entry.

Time: the service reads "now" through its clock. ``SLA_WATCH_CLOCK_FILE`` names
a file holding one ISO-8601 instant that tests and demos advance (the file is
re-read when it changes); ``SLA_WATCH_CLOCK_OFFSET`` shifts the system clock
(ISO-8601 duration, e.g. ``P2D``). Send leases always run on real time.
"""

from __future__ import annotations

import datetime as dt
from email.utils import parseaddr
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.common.settings import ServiceSettings
from services.sla_watch.domain import SlaPolicy
from services.sla_watch.errors import SettingsError

__all__ = ["SlaWatchSettings", "load_policy_file"]

TextList = Annotated[tuple[str, ...], NoDecode]
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def load_policy_file(path: Path) -> SlaPolicy:
    """Read and validate an SLA policy YAML file (STYLE rule 3, procedure 4.12).

    The file holds a mapping of ``SlaPolicy`` fields; durations are ISO-8601
    (``PT48H``) or seconds, windows ``{start: "08:00", end: "19:00"}``. A bad
    entry raises ``SettingsError`` naming the file and the entry.
    """
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise SettingsError(f"cannot read SLA policy file {path}: {error}") from error
    if not isinstance(data, dict):
        raise SettingsError(f"SLA policy file {path} must hold a mapping of policy fields")
    try:
        return SlaPolicy.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in error.errors()
        )
        raise SettingsError(f"SLA policy file {path}: {problems}") from error


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


class SlaWatchSettings(ServiceSettings):
    """What sla_watch needs beyond the shared infrastructure settings."""

    model_config = SettingsConfigDict(
        env_prefix="SLA_WATCH_", extra="ignore", frozen=True, env_nested_delimiter="__"
    )

    group_id: str = Field(default="sla-watch", description="consumer group of dossier events")
    events_batch_size: int = Field(
        default=200, ge=1, le=10_000, description="dossier-event records read per handler call"
    )
    events_batch_timeout_ms: int = Field(default=20, ge=0, description="wait for a fuller batch")
    policy: SlaPolicy = Field(default_factory=SlaPolicy, description="SLA rules (4.12, 4.13)")
    policy_file: Path | None = Field(default=None, description="YAML SlaPolicy; wins over env")
    apology_dossier_types: TextList = Field(
        default=("FAC", "RDR"),
        description="dossier types whose holding mail apologises (4.9, 4.11), comma-separated",
    )

    smtp_host: str = Field(default="localhost", min_length=1)
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        default="none", description="plain SMTP, STARTTLS, or implicit TLS (port 465)"
    )
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = Field(default=30.0, gt=0, le=600)
    smtp_connections: int = Field(
        default=4, ge=1, le=64, description="SMTP connections kept open: mails sent at once"
    )
    mail_from: str = Field(
        default="Service Client <service.client@aiguillage.invalid>",
        description="From header and envelope sender of holding mails",
    )

    scheduler_interval_s: float = Field(default=5.0, gt=0, le=3600)
    scheduler_batch_size: int = Field(default=200, ge=1, le=10_000)
    record_within_ms: float = Field(
        default=100.0,
        gt=0,
        le=60_000,
        description="longest a sent mail waits for the rest of its batch before it is recorded",
    )
    sender_lanes: int = Field(
        default=2, ge=1, le=16, description="sender loops: one claims or records while one sends"
    )
    mail_batch_size: int = Field(
        default=50, ge=1, le=1000, description="mails claimed, sent and recorded together"
    )
    send_lease_s: float = Field(
        default=180.0, gt=0, description="how long a claimed mail is reserved (real time)"
    )
    max_uncertain_sends: int = Field(
        default=2,
        ge=1,
        description="sends whose outcome is unknown (crash mid-send) before a call replaces mail",
    )
    retry_backoff_max_s: float = Field(default=300.0, gt=0)

    clock_file: Path | None = Field(default=None, description="file holding an ISO instant")
    clock_offset: dt.timedelta = Field(default=dt.timedelta(0), description="added to real time")

    outbox_sweep_interval_s: float = Field(default=1.0, gt=0)
    db_retry_max_s: float = Field(default=30.0, gt=0)

    @field_validator("apology_dossier_types", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("mail_from")
    @classmethod
    def _address(cls, value: str) -> str:
        _name, address = parseaddr(value)
        local, _, domain = address.rpartition("@")
        if not local or "." not in domain:
            raise ValueError("mail_from must hold an address, e.g. 'Service <sc@example.fr>'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.smtp_user is None) != (self.smtp_password is None):
            raise ValueError("SLA_WATCH_SMTP_USER and SLA_WATCH_SMTP_PASSWORD go together")
        if (
            self.smtp_user is not None
            and self.smtp_security == "none"
            and not _is_loopback(self.smtp_host)
        ):
            raise ValueError("SMTP credentials would go in clear: set SLA_WATCH_SMTP_SECURITY")
        if self.send_lease_s < 3 * self.smtp_timeout_s:
            raise ValueError(
                "SLA_WATCH_SEND_LEASE_S must be at least 3 x SLA_WATCH_SMTP_TIMEOUT_S:"
                " a claim must outlive the send it covers, or another instance could resend"
            )
        if self.clock_file is not None and self.clock_offset:
            raise ValueError("set SLA_WATCH_CLOCK_FILE or SLA_WATCH_CLOCK_OFFSET, not both")
        if self.policy_file is not None:
            object.__setattr__(self, "policy", load_policy_file(self.policy_file))
        return self

    @property
    def envelope_sender(self) -> str:
        """The bare address of ``mail_from`` (SMTP ``MAIL FROM``)."""
        return parseaddr(self.mail_from)[1]

    @property
    def mail_domain(self) -> str:
        """The domain of ``mail_from``, used in the deterministic Message-IDs."""
        return self.envelope_sender.rpartition("@")[2]

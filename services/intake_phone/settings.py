"""intake_phone settings (env prefix ``INTAKE_PHONE_``; infrastructure settings are shared).

Lists (``INTAKE_PHONE_OWN_NUMBERS``, ``INTAKE_PHONE_INTERNAL_PREFIXES``,
``INTAKE_PHONE_OUT_OF_PERIMETER_CODES``) are given comma-separated or as a
JSON array. Each platform's webhook is authenticated by an HMAC-SHA256
secret (``INTAKE_PHONE_<PLATFORM>_HMAC_SECRET``) and/or a bearer token
(``INTAKE_PHONE_<PLATFORM>_BEARER_TOKEN``); a platform with neither refuses
every request (401).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.common.settings import ServiceSettings
from services.intake_phone.domain import DEFAULT_OUT_OF_PERIMETER_CODES, PLATFORMS
from services.intake_phone.domain._read import MAX_PAYLOAD_BYTES

__all__ = ["IntakePhoneSettings"]

TextList = Annotated[tuple[str, ...], NoDecode]


class IntakePhoneSettings(ServiceSettings):
    """What intake_phone needs beyond the shared infrastructure settings."""

    model_config = SettingsConfigDict(env_prefix="INTAKE_PHONE_", extra="ignore", frozen=True)

    listen_host: str = Field(default="127.0.0.1", description="webhook listen address")
    listen_port: int = Field(default=8086, ge=1, le=65535, description="webhook port")
    group_id: str = Field(default="intake-phone", description="consumer group of the raw topic")
    signature_header: str = Field(
        default="X-Aiguillage-Signature",
        description="header carrying sha256=<hex HMAC-SHA256 of the raw body>",
    )
    generic_hmac_secret: SecretStr | None = None
    generic_bearer_token: SecretStr | None = None
    ringover_hmac_secret: SecretStr | None = None
    ringover_bearer_token: SecretStr | None = None
    twilio_hmac_secret: SecretStr | None = None
    twilio_bearer_token: SecretStr | None = None
    asterisk_hmac_secret: SecretStr | None = None
    asterisk_bearer_token: SecretStr | None = None
    max_body_bytes: int = Field(
        default=256 * 1024, ge=1024, le=MAX_PAYLOAD_BYTES, description="larger bodies get 413"
    )
    publish_timeout_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="longest a webhook waits for its events to be recorded, else 503",
    )
    retry_after_s: int = Field(default=5, ge=1, description="Retry-After sent with a 503")
    max_inflight: int = Field(
        default=64, ge=1, description="webhook requests being recorded at once, beyond: 503"
    )
    writers: int = Field(
        default=1,
        ge=1,
        le=16,
        description="group-commit transactions at once on PostgreSQL (SQLite: always 1)",
    )
    max_batch: int = Field(
        default=256, ge=1, le=4096, description="payloads recorded in one group-commit transaction"
    )
    raw_batch_max: int = Field(
        default=500, ge=1, le=10_000, description="telephony.raw.v1 records handled at once"
    )
    grace_s: float = Field(
        default=180.0, ge=0, description="wait for a wrap-up after the end of a call"
    )
    settle_s: float = Field(
        default=2.0,
        ge=0,
        le=300,
        description="quiet period before an ended, wrapped-up call is emitted (stragglers)",
    )
    max_open_s: float = Field(
        default=4 * 3600.0, gt=0, description="a call with no end is closed after this"
    )
    sweep_interval_s: float = Field(default=1.0, gt=0)
    outbox_interval_s: float = Field(default=1.0, gt=0)
    db_retry_max_s: float = Field(
        default=30.0, gt=0, description="how long a transaction is retried on store outages"
    )
    emitted_retention_days: int = Field(
        default=30, ge=1, description="emitted calls are remembered this long (late events)"
    )
    own_numbers: TextList = Field(default=(), description="the service lines callers dial")
    internal_prefixes: TextList = Field(default=(), description="prefixes of internal callers")
    out_of_perimeter_codes: TextList = Field(
        default=tuple(sorted(DEFAULT_OUT_OF_PERIMETER_CODES)),
        description="wrap-up codes meaning wrong number / not for us",
    )

    @field_validator(
        "generic_hmac_secret",
        "generic_bearer_token",
        "ringover_hmac_secret",
        "ringover_bearer_token",
        "twilio_hmac_secret",
        "twilio_bearer_token",
        "asterisk_hmac_secret",
        "asterisk_bearer_token",
    )
    @classmethod
    def _not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        # A blank secret (an empty secrets file, ``VAR=``) would make the platform look
        # configured while an HMAC keyed with "" is anyone's to compute: refused at start.
        if value is not None and not value.get_secret_value().strip():
            raise ValueError(
                "a webhook credential cannot be blank (unset it to refuse the platform)"
            )
        return value

    @field_validator("own_numbers", "internal_prefixes", "out_of_perimeter_codes", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            decoded: object = json.loads(text)
            return decoded
        return tuple(part.strip() for part in text.split(",") if part.strip())

    @property
    def grace(self) -> dt.timedelta:
        """The grace period after a call's end, as a duration."""
        return dt.timedelta(seconds=self.grace_s)

    @property
    def max_open(self) -> dt.timedelta:
        """The longest a call with no end stays open, as a duration."""
        return dt.timedelta(seconds=self.max_open_s)

    def credentials(self, platform: str) -> tuple[SecretStr | None, SecretStr | None]:
        """The (HMAC secret, bearer token) of a platform's webhook; (None, None) if unknown."""
        if platform not in PLATFORMS:
            return None, None
        secret: SecretStr | None = getattr(self, f"{platform}_hmac_secret")
        token: SecretStr | None = getattr(self, f"{platform}_bearer_token")
        return secret, token

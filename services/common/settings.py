"""Settings every service shares; each service subclasses with its own env prefix.

Infrastructure addresses are read without a prefix (``KAFKA_BOOTSTRAP_SERVERS``,
``DATABASE_URL``…) so that one environment file serves every service; the
service's own knobs carry its prefix (``ROUTER_BATCH_SIZE``…). Settings are
built once, in ``create_app``; no other module reads the environment.

Secrets mounted as files (Docker or Kubernetes secrets): with ``SECRETS_DIR``
set, a file in that folder named like the variable (``DATABASE_URL``,
``INTAKE_PHONE_GENERIC_HMAC_SECRET``, ``SLA_WATCH_SMTP_PASSWORD``…) gives the
setting's value when the environment does not.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

__all__ = ["DEFAULT_DATABASE_URL", "ServiceSettings", "shared"]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/aiguillage.db"


def shared(name: str) -> AliasChoices:
    """An env alias read without the service prefix (shared infrastructure settings)."""
    return AliasChoices(name)


class ServiceSettings(BaseSettings):
    """What every service needs: where Kafka and the store are, and how to log."""

    model_config = SettingsConfigDict(
        env_prefix="AIGUILLAGE_", extra="ignore", frozen=True, populate_by_name=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then files in ``SECRETS_DIR`` (when set)."""
        sources = [init_settings, env_settings, dotenv_settings]
        directory = os.environ.get("SECRETS_DIR")
        if directory:
            sources.append(SecretsSettingsSource(settings_cls, secrets_dir=directory))
        return (*sources, file_secret_settings)

    kafka_bootstrap_servers: str = Field(
        default="", validation_alias=shared("KAFKA_BOOTSTRAP_SERVERS")
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", validation_alias=shared("KAFKA_SECURITY_PROTOCOL")
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="SCRAM-SHA-512", validation_alias=shared("KAFKA_SASL_MECHANISM")
    )
    kafka_sasl_username: str | None = Field(
        default=None, validation_alias=shared("KAFKA_SASL_USERNAME")
    )
    kafka_sasl_password: SecretStr | None = Field(
        default=None, validation_alias=shared("KAFKA_SASL_PASSWORD")
    )
    kafka_session_timeout_ms: int = Field(
        default=10_000, ge=1000, validation_alias=shared("KAFKA_SESSION_TIMEOUT_MS")
    )
    kafka_heartbeat_interval_ms: int = Field(
        default=3_000, ge=100, validation_alias=shared("KAFKA_HEARTBEAT_INTERVAL_MS")
    )
    kafka_fetch_max_wait_ms: int = Field(
        default=50,
        ge=1,
        le=60_000,
        validation_alias=shared("KAFKA_FETCH_MAX_WAIT_MS"),
        description=(
            "longest a consumer's fetch waits for records; tansu (the embedded broker) "
            "always waits this long, even when records arrive meanwhile, so it bounds "
            "every hop's latency there (Apache Kafka answers as soon as records arrive)"
        ),
    )
    kafka_default_partitions: int = Field(
        default=6, ge=1, le=1000, validation_alias=shared("KAFKA_DEFAULT_PARTITIONS")
    )
    kafka_topic_partitions: dict[str, int] = Field(
        default_factory=dict,
        validation_alias=shared("KAFKA_TOPIC_PARTITIONS"),
        description='per-topic partition counts, JSON: {"intake.items.v1": 12}',
    )
    kafka_create_topics: bool = Field(
        default=True,
        validation_alias=shared("KAFKA_CREATE_TOPICS"),
        description="create missing topics at start-up (off where an operator manages them)",
    )
    migrate_on_start: bool = Field(
        default=True,
        validation_alias=shared("MIGRATE_ON_START"),
        description="apply the store migrations at start-up",
    )
    kafka_replication_factor: int = Field(
        default=1, ge=1, validation_alias=shared("KAFKA_REPLICATION_FACTOR")
    )
    kafka_max_request_size: int = Field(
        default=4 * 1024 * 1024, ge=1024, validation_alias=shared("KAFKA_MAX_REQUEST_SIZE")
    )
    database_url: SecretStr = Field(
        default=SecretStr(DEFAULT_DATABASE_URL),
        validation_alias=shared("DATABASE_URL"),
        description="may hold a password: shown masked in repr and dumps",
    )
    database_url_file: Path | None = Field(
        default=None,
        validation_alias=shared("DATABASE_URL_FILE"),
        description="a file holding the URL (for secrets mounted as files)",
    )
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        validation_alias=shared("METRICS_PORT"),
        description="/metrics, /healthz, /readyz; 0: not served",
    )
    metrics_host: str = Field(default="127.0.0.1", validation_alias=shared("METRICS_HOST"))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", validation_alias=shared("LOG_LEVEL")
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", validation_alias=shared("LOG_FORMAT")
    )

    @field_validator("kafka_topic_partitions")
    @classmethod
    def _positive_partitions(cls, value: dict[str, int]) -> dict[str, int]:
        bad = {topic: count for topic, count in value.items() if count < 1}
        if bad:
            raise ValueError(f"partition counts must be >= 1: {bad}")
        return value

    def resolved_database_url(self) -> str:
        """The store URL, from ``DATABASE_URL_FILE`` when given (never logged)."""
        if self.database_url_file is not None:
            return self.database_url_file.read_text(encoding="utf-8").strip()
        return self.database_url.get_secret_value()

    def partitions_for(self, topic: str) -> int:
        """Partition count of a topic: its own setting, else the default."""
        return self.kafka_topic_partitions.get(topic, self.kafka_default_partitions)

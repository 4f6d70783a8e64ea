"""Router settings (env prefix ``ROUTER_``; infrastructure settings are shared)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings

__all__ = ["RouterSettings"]


class RouterSettings(ServiceSettings):
    """What the router needs beyond the shared infrastructure settings."""

    model_config = SettingsConfigDict(env_prefix="ROUTER_", extra="ignore", frozen=True)

    group_id: str = "router"
    batch_size: int = Field(default=500, ge=1, le=10_000, description="items per transaction")
    batch_timeout_ms: int = Field(default=20, ge=0, description="wait for a fuller batch")
    batch_top_up_ms: int = Field(
        default=5,
        ge=0,
        le=1_000,
        description=(
            "once a batch is taken, wait at most this long for the records fetched "
            "meanwhile and route them with it (0: off); see kafka.top_up_batch"
        ),
    )
    commands_group_id: str = "router-commands"
    directory_group_id: str = "router-directory"
    follow_up_days: int = Field(
        default=60, ge=0, description="a complaint this soon after a closed dossier is a FAC (4.9)"
    )
    name_threshold: float = Field(default=88.0, ge=50, le=100, description="fuzzy name match")
    address_threshold: float = Field(default=80.0, ge=50, le=100, description="fuzzy address")
    rules_dir: Path | None = Field(
        default=None, description="directory of rule files; the bundled rules when unset"
    )
    classify_processes: int = Field(
        default=2,
        ge=0,
        le=64,
        description=(
            "worker processes that qualify the items (0: a thread of the router's own "
            "process, which then uses about one core)"
        ),
    )
    outbox_sweep_interval_s: float = Field(default=1.0, gt=0)
    db_retry_max_s: float = Field(
        default=30.0, gt=0, description="how long a transaction is retried on store outages"
    )

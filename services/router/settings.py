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
    commands_group_id: str = "router-commands"
    rules_dir: Path | None = Field(
        default=None, description="directory of rule files; the bundled rules when unset"
    )
    outbox_sweep_interval_s: float = Field(default=1.0, gt=0)
    db_retry_max_s: float = Field(
        default=30.0, gt=0, description="how long a transaction is retried on store outages"
    )

"""Ops settings (env prefix ``OPS_``; infrastructure and metrics settings are shared)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from schemas.topics import (
    CUSTOMERS_DIRECTORY,
    DEAD_LETTERS,
    DOSSIER_COMMANDS,
    DOSSIER_EVENTS,
    INTAKE_ITEMS,
    TELEPHONY_RAW,
)
from services.common.settings import ServiceSettings

__all__ = ["PIPELINE_GROUPS", "OpsSettings"]

PIPELINE_GROUPS: dict[str, tuple[str, ...]] = {
    "router": (INTAKE_ITEMS,),
    "router-commands": (DOSSIER_COMMANDS,),
    "router-directory": (CUSTOMERS_DIRECTORY,),
    "intake-phone": (TELEPHONY_RAW,),
    "sla-watch": (DOSSIER_EVENTS,),
}
"""Every consumer group of the pipeline and the topics it consumes (the defaults)."""


class OpsSettings(ServiceSettings):
    """What the lag exporter, ``aiguillage status`` and ``aiguillage dlq`` need."""

    model_config = SettingsConfigDict(env_prefix="OPS_", extra="ignore", frozen=True)

    groups: dict[str, tuple[str, ...]] = Field(
        default_factory=lambda: dict(PIPELINE_GROUPS),
        description='consumer group -> topics, JSON: {"router": ["intake.items.v1"]}',
    )
    lag_interval_s: float = Field(default=15.0, gt=0, description="lag collection period")
    lag_timeout_s: float = Field(default=10.0, gt=0, description="wait for fetch responses")
    dlq_topic: str = DEAD_LETTERS
    deadlines_table: str = Field(
        default="sla_dossiers", description="sla_watch's deadline summary table (status view)"
    )
    at_risk_window_h: float = Field(
        default=24.0, gt=0, description="a deadline is at risk when its holding mail is due sooner"
    )

"""The SLA policy ops can tune: durations, lead times, windows, region (procedure 4.12, 4.13).

A frozen pydantic value, validated where it is built (the service's settings
or ``SLA_WATCH_POLICY_FILE``), so a bad duration or region fails at start-up
with the name of the bad entry.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.sla_watch.domain.calendar import FULL_DAY, DailyWindow, normalize_region

__all__ = ["SlaPolicy"]


class SlaPolicy(BaseModel):
    """The SLA durations, lead times and windows ops can tune (procedure 4.12, 4.13).

    Defaults follow the procedure: 48 clock hours for an e-mail, 5 working days
    for a letter (and a phone contact), 15 for field work or another service;
    a holding mail one working day (6 h for an e-mail) before the deadline,
    between 08:00 and 19:00 on working days; the 4.13 same-day check at 19:00.
    ``working_hours`` is the window counted when ``email_counting`` is
    ``working_hours`` (whole working days by default: "48 h ouvrées").
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    email_response: dt.timedelta = dt.timedelta(hours=48)
    email_counting: Literal["clock_hours", "working_hours"] = "clock_hours"
    working_hours: DailyWindow = FULL_DAY
    letter_working_days: int = Field(default=5, ge=1)
    phone_working_days: int = Field(default=5, ge=1)
    field_work_working_days: int = Field(default=15, ge=1)
    email_holding_lead: dt.timedelta = dt.timedelta(hours=6)
    holding_lead_working_days: int = Field(default=1, ge=0)
    sending_window: DailyWindow = DailyWindow(start=dt.time(8), end=dt.time(19))
    earlier_slot_fallback: bool = True
    earlier_slot_margin: dt.timedelta = dt.timedelta(minutes=30)
    working_day_end: dt.time = dt.time(19)
    default_region: str | None = None

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        return normalize_region(value)

    @field_validator("working_day_end")
    @classmethod
    def _wall_clock(cls, value: dt.time) -> dt.time:
        if value.tzinfo is not None:
            raise ValueError("working_day_end is a Paris wall-clock time, without a time zone")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.email_response <= dt.timedelta(0):
            raise ValueError("email_response must be positive")
        if not dt.timedelta(0) < self.email_holding_lead < self.email_response:
            raise ValueError("email_holding_lead must be positive and shorter than email_response")
        shortest = min(
            self.letter_working_days, self.phone_working_days, self.field_work_working_days
        )
        if self.holding_lead_working_days >= shortest:
            raise ValueError(
                f"holding_lead_working_days ({self.holding_lead_working_days}) must be shorter"
                f" than the shortest working-day deadline ({shortest})"
            )
        if not dt.timedelta(0) <= self.earlier_slot_margin < self.sending_window.length:
            raise ValueError("earlier_slot_margin must be shorter than the sending window")
        return self

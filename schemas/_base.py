"""Base class and field types shared by every aiguillage event contract."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "SUPPORTED_MAJOR",
    "Contract",
    "UnsupportedSchemaVersion",
    "UtcDatetime",
    "Value",
    "major_version",
]

SUPPORTED_MAJOR = 1
_VERSION = re.compile(r"^(\d+)\.(\d+)$")


class UnsupportedSchemaVersion(ValueError):
    """A message carries a schema major version this code does not understand."""


def major_version(version: str) -> int:
    """Return the major part of a ``MAJOR.MINOR`` schema version string."""
    match = _VERSION.match(version)
    if match is None:
        raise UnsupportedSchemaVersion(f"schema_version {version!r} is not MAJOR.MINOR")
    return int(match.group(1))


def _to_utc(value: dt.datetime) -> dt.datetime:
    try:
        return value.astimezone(dt.UTC)
    except OverflowError as exc:  # 0001-01-01T00:00+14:00 has no UTC time: a bad message
        raise ValueError("date-time is out of range once converted to UTC") from exc


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""An aware datetime, normalised to UTC; naive datetimes are rejected."""


class Value(BaseModel):
    """Base of the value objects nested in contracts: frozen, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Contract(Value):
    """Base of every event contract: frozen, strict about unknown fields, versioned.

    Consumers reject a message whose major ``schema_version`` they do not know
    (it goes to the DLQ with the reason) instead of guessing at its meaning.
    """

    schema_version: str = Field(default="1.0", description="MAJOR.MINOR of the contract")

    @field_validator("schema_version")
    @classmethod
    def _known_major(cls, value: str) -> str:
        major = major_version(value)
        if major != SUPPORTED_MAJOR:
            raise UnsupportedSchemaVersion(
                f"unsupported schema major version {major} (this code reads {SUPPORTED_MAJOR}.x)"
            )
        return value

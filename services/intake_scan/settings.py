"""intake_scan settings (env prefix ``INTAKE_SCAN_``; infrastructure settings are shared)."""

from __future__ import annotations

import os
import socket
import zoneinfo
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings
from services.intake_scan.adapters.reader import ReadOptions
from services.intake_scan.adapters.text import ScanLimits
from services.intake_scan.adapters.zips import ZipLimits

__all__ = ["ScanSettings"]

_MB = 1024 * 1024


def _default_instance_id() -> str:
    host = "".join(c if c.isalnum() or c in "._-" else "-" for c in socket.gethostname())
    return f"{host[:60] or 'host'}-{os.getpid()}"


class ScanSettings(ServiceSettings):
    """The drop folders, the OCR pool and the limits that keep hostile files out (4.3)."""

    model_config = SettingsConfigDict(env_prefix="INTAKE_SCAN_", extra="ignore", frozen=True)

    inbox_dir: Path = Field(default=Path("var/scans/inbox"), description="provider's drop folder")
    work_dir: Path = Field(
        default=Path("var/scans/work"), description="per-instance working folders (same disk)"
    )
    archive_dir: Path = Field(
        default=Path("var/scans/archive"), description="letters by content hash"
    )
    quarantine_dir: Path = Field(
        default=Path("var/scans/quarantine"), description="bad input, kept with its reason"
    )
    instance_id: str = Field(
        default_factory=_default_instance_id,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
        description="name of this instance's working folder (host-pid by default)",
    )
    index_name: str = Field(default="index.csv", description="the batch index file name")
    index_timezone: str = Field(
        default="Europe/Paris", description="time zone of index date-times written without offset"
    )
    poll_interval_s: float = Field(default=2.0, gt=0)
    settle_s: float = Field(
        default=5.0, ge=0, description="a batch without .ready is taken once untouched this long"
    )
    stale_zip_s: float = Field(
        default=3600.0, gt=0, description="an unreadable zip this old is quarantined"
    )
    ocr_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64)
    read_ahead: int = Field(
        default=0, ge=0, le=256, description="letters read ahead of publishing (0: 2 x workers)"
    )
    ocr_lang: str = "fra"
    ocr_dpi: int = Field(default=300, ge=72, le=600)
    confidence_floor: float = Field(
        default=60.0, ge=0, le=100, description="under it a letter is flagged for manual reading"
    )
    max_pages: int = Field(default=50, ge=1)
    max_pixels: int = Field(default=60_000_000, ge=1_000_000)
    max_file_mb: int = Field(default=100, ge=1)
    max_index_mb: int = Field(default=10, ge=1)
    zip_max_entries: int = Field(default=5000, ge=1)
    zip_max_total_mb: int = Field(default=4096, ge=1)
    zip_max_ratio: float = Field(
        default=100.0, ge=1, description="largest uncompressed/compressed size ratio of an entry"
    )
    reader_max_crashes: int = Field(
        default=2, ge=1, description="reader crashes on one letter, read alone, before quarantine"
    )
    reader_timeout_s: float = Field(
        default=600.0, gt=0, description="longest one letter is read; beyond, a reader crash"
    )
    db_retry_max_s: float = Field(default=30.0, gt=0)

    @field_validator("index_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("index_name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not value or "/" in value or value.startswith("."):
            raise ValueError("index_name must be a plain file name")
        return value

    def read_options(self) -> ReadOptions:
        """OCR resolution, language and limits for the reader."""
        return ReadOptions(
            dpi=self.ocr_dpi,
            lang=self.ocr_lang,
            limits=ScanLimits(max_pages=self.max_pages, max_pixels=self.max_pixels),
        )

    def zip_limits(self) -> ZipLimits:
        """Limits on zip batches (entries, sizes, compression ratio)."""
        return ZipLimits(
            max_entries=self.zip_max_entries,
            max_total_bytes=self.zip_max_total_mb * _MB,
            max_entry_bytes=self.max_file_mb * _MB,
            max_ratio=self.zip_max_ratio,
        )

    def timezone(self) -> zoneinfo.ZoneInfo:
        """The provider's time zone."""
        return zoneinfo.ZoneInfo(self.index_timezone)

    @property
    def max_file_bytes(self) -> int:
        """Largest letter file accepted."""
        return self.max_file_mb * _MB

    @property
    def max_index_bytes(self) -> int:
        """Largest index file accepted."""
        return self.max_index_mb * _MB

    def effective_read_ahead(self) -> int:
        """Letters read ahead of publishing."""
        return self.read_ahead or 2 * self.ocr_workers

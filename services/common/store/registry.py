"""Every table of the store: the shared ones and each service's ``adapters/tables.py``."""

from __future__ import annotations

import importlib
import importlib.util

import sqlalchemy as sa

from services.common.store.tables import metadata

__all__ = ["SERVICE_TABLE_MODULES", "all_tables"]

SERVICE_TABLE_MODULES = tuple(
    f"services.{service}.adapters.tables"
    for service in ("router", "intake_mail", "intake_scan", "intake_phone", "sla_watch", "ops")
)


def all_tables() -> sa.MetaData:
    """The shared metadata with every service's tables registered on it."""
    for module in SERVICE_TABLE_MODULES:
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
    return metadata

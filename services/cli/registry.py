"""The services ``aiguillage run`` and ``aiguillage up`` know, and the CLI groups they add."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable

import typer
from faststream import FastStream

__all__ = ["CLI_GROUPS", "SERVICES", "cli_groups", "load_app"]


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its package does not exist (yet)
        return False


_KNOWN_SERVICES: dict[str, str] = {
    "router": "services.router.app",
    "intake-mail": "services.intake_mail.app",
    "intake-scan": "services.intake_scan.app",
    "intake-phone": "services.intake_phone.app",
    "sla-watch": "services.sla_watch.app",
    "lag-exporter": "services.ops.app",
}
# name -> module with an app factory ``create_app``; a service joins once its app exists.
SERVICES: dict[str, str] = {
    name: module for name, module in _KNOWN_SERVICES.items() if _exists(module)
}

# command group -> "module:attribute" of a ``typer.Typer`` (e.g. ``aiguillage sla due``).
CLI_GROUPS: dict[str, str] = {
    "sla": "services.sla_watch.cli:cli",
    "scan": "services.intake_scan.cli:cli",
    "phone": "services.intake_phone.cli:cli",
    "mail": "services.intake_mail.cli:cli",
    "customers": "services.router.cli:customers",
    "dlq": "services.ops.cli:dlq",
    "outbox": "services.ops.outbox_cli:outbox",
}


def load_app(name: str) -> Callable[[], FastStream]:
    """The app factory of a service, imported on demand."""
    module = importlib.import_module(SERVICES[name])
    create: Callable[[], FastStream] = module.create_app
    return create


def cli_groups() -> dict[str, typer.Typer]:
    """The command groups of the services that provide one."""
    groups: dict[str, typer.Typer] = {}
    for name, target in CLI_GROUPS.items():
        module_name, attribute = target.split(":")
        if _exists(module_name):
            groups[name] = getattr(importlib.import_module(module_name), attribute)
    return groups

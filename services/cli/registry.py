"""The services ``aiguillage run`` and ``aiguillage up`` know, by name."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from faststream import FastStream

__all__ = ["SERVICES", "load_app"]

# name -> "module:factory"; a service joins here when it exists.
SERVICES: dict[str, str] = {
    "router": "services.router.app:create_app",
}


def load_app(name: str) -> Callable[[], FastStream]:
    """The app factory of a service, imported on demand."""
    module_name, factory = SERVICES[name].split(":")
    module = importlib.import_module(module_name)
    create: Callable[[], FastStream] = getattr(module, factory)
    return create

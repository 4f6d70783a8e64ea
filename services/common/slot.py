"""A slot for a long-lived resource built in an app's lifespan and used by its handlers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["ServiceSlot"]

T = TypeVar("T")


@dataclass
class ServiceSlot(Generic[T]):
    """Holds the service object once start-up built it; handlers ``require()`` it."""

    name: str
    service: T | None = field(default=None)

    def require(self) -> T:
        """The service, or a clear error when a message arrives before start-up finished."""
        if self.service is None:
            raise RuntimeError(f"{self.name} service used before the app started")
        return self.service

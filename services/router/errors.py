"""Router errors: one base, named subclasses; bad input among them goes to the DLQ."""

from __future__ import annotations

from services.common.dlq import PoisonMessage

__all__ = ["RouterError", "UnknownDossier"]


class RouterError(Exception):
    """Base of the router's own errors."""


class UnknownDossier(PoisonMessage, RouterError):
    """A command names a dossier the store does not hold."""

    def __init__(self, dossier_id: str) -> None:
        super().__init__("unknown_dossier", f"no dossier {dossier_id} in the store")

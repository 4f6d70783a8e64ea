"""Router errors: one base, named subclasses; bad input among them goes to the DLQ."""

from __future__ import annotations

from services.common.dlq import PoisonMessage

__all__ = ["RequalifyConflict", "RouterError", "UnknownDossier"]


class RouterError(Exception):
    """Base of the router's own errors."""


class UnknownDossier(PoisonMessage, RouterError):
    """A command names a dossier the store does not hold."""

    def __init__(self, dossier_id: str) -> None:
        super().__init__("unknown_dossier", f"no dossier {dossier_id} in the store")


class RequalifyConflict(PoisonMessage, RouterError):
    """A requalification into a type the customer already has an open dossier of.

    At most one open dossier per customer and type (4.8: a second contact joins
    the open one): the command cannot apply as it stands, and retrying it never
    will, so it goes to the DLQ with the other dossier's id for a person to merge.
    """

    def __init__(self, dossier_id: str, dossier_type: str, other_id: str) -> None:
        super().__init__(
            "requalify_conflict",
            f"dossier {dossier_id} cannot become {dossier_type}: "
            f"the customer's dossier {other_id} of that type is open",
        )

"""The ``AccountAction`` contract on ``account.actions.v1`` (procedure 4.13, 5.1.7.1)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas._base import Contract, UtcDatetime

__all__ = ["AccountAction"]


class AccountAction(Contract):
    """An action the billing system must take on a customer account.

    Opening a Facture, Règlement, Dégrèvement or RDR dossier blocks dunning
    until it is closed; a complaint not resolved the same day suspends the
    monthly direct debit (4.13, 5.1.7.1).
    """

    action_id: str = Field(min_length=1, max_length=300, description="deterministic, for dedupe")
    action: Literal["block_dunning", "unblock_dunning", "suspend_direct_debit"]
    customer_ref: str = Field(pattern=r"^\d{9}$")
    dossier_id: str
    occurred_at: UtcDatetime
    reason: str

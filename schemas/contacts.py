"""The ``OutboundContact`` contract: a contact we made towards the customer (5.1.4)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas._base import Contract, UtcDatetime

__all__ = ["OutboundContact"]


class OutboundContact(Contract):
    """An acknowledgement, holding mail or call we sent, traced like any contact (5.1.4)."""

    contact_id: str = Field(min_length=1, max_length=300, description="deterministic, for dedupe")
    purpose: Literal["acknowledgement", "holding_mail", "holding_call"]
    medium: Literal["email", "phone"]
    sent_at: UtcDatetime
    item_id: str | None = None
    dossier_id: str | None = None

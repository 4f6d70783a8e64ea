"""The ``CustomerRecord`` contract on ``customers.directory.v1`` (a compacted topic).

The customer-information system's change feed: one record per account,
keyed by customer reference; a record with ``deleted`` (or a null-value
tombstone) removes the account from the directory.
"""

from __future__ import annotations

from pydantic import Field

from schemas._base import Contract, UtcDatetime
from schemas.intake import CUSTOMER_REF_PATTERN, E164_PATTERN, PostalAddress

__all__ = ["CustomerRecord"]


class CustomerRecord(Contract):
    """One account holder as the customer-information system knows them (procedure 4.4)."""

    customer_ref: str = Field(pattern=CUSTOMER_REF_PATTERN)
    first_name: str | None = None
    last_name: str | None = Field(default=None, description="or the company's name (5.1.3.1)")
    email: str | None = Field(default=None, max_length=320)
    mobile: str | None = Field(default=None, pattern=E164_PATTERN)
    phone: str | None = Field(default=None, pattern=E164_PATTERN)
    address: PostalAddress | None = Field(default=None, description="the serviced address")
    updated_at: UtcDatetime
    deleted: bool = False

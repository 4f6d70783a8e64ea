"""The router's own tables: the customer directory materialised from ``customers.directory.v1``."""

from __future__ import annotations

import sqlalchemy as sa

from services.common.store.tables import UtcTimestamp, metadata

__all__ = ["customers"]

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("customer_ref", sa.String(9), primary_key=True),
    sa.Column("first_name", sa.String(200), nullable=True),
    sa.Column("last_name", sa.String(200), nullable=True),
    sa.Column("email", sa.String(320), nullable=True),
    sa.Column("mobile", sa.String(16), nullable=True),
    sa.Column("phone", sa.String(16), nullable=True),
    sa.Column("address_line", sa.String(500), nullable=True),
    sa.Column("postcode", sa.String(5), nullable=True),
    sa.Column("city", sa.String(200), nullable=True),
    sa.Column("updated_at", UtcTimestamp, nullable=False),
    sa.Index("ix_customers_email", "email"),
    sa.Index("ix_customers_mobile", "mobile"),
    sa.Index("ix_customers_postcode", "postcode"),
)

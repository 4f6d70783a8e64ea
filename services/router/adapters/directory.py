"""The customer directory table: candidates for identification, and the change feed's writes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas import CustomerRecord, SenderHints
from services.common.logging import get_logger
from services.router.adapters.repository import among
from services.router.adapters.tables import customers
from services.router.domain.identification import DirectoryEntry

__all__ = ["DirectoryRepository"]

log = get_logger(__name__)


class DirectoryRepository:
    """Reads and writes the materialised directory inside the caller's transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def candidates(
        self, hints: Iterable[SenderHints], limit: int = 5000
    ) -> list[DirectoryEntry]:
        """Accounts sharing a reference, e-mail, mobile or postcode with any of the contacts.

        Reference, e-mail and mobile matches are all returned; accounts found by
        postcode only (for name + address matching) are capped at ``limit``
        (logged when the cap is reached), so that one letter from a busy
        postcode never pushes another contact's exact match out of the batch.
        """
        refs, emails, mobiles, postcodes = set(), set(), set(), set()
        for hint in hints:
            if hint.customer_ref:
                refs.add(hint.customer_ref)
            if hint.email:
                emails.add(hint.email.lower())
            if hint.mobile:
                mobiles.add(hint.mobile)
            if hint.postal_address and hint.postal_address.postcode and hint.last_name:
                postcodes.add(hint.postal_address.postcode)
        c = customers.c
        postgres = self._db.dialect.name == "postgresql"
        exact = [
            among(column, values, postgres=postgres)
            for column, values in ((c.customer_ref, refs), (c.email, emails), (c.mobile, mobiles))
            if values
        ]
        rows: list[sa.Row[Any]] = []
        if exact:  # a handful of rows per contact: never cut, whatever else the batch holds
            rows += (await self._db.execute(sa.select(customers).where(sa.or_(*exact)))).all()
        if postcodes:  # name + address: a busy postcode holds tens of thousands of accounts
            query = (
                sa.select(customers)
                .where(among(c.postcode, postcodes, postgres=postgres))
                .order_by(c.customer_ref)
                .limit(limit)
            )
            by_address = (await self._db.execute(query)).all()
            if len(by_address) >= limit:
                log.warning("directory.candidates_cut", postcodes=len(postcodes), limit=limit)
            rows += by_address
        unique = {r.customer_ref: r for r in rows}
        return [
            DirectoryEntry(
                customer_ref=r.customer_ref,
                first_name=r.first_name,
                last_name=r.last_name,
                email=r.email,
                mobile=r.mobile,
                postcode=r.postcode,
                address_line=r.address_line,
            )
            for r in unique.values()
        ]

    async def save(self, record: CustomerRecord) -> str:
        """Apply one directory record: upsert, or delete when it says so (last write wins)."""
        await self._db.execute(
            customers.delete().where(
                customers.c.customer_ref == record.customer_ref,
                customers.c.updated_at <= record.updated_at,
            )
        )
        if record.deleted:
            return "deleted"
        newer = sa.select(sa.func.count()).where(customers.c.customer_ref == record.customer_ref)
        if await self._db.scalar(newer):
            return "stale"
        address = record.address
        await self._db.execute(
            customers.insert().values(
                customer_ref=record.customer_ref,
                first_name=record.first_name,
                last_name=record.last_name,
                email=record.email.lower() if record.email else None,
                mobile=record.mobile,
                phone=record.phone,
                address_line=" ".join(address.lines) if address and address.lines else None,
                postcode=address.postcode if address else None,
                city=address.city if address else None,
                updated_at=record.updated_at,
            )
        )
        return "saved"

    async def forget(self, customer_ref: str) -> None:
        """Remove an account (a null-value tombstone on the compacted topic)."""
        await self._db.execute(customers.delete().where(customers.c.customer_ref == customer_ref))

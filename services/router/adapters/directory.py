"""The customer directory table: candidates for identification, and the change feed's writes."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas import CustomerRecord, SenderHints
from services.router.adapters.repository import among
from services.router.adapters.tables import customers
from services.router.domain.identification import DirectoryEntry

__all__ = ["DirectoryRepository"]


class DirectoryRepository:
    """Reads and writes the materialised directory inside the caller's transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def candidates(
        self, hints: Iterable[SenderHints], limit: int = 5000
    ) -> list[DirectoryEntry]:
        """Accounts sharing a reference, e-mail, mobile or postcode with any of the contacts."""
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
        pairs = (
            (c.customer_ref, refs),
            (c.email, emails),
            (c.mobile, mobiles),
            (c.postcode, postcodes),
        )
        postgres = self._db.dialect.name == "postgresql"
        conditions = [
            among(column, values, postgres=postgres) for column, values in pairs if values
        ]
        if not conditions:
            return []
        rows = (
            await self._db.execute(sa.select(customers).where(sa.or_(*conditions)).limit(limit))
        ).all()
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
            for r in rows
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

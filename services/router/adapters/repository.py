"""The router's repository over the dossier store (SQLAlchemy Core, SQLite or PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import zlib

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas import CustomerRecord, SenderHints
from services.common.store.tables import dossier_contacts, dossiers, processed_messages
from services.router.adapters.tables import customers
from services.router.domain.dossiers import DossierView
from services.router.domain.identification import DirectoryEntry

__all__ = ["DossierRepository", "DossierRow"]

DossierRow = sa.Row[tuple[object, ...]]


class DossierRepository:
    """Reads and writes dossiers inside one transaction the caller owns."""

    def __init__(self, connection: AsyncConnection, *, postgres: bool) -> None:
        self._db = connection
        self._postgres = postgres

    async def is_processed(self, consumer: str, message_id: str) -> bool:
        """True when this consumer already handled the message (redelivery)."""
        query = sa.select(sa.literal(1)).where(
            processed_messages.c.consumer == consumer,
            processed_messages.c.message_id == message_id,
        )
        return (await self._db.execute(query)).first() is not None

    async def mark_processed(
        self, consumer: str, message_id: str, outcome: str, dossier_id: str | None, now: dt.datetime
    ) -> None:
        """Record the message as handled, in the same transaction as its effects."""
        await self._db.execute(
            processed_messages.insert().values(
                consumer=consumer,
                message_id=message_id,
                outcome=outcome,
                dossier_id=dossier_id,
                processed_at=now,
            )
        )

    async def lock_customer(self, customer_key: str) -> None:
        """Serialise the handling of one customer's contacts across router instances.

        PostgreSQL: a transaction-scoped advisory lock on the customer key.
        SQLite: ``BEGIN IMMEDIATE`` already holds the single write lock.
        """
        if self._postgres:
            lock_id = zlib.crc32(customer_key.encode())
            await self._db.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_id})

    async def customer_dossiers(self, customer_key: str) -> list[DossierView]:
        """The customer's open dossiers (the ones a new contact may attach to)."""
        query = sa.select(
            dossiers.c.dossier_id,
            dossiers.c.dossier_type,
            dossiers.c.status,
            dossiers.c.customer_ref,
        ).where(dossiers.c.customer_key == customer_key, dossiers.c.status == "open")
        rows = (await self._db.execute(query)).all()
        return [DossierView(r.dossier_id, r.dossier_type, r.status, r.customer_ref) for r in rows]

    async def directory_candidates(
        self, hints: SenderHints, limit: int = 500
    ) -> list[DirectoryEntry]:
        """Directory accounts sharing the contact's reference, e-mail, mobile or postcode."""
        c = customers.c
        conditions = []
        if hints.customer_ref:
            conditions.append(c.customer_ref == hints.customer_ref)
        if hints.email:
            conditions.append(c.email == hints.email.lower())
        if hints.mobile:
            conditions.append(c.mobile == hints.mobile)
        if hints.postal_address and hints.postal_address.postcode:
            conditions.append(c.postcode == hints.postal_address.postcode)
        if not conditions:
            return []
        query = sa.select(customers).where(sa.or_(*conditions)).limit(limit)
        rows = (await self._db.execute(query)).all()
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

    async def save_customer(self, record: CustomerRecord) -> str:
        """Apply one directory record: upsert, or delete when it says so (last write wins)."""
        await self._db.execute(
            customers.delete().where(
                customers.c.customer_ref == record.customer_ref,
                customers.c.updated_at <= record.updated_at,
            )
        )
        if record.deleted:
            return "deleted"
        if await self._db.scalar(
            sa.select(sa.func.count()).where(customers.c.customer_ref == record.customer_ref)
        ):
            return "stale"  # a newer record is already there
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

    async def forget_customer(self, customer_ref: str) -> None:
        """Remove an account (a null-value tombstone on the compacted topic)."""
        await self._db.execute(customers.delete().where(customers.c.customer_ref == customer_ref))

    async def get(self, dossier_id: str) -> DossierRow | None:
        """One dossier row, locked for update on PostgreSQL."""
        query = sa.select(dossiers).where(dossiers.c.dossier_id == dossier_id)
        if self._postgres:
            query = query.with_for_update()
        return (await self._db.execute(query)).first()

    async def insert_dossier(self, values: dict[str, object]) -> None:
        """Insert a new dossier row."""
        await self._db.execute(dossiers.insert().values(**values))

    async def update_dossier(self, dossier_id: str, values: dict[str, object]) -> None:
        """Change columns of one dossier."""
        await self._db.execute(
            dossiers.update().where(dossiers.c.dossier_id == dossier_id).values(**values)
        )

    async def add_contact(
        self,
        *,
        item_id: str,
        dossier_id: str,
        channel: str,
        role: str,
        contact_date: dt.datetime,
        now: dt.datetime,
        sender_is_holder: bool = True,
    ) -> None:
        """Attach a contact to a dossier (4.8, 5.1.4: every contact is tied to its dossier)."""
        await self._db.execute(
            dossier_contacts.insert().values(
                item_id=item_id,
                dossier_id=dossier_id,
                channel=channel,
                role=role,
                contact_date=contact_date,
                attached_at=now,
                sender_is_holder=sender_is_holder,
            )
        )

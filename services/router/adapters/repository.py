"""The router's repository over the dossier store (SQLAlchemy Core, SQLite or PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import zlib

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas import CustomerRecord, IntakeItem, SenderHints
from services.common.store.tables import dossier_contacts, dossiers, processed_messages
from services.router.adapters.tables import customers
from services.router.domain.dossiers import AttachToDossier, CancelRequest, DossierView
from services.router.domain.effects import Effects
from services.router.domain.identification import DirectoryEntry

__all__ = ["DossierRepository", "DossierRow"]


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes: they were stored as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


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

    async def customer_dossiers(
        self, customer_key: str, closed_since: dt.datetime
    ) -> list[DossierView]:
        """The customer's open dossiers and those closed since ``closed_since`` (4.8, 4.9)."""
        c = dossiers.c
        recently_closed = sa.and_(c.status == "closed", c.closed_at >= closed_since)
        query = sa.select(
            c.dossier_id, c.dossier_type, c.status, c.customer_ref, c.service, c.closed_at
        ).where(c.customer_key == customer_key, sa.or_(c.status == "open", recently_closed))
        rows = (await self._db.execute(query)).all()
        return [
            DossierView(
                r.dossier_id,
                r.dossier_type,
                r.status,
                r.customer_ref,
                r.service,
                _aware(r.closed_at),
            )
            for r in rows
        ]

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

    async def save_routing(
        self, item: IntakeItem, customer_key: str | None, effects: Effects, now: dt.datetime
    ) -> str | None:
        """Persist a routing decision: the new dossier or the status change, and the contact."""
        decision = effects.decision
        if isinstance(decision, AttachToDossier):
            dossier_id, role = decision.dossier_id, "multi_contact"
        elif isinstance(decision, CancelRequest):
            dossier_id, role = decision.dossier.dossier_id, "cancellation"
            await self.update_dossier(dossier_id, {"status": "cancelled", "closed_at": now})
        elif effects.opened is not None:
            opened = effects.opened
            dossier_id, role = opened.dossier_id, "initial"
            await self.insert_dossier(
                {
                    "dossier_id": dossier_id,
                    "customer_key": None if item.internal else customer_key,
                    "customer_ref": opened.customer_ref,
                    "dossier_type": opened.dossier_type,
                    "kind": opened.kind,
                    "urgency": opened.urgency,
                    "service": opened.service,
                    "channel": opened.channel,
                    "sensitive": ",".join(opened.sensitive),
                    "needs_field_work": opened.needs_field_work,
                    "identified": opened.identified,
                    "identification": opened.identification,
                    "status": "open",
                    "item_id": item.item_id,
                    "contact_date": item.received_at,
                    "opened_at": now,
                    "linked_dossier_id": opened.linked_dossier_id,
                }
            )
        else:
            return None
        holder = effects.attached or effects.opened
        await self.add_contact(
            item_id=item.item_id,
            dossier_id=dossier_id,
            channel=item.channel,
            role=role,
            contact_date=item.received_at,
            now=now,
            sender_is_holder=holder.sender_is_holder if holder else True,
        )
        return dossier_id

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

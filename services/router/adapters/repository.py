"""The router's repository over the dossier store (SQLAlchemy Core, SQLite or PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.store.tables import dossier_contacts, dossiers, processed_messages
from services.router.adapters.batch import RoutingBatch
from services.router.domain.dossiers import DossierView

__all__ = ["DossierRepository", "DossierRow", "among"]


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes: they were stored as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


DossierRow = sa.Row[tuple[object, ...]]


def among(
    column: sa.ColumnElement[str], values: Iterable[str], *, postgres: bool
) -> sa.ColumnElement[bool]:
    """``column`` is one of ``values``: one array parameter on PostgreSQL, ``IN`` elsewhere.

    ``= ANY(:values)`` keeps the statement text the same whatever the batch
    size, so PostgreSQL and asyncpg reuse one prepared statement and SQLAlchemy
    does not render a placeholder per value; SQLite has no arrays.
    """
    listed = sorted(values)
    if postgres:
        return column == sa.any_(sa.bindparam(None, listed, type_=ARRAY(sa.String)))
    return column.in_(listed)


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

    async def get(self, dossier_id: str, *, lock_customer: bool = False) -> DossierRow | None:
        """One dossier row, locked for update on PostgreSQL.

        With ``lock_customer``, the customer's lock is taken first, the one
        routing holds while it reads and changes the customer's dossiers: a
        command and a batch never act on one customer's dossiers at once (a
        close committed while a batch cancels the dossier, say).
        """
        this = dossiers.c.dossier_id == dossier_id
        query = sa.select(dossiers).where(this)
        if self._postgres and lock_customer:
            key = await self._db.scalar(sa.select(dossiers.c.customer_key).where(this))
            if key is not None:
                await self.lock_customer(str(key))
        if self._postgres:
            query = query.with_for_update()
        return (await self._db.execute(query)).first()

    async def open_dossier_of(self, customer_key: str, dossier_type: str) -> str | None:
        """The customer's open dossier of this type, if any (there is at most one)."""
        c = dossiers.c
        query = sa.select(c.dossier_id).where(
            c.customer_key == customer_key, c.dossier_type == dossier_type, c.status == "open"
        )
        found = await self._db.scalar(query)
        return None if found is None else str(found)

    async def insert_dossier(self, values: dict[str, object]) -> None:
        """Insert a new dossier row."""
        await self._db.execute(dossiers.insert().values(**values))

    async def update_dossier(self, dossier_id: str, values: dict[str, object]) -> None:
        """Change columns of one dossier."""
        await self._db.execute(
            dossiers.update().where(dossiers.c.dossier_id == dossier_id).values(**values)
        )

    async def processed_ids(self, consumer: str, message_ids: Sequence[str]) -> set[str]:
        """Which of these messages this consumer already handled.

        On PostgreSQL the ids are joined row-wise to the primary key, which the
        planner always answers with one index probe per id; ``message_id IN
        (...)`` may instead read every row of the consumer while the table's
        statistics lag behind its growth (a fresh or fast-growing store).
        """
        if self._postgres:
            probe = sa.text(
                "SELECT message_id FROM processed_messages WHERE (consumer, message_id) IN "
                "(SELECT CAST(:consumer AS varchar), unnest(CAST(:ids AS varchar[])))"
            )
            found = await self._db.execute(probe, {"consumer": consumer, "ids": list(message_ids)})
            return set(found.scalars())
        c = processed_messages.c
        query = sa.select(c.message_id).where(c.consumer == consumer, c.message_id.in_(message_ids))
        return set((await self._db.execute(query)).scalars())

    async def lock_customers(self, customer_keys: Iterable[str]) -> None:
        """Lock several customers at once, in a fixed order (no deadlock between instances)."""
        if not self._postgres:
            return
        ids = sorted({zlib.crc32(key.encode()) for key in customer_keys})
        if ids:
            await self._db.execute(
                sa.text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:ks AS bigint[])) AS k"),
                {"ks": ids},
            )

    async def dossiers_of(
        self, customer_keys: Iterable[str], closed_since: dt.datetime
    ) -> dict[str, list[DossierView]]:
        """Open and recently closed dossiers of several customers, by customer key."""
        keys = sorted(set(customer_keys))
        if not keys:
            return {}
        c = dossiers.c
        recently_closed = sa.and_(c.status == "closed", c.closed_at >= closed_since)
        query = sa.select(
            c.customer_key,
            c.dossier_id,
            c.dossier_type,
            c.status,
            c.customer_ref,
            c.service,
            c.closed_at,
        ).where(
            among(c.customer_key, keys, postgres=self._postgres),
            sa.or_(c.status == "open", recently_closed),
        )
        found: dict[str, list[DossierView]] = {}
        for r in (await self._db.execute(query)).all():
            view = DossierView(
                r.dossier_id,
                r.dossier_type,
                r.status,
                r.customer_ref,
                r.service,
                _aware(r.closed_at),
            )
            found.setdefault(r.customer_key, []).append(view)
        return found

    async def save_batch(self, batch: RoutingBatch) -> None:
        """Write a batch's status changes, dossiers, contacts and processed ids, set-wise.

        Status changes first: a request cancelled then asked again in one batch
        ends its old dossier before the new one of its type is inserted (at most
        one open dossier per customer and type).
        """
        for dossier_id, values in batch.updates:
            await self.update_dossier(dossier_id, values)
        if batch.dossiers:
            await self._db.execute(dossiers.insert(), batch.dossiers)
        if batch.contacts:
            await self._db.execute(dossier_contacts.insert(), batch.contacts)
        if batch.processed:
            await self._db.execute(processed_messages.insert(), batch.processed)

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

"""sla_watch's repository over the dossier store (SQLAlchemy Core, SQLite or PostgreSQL).

Claims: on PostgreSQL, due dossiers and queued mails are selected ``FOR UPDATE
SKIP LOCKED``, so instances running side by side never take the same row; on
SQLite every write transaction starts with ``BEGIN IMMEDIATE`` (the store's
single-writer lock), so the same queries are serialised instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.dossiers import DossierEvent
from services.common.store.tables import processed_messages
from services.sla_watch.adapters.tables import sla_actions, sla_dossiers

__all__ = ["QueuedMail", "SlaRepository", "StoredDossier", "Summary"]

_EVENTS: TypeAdapter[list[DossierEvent]] = TypeAdapter(list[DossierEvent])


@dataclass(frozen=True, slots=True)
class StoredDossier:
    """A dossier's events as sla_watch recorded them (JSON, oldest first)."""

    dossier_id: str
    raw_events: str

    def events(self) -> tuple[DossierEvent, ...]:
        """The events, validated against the contracts (``ValidationError`` if they drifted)."""
        return tuple(_EVENTS.validate_json(self.raw_events))


@dataclass(frozen=True, slots=True)
class Summary:
    """The columns derived from a dossier's fold: what ops query and the scheduler indexes."""

    status: str
    deadline_id: str | None
    due_at: dt.datetime | None
    holding_mail_at: dt.datetime | None
    next_check_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class QueuedMail:
    """A holding mail waiting in the ledger (``pending``, or ``sending`` with a lapsed lease)."""

    action_id: str
    dossier_id: str
    deadline_id: str
    status: str
    attempts: int
    uncertain: int
    message_id: str


class SlaRepository:
    """Reads and writes sla_watch's rows inside one transaction the caller owns."""

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
        self,
        consumer: str,
        message_ids: Iterable[str],
        outcome: str,
        dossier_id: str | None,
        now: dt.datetime,
    ) -> None:
        """Record messages as handled, in the same transaction as their effects."""
        rows = [
            {
                "consumer": consumer,
                "message_id": message_id,
                "outcome": outcome[:40],
                "dossier_id": dossier_id,
                "processed_at": now,
            }
            for message_id in message_ids
        ]
        if rows:
            await self._db.execute(processed_messages.insert(), rows)

    def _stored(self, row: Any) -> StoredDossier:
        return StoredDossier(row.dossier_id, row.events)

    async def load(self, dossier_id: str, *, lock: bool = True) -> StoredDossier | None:
        """One dossier's events; its row locked for update on PostgreSQL when ``lock``."""
        query = sa.select(sla_dossiers.c.dossier_id, sla_dossiers.c.events).where(
            sla_dossiers.c.dossier_id == dossier_id
        )
        if lock and self._postgres:
            query = query.with_for_update()
        row = (await self._db.execute(query)).first()
        return None if row is None else self._stored(row)

    async def claim_due(self, now: dt.datetime, limit: int) -> list[StoredDossier]:
        """Dossiers whose next check has come, earliest first, locked (SKIP LOCKED on PG)."""
        query = (
            sa.select(sla_dossiers.c.dossier_id, sla_dossiers.c.events)
            .where(sla_dossiers.c.next_check_at <= now)
            .order_by(sla_dossiers.c.next_check_at)
            .limit(limit)
        )
        if self._postgres:
            query = query.with_for_update(skip_locked=True)
        return [self._stored(row) for row in (await self._db.execute(query)).all()]

    async def save(
        self,
        dossier_id: str,
        events: Sequence[DossierEvent],
        summary: Summary,
        now: dt.datetime,
        *,
        new: bool,
    ) -> None:
        """Insert or update a dossier's events and summary columns."""
        values = {
            "events": _EVENTS.dump_json(list(events)).decode(),
            "status": summary.status,
            "deadline_id": summary.deadline_id,
            "due_at": summary.due_at,
            "holding_mail_at": summary.holding_mail_at,
            "next_check_at": summary.next_check_at,
            "parked_reason": None,
            "updated_at": now,
        }
        if new:
            await self._db.execute(sla_dossiers.insert().values(dossier_id=dossier_id, **values))
        else:
            await self._db.execute(
                sla_dossiers.update()
                .where(sla_dossiers.c.dossier_id == dossier_id)
                .values(**values)
            )

    async def park(self, dossier_id: str, reason: str, now: dt.datetime) -> None:
        """Take a dossier the rules cannot handle off the schedule, with the reason."""
        await self._db.execute(
            sla_dossiers.update()
            .where(sla_dossiers.c.dossier_id == dossier_id)
            .values(next_check_at=None, parked_reason=reason[:200], updated_at=now)
        )

    async def action_ids(self, dossier_id: str) -> frozenset[str]:
        """Ids of the actions the ledger holds for a dossier, whatever their status."""
        query = sa.select(sla_actions.c.action_id).where(sla_actions.c.dossier_id == dossier_id)
        return frozenset((await self._db.execute(query)).scalars().all())

    async def record_action(self, **values: Any) -> None:
        """Insert one ledger row (its primary key makes the action happen once)."""
        await self._db.execute(sla_actions.insert().values(**values))

    async def queued_mails(self, wall_now: dt.datetime, limit: int) -> list[QueuedMail]:
        """Holding mails ready to be (re)claimed, oldest first, locked (SKIP LOCKED on PG)."""
        query = (
            sa.select(sla_actions)
            .where(
                sla_actions.c.status.in_(("pending", "sending")),
                sla_actions.c.available_at <= wall_now,
            )
            .order_by(sla_actions.c.available_at)
            .limit(limit)
        )
        if self._postgres:
            query = query.with_for_update(skip_locked=True)
        rows = (await self._db.execute(query)).all()
        return [
            QueuedMail(
                action_id=row.action_id,
                dossier_id=row.dossier_id,
                deadline_id=row.deadline_id,
                status=row.status,
                attempts=row.attempts,
                uncertain=row.uncertain,
                message_id=row.message_id,
            )
            for row in rows
        ]

    async def update_action(
        self, action_id: str, values: Mapping[str, Any], *, token: str | None = None
    ) -> bool:
        """Change one ledger row; with ``token``, only while that claim still holds it."""
        query = sla_actions.update().where(sla_actions.c.action_id == action_id)
        if token is not None:
            query = query.where(
                sla_actions.c.claim_token == token, sla_actions.c.status == "sending"
            )
        result = await self._db.execute(query.values(**values))
        return bool(result.rowcount)

    async def delete_action(self, action_id: str) -> None:
        """Forget a queued mail that is no longer wanted (a later deadline may queue it again)."""
        await self._db.execute(sla_actions.delete().where(sla_actions.c.action_id == action_id))

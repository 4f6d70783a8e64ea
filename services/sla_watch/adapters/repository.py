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

__all__ = ["DossierRow", "QueuedMail", "SlaRepository", "StoredDossier", "Summary"]

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
class DossierRow:
    """One dossier to write: its events and summary, inserted when ``new`` else updated."""

    dossier_id: str
    events: Sequence[DossierEvent]
    summary: Summary
    new: bool = False


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


AWAITING_OPENING = "awaiting_opening"  # events of a dossier whose opening has not arrived


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
        await self.mark_processed_many(
            consumer, [(m, dossier_id) for m in message_ids], outcome, now
        )

    async def mark_processed_many(
        self,
        consumer: str,
        messages: Iterable[tuple[str, str | None]],
        outcome: str,
        now: dt.datetime,
    ) -> None:
        """Record ``(message id, dossier id)`` pairs as handled, in one statement."""
        rows = [
            {
                "consumer": consumer,
                "message_id": message_id,
                "outcome": outcome[:40],
                "dossier_id": dossier_id,
                "processed_at": now,
            }
            for message_id, dossier_id in messages
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

    async def load_many(
        self, dossier_ids: Iterable[str], *, lock: bool = True
    ) -> dict[str, StoredDossier]:
        """Several dossiers' events by id, in one query; locked in id order on PostgreSQL
        when ``lock`` (the same order for every instance, so two batches cannot deadlock)."""
        ids = sorted(set(dossier_ids))
        if not ids:
            return {}
        query = (
            sa.select(sla_dossiers.c.dossier_id, sla_dossiers.c.events)
            .where(sla_dossiers.c.dossier_id.in_(ids))
            .order_by(sla_dossiers.c.dossier_id)
        )
        if lock and self._postgres:
            query = query.with_for_update()
        rows = (await self._db.execute(query)).all()
        return {row.dossier_id: self._stored(row) for row in rows}

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
        await self.save_many([DossierRow(dossier_id, events, summary, new)], now)

    async def save_many(self, rows: Sequence[DossierRow], now: dt.datetime) -> None:
        """Insert the new dossiers and update the others, one statement each (executemany)."""

        def values(row: DossierRow) -> dict[str, Any]:
            return {
                "dossier_id": row.dossier_id,
                "events": _EVENTS.dump_json(list(row.events)).decode(),
                "status": row.summary.status,
                "deadline_id": row.summary.deadline_id,
                "due_at": row.summary.due_at,
                "holding_mail_at": row.summary.holding_mail_at,
                "next_check_at": row.summary.next_check_at,
                "parked_reason": None,
                "updated_at": now,
            }

        inserts = [values(row) for row in rows if row.new]
        if inserts:
            await self._db.execute(sla_dossiers.insert(), inserts)
        updates = [{f"b_{k}": v for k, v in values(row).items()} for row in rows if not row.new]
        if updates:
            columns = [key.removeprefix("b_") for key in updates[0] if key != "b_dossier_id"]
            statement = (
                sla_dossiers.update()
                .where(sla_dossiers.c.dossier_id == sa.bindparam("b_dossier_id"))
                .values({column: sa.bindparam(f"b_{column}") for column in columns})
            )
            await self._db.execute(statement, updates)

    async def save_awaiting_opening(
        self, dossier_id: str, events: Sequence[DossierEvent], now: dt.datetime, *, new: bool
    ) -> None:
        """Keep events that arrived before the dossier's opening (no deadline, no check)."""
        summary = Summary(
            status=AWAITING_OPENING,
            deadline_id=None,
            due_at=None,
            holding_mail_at=None,
            next_check_at=None,
        )
        await self.save_many([DossierRow(dossier_id, events, summary, new)], now)

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

    async def action_ids_many(self, dossier_ids: Iterable[str]) -> dict[str, frozenset[str]]:
        """``action_ids`` for several dossiers in one query (every id is a key)."""
        ids = sorted(set(dossier_ids))
        found: dict[str, set[str]] = {dossier_id: set() for dossier_id in ids}
        if ids:
            query = sa.select(sla_actions.c.dossier_id, sla_actions.c.action_id).where(
                sla_actions.c.dossier_id.in_(ids)
            )
            for row in (await self._db.execute(query)).all():
                found[row.dossier_id].add(row.action_id)
        return {dossier_id: frozenset(actions) for dossier_id, actions in found.items()}

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

    async def claim_mails(
        self, action_ids: Sequence[str], token: str, lease_until: dt.datetime
    ) -> None:
        """Mark locked queued mails ``sending`` under one claim token and lease, one statement:
        attempts + 1, and ``uncertain`` + 1 for a row that was already ``sending`` (its earlier
        send's outcome is unknown)."""
        if not action_ids:
            return
        columns = sla_actions.c
        await self._db.execute(
            sla_actions.update()
            .where(columns.action_id.in_(action_ids))
            .values(
                status="sending",
                claim_token=token,
                attempts=columns.attempts + 1,
                uncertain=columns.uncertain + sa.case((columns.status == "sending", 1), else_=0),
                available_at=lease_until,
            )
        )

    async def finish_mails(
        self, action_ids: Sequence[str], token: str, values: Mapping[str, Any]
    ) -> set[str]:
        """Set ``values`` on the claimed mails this token still holds; return their ids (the
        others were reclaimed after their lease lapsed and are not this claim's to record)."""
        if not action_ids:
            return set()
        columns = sla_actions.c
        query = (
            sla_actions.update()
            .where(
                columns.action_id.in_(action_ids),
                columns.claim_token == token,
                columns.status == "sending",
            )
            .values(**values)
            .returning(columns.action_id)
        )
        return set((await self._db.execute(query)).scalars().all())

    async def release_mails(
        self, token: str, rows: Sequence[Mapping[str, Any]], *, with_error: bool
    ) -> None:
        """Put claimed mails back in the queue (``action_id``, ``available_at`` and, when
        ``with_error``, ``last_error`` per row) while this token still holds them."""
        if not rows:
            return
        columns = sla_actions.c
        values: dict[str, Any] = {
            "status": "pending",
            "claim_token": None,
            "available_at": sa.bindparam("b_available_at"),
        }
        if with_error:
            values["last_error"] = sa.bindparam("b_last_error")
        statement = (
            sla_actions.update()
            .where(
                columns.action_id == sa.bindparam("b_action_id"),
                columns.claim_token == token,
                columns.status == "sending",
            )
            .values(values)
        )
        parameters = [
            {
                "b_action_id": row["action_id"],
                "b_available_at": row["available_at"],
                **({"b_last_error": row["last_error"]} if with_error else {}),
            }
            for row in rows
        ]
        await self._db.execute(statement, parameters)

    async def delete_action(self, action_id: str) -> None:
        """Forget a queued mail that is no longer wanted (a later deadline may queue it again)."""
        await self._db.execute(sla_actions.delete().where(sla_actions.c.action_id == action_id))

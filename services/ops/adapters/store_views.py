"""Read-only views of the store for the status view and the lag exporter.

Each view answers None when its table does not exist (yet): the ops tools run
against a store that other services migrate, possibly later than they start.
The deadline table belongs to sla_watch (``sla_dossiers``: one row per
dossier with the fold's ``status``, ``due_at`` and ``holding_mail_at``, the
latter cleared once the holding mail went out); its columns are found by name,
and a table without ``due_at`` gives no counts rather than wrong ones.

The outbox (``services.common.outbox``) holds only what is still to publish:
the relay deletes a row once Kafka has it. A row left with neither
``parked_at`` nor the legacy ``published_at`` is pending; a parked one was
refused by the broker for its size and waits for ``aiguillage outbox release``.
Rows piling up there mean committed events are not reaching Kafka, which the
consumer lag cannot show (nothing reached the topics to lag behind).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from services.common.store.engine import Store
from services.common.store.tables import dossiers, outbox
from services.ops.adapters.tables import dlq_replays

__all__ = ["DeadlineCounts", "OutboxCounts", "StoreViews"]

_HOLDING_DUE = ("holding_mail_at", "holding_due_at", "holding_mail_due_at")
_HOLDING_SENT = ("holding_mail_sent_at", "holding_sent_at")
_OPEN = ("running", "paused")


@dataclass(frozen=True, slots=True)
class DeadlineCounts:
    """Open deadlines, those at risk (holding mail due within the window) and breached."""

    open: int
    at_risk: int
    breached: int


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    """Outbox rows still to publish, rows parked, and how long the oldest pending one waits."""

    pending: int
    parked: int
    oldest_pending_age: dt.timedelta | None  # None when nothing is pending


def _first(table: sa.Table, names: tuple[str, ...]) -> sa.Column[object] | None:
    return next((table.c[name] for name in names if name in table.c), None)


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    """Rows matching ``condition``, as one aggregate of a single-pass query."""
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


class StoreViews:
    """Counts the status view shows: open dossiers, deadlines, replayed dead letters, outbox."""

    def __init__(self, store: Store, *, deadlines_table: str = "sla_dossiers") -> None:
        self._store = store
        self._deadlines_table = deadlines_table

    async def _reflect(self, name: str) -> sa.Table | None:
        def load(connection: sa.Connection) -> sa.Table | None:
            if not sa.inspect(connection).has_table(name):
                return None
            return sa.Table(name, sa.MetaData(), autoload_with=connection)

        async with self._store.engine.connect() as connection:
            return await connection.run_sync(load)

    async def open_dossiers(self) -> dict[str, int] | None:
        """Open dossiers per owning service queue; None when the table is missing."""
        if await self._reflect(dossiers.name) is None:
            return None
        query = (
            sa.select(dossiers.c.service, sa.func.count())
            .where(dossiers.c.status == "open")
            .group_by(dossiers.c.service)
        )
        async with self._store.engine.connect() as connection:
            return {str(service): int(count) for service, count in await connection.execute(query)}

    async def deadlines(self, now: dt.datetime, window: dt.timedelta) -> DeadlineCounts | None:
        """Deadline counts from sla_watch's table; None when it (or ``due_at``) is missing."""
        table = await self._reflect(self._deadlines_table)
        if table is None or "due_at" not in table.c:
            return None
        due = table.c.due_at
        status = table.c.get("status")
        holding_due = _first(table, _HOLDING_DUE)
        holding_sent = _first(table, _HOLDING_SENT)
        is_open = status.in_(_OPEN) if status is not None else sa.true()
        running = sa.and_(
            due.is_not(None), status == "running" if status is not None else sa.true()
        )
        risky = holding_due if holding_due is not None else due
        not_sent = holding_sent.is_(None) if holding_sent is not None else sa.true()
        at_risk = sa.and_(running, due > now, risky <= now + window, not_sent)
        breached = sa.and_(running, due <= now)

        query = sa.select(_count(is_open), _count(at_risk), _count(breached)).select_from(table)
        async with self._store.engine.connect() as connection:
            row = (await connection.execute(query)).one()
        return DeadlineCounts(open=int(row[0]), at_risk=int(row[1]), breached=int(row[2]))

    async def replayed(self) -> dict[str, int] | None:
        """Replay count per replayed dead letter id; None before the ops migration."""
        if await self._reflect(dlq_replays.name) is None:
            return None
        query = sa.select(dlq_replays.c.dead_letter_id, dlq_replays.c.replay_count)
        async with self._store.engine.connect() as connection:
            return {str(key): int(count) for key, count in await connection.execute(query)}

    async def outbox(self, now: dt.datetime) -> OutboxCounts | None:
        """Pending and parked outbox rows; None before the table (or ``parked_at``) exists.

        Before migration 0003 there is no ``parked_at``: a relay of that age
        cannot park, and counting its rows here could not tell parked from
        pending, so no counts rather than wrong ones.
        """
        table = await self._reflect(outbox.name)
        if table is None or "parked_at" not in table.c:
            return None
        published = table.c.get("published_at")  # legacy: a later migration may drop it
        pending = sa.and_(
            table.c.parked_at.is_(None),
            published.is_(None) if published is not None else sa.true(),
        )
        parked = table.c.parked_at.is_not(None)

        # Only aggregates: no payload (it may hold personal data) ever leaves the store.
        oldest = sa.func.min(sa.case((pending, table.c.created_at), else_=None))
        query = sa.select(_count(pending), _count(parked), oldest).select_from(table)
        async with self._store.engine.connect() as connection:
            row = (await connection.execute(query)).one()
        return OutboxCounts(
            pending=int(row[0]), parked=int(row[1]), oldest_pending_age=_age(row[2], now)
        )


def _age(created_at: dt.datetime | None, now: dt.datetime) -> dt.timedelta | None:
    """``now`` minus an outbox row's ``created_at``, never negative.

    SQLite hands timestamps back naive (the UTC wall time the services wrote);
    PostgreSQL aware. A service's clock slightly ahead of this one's gives 0,
    not a negative age.
    """
    if created_at is None:
        return None
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=dt.UTC)
    return max(now - created_at, dt.timedelta(0))

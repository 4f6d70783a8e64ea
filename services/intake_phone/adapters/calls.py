"""The open and emitted calls in the store (SQLAlchemy Core, SQLite or PostgreSQL).

Every method runs inside a transaction the caller owns. Whoever changes a
call first takes :meth:`CallRepository.lock_call`: on PostgreSQL a
transaction-scoped advisory lock on the call (request handlers wait for it,
in call-key order; the sweeper only tries it and skips a busy call, so no
lock cycle can form), on SQLite nothing more than ``BEGIN IMMEDIATE``, which
already serialises writers. Reads made after the lock see the previous
holder's commit, so a call emitted (open row deleted, emitted row inserted)
by one instance is seen as emitted by the next, never reopened. Times go in
and come out as aware UTC datetimes (SQLite stores them naive).
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.store.tables import processed_messages
from services.intake_phone.adapters.tables import phone_emitted_calls, phone_open_calls
from services.intake_phone.domain import CallState, OpenCall

__all__ = ["CallRepository", "Emitted", "StoredCall"]


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


@dataclass(frozen=True, slots=True)
class StoredCall:
    """An open-call row as stored; ``state`` is read by :meth:`open_call` (it may be corrupt)."""

    platform: str
    call_id: str
    state_json: str
    first_seen_at: dt.datetime
    ended_seen_at: dt.datetime | None
    changed_at: dt.datetime

    def open_call(self) -> OpenCall:
        """The domain value; raises ``CallStateCorrupted`` when the JSON cannot be read."""
        return OpenCall(
            state=CallState.from_json(self.state_json),
            first_seen_at=self.first_seen_at,
            ended_seen_at=self.ended_seen_at,
            changed_at=self.changed_at,
        )


@dataclass(frozen=True, slots=True)
class Emitted:
    """What is remembered of an emitted call."""

    item_id: str
    routed: bool
    perimeter_reason: str
    completion: str
    emitted_at: dt.datetime


def _stored(row: sa.Row[tuple[object, ...]]) -> StoredCall:
    ended = row.ended_seen_at
    return StoredCall(
        platform=row.platform,
        call_id=row.call_id,
        state_json=row.state,
        first_seen_at=_utc(row.first_seen_at),
        ended_seen_at=None if ended is None else _utc(ended),
        changed_at=_utc(row.changed_at),
    )


class CallRepository:
    """Reads and writes open and emitted calls inside one transaction."""

    def __init__(self, connection: AsyncConnection, *, postgres: bool) -> None:
        self._db = connection
        self._postgres = postgres

    def _key(self, table: sa.Table, platform: str, call_id: str) -> sa.ColumnElement[bool]:
        return sa.and_(table.c.platform == platform, table.c.call_id == call_id)

    async def lock_call(self, platform: str, call_id: str, *, wait: bool = True) -> bool:
        """Hold the call for this transaction; ``False`` when busy and ``wait`` is false."""
        if not self._postgres:
            return True
        key = zlib.crc32(f"phone:{platform}:{call_id}".encode()) - 2**31
        function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
        result = await self._db.scalar(sa.text(f"SELECT {function}(1370, :k)"), {"k": key})
        return wait or bool(result)

    async def open_call(self, platform: str, call_id: str) -> StoredCall | None:
        """The open call (take :meth:`lock_call` first); ``None`` if not open."""
        query = sa.select(phone_open_calls).where(self._key(phone_open_calls, platform, call_id))
        row = (await self._db.execute(query)).first()
        return None if row is None else _stored(row)

    async def emitted(self, platform: str, call_id: str) -> Emitted | None:
        """The emission record of a call, if it was emitted."""
        query = sa.select(phone_emitted_calls).where(
            self._key(phone_emitted_calls, platform, call_id)
        )
        row = (await self._db.execute(query)).first()
        if row is None:
            return None
        return Emitted(
            row.item_id, row.routed, row.perimeter_reason, row.completion, _utc(row.emitted_at)
        )

    async def save_open(self, call: OpenCall, *, due_at: dt.datetime, new: bool) -> None:
        """Insert (``new``) or update an open call with its state and due time."""
        state = call.state
        values = {
            "state": state.to_json(),
            "event_count": len(state.events),
            "first_seen_at": _utc(call.first_seen_at),
            "ended_seen_at": None if call.ended_seen_at is None else _utc(call.ended_seen_at),
            "due_at": _utc(due_at),
            "changed_at": _utc(call.changed_at or call.first_seen_at),
        }
        if new:
            statement: sa.Executable = phone_open_calls.insert().values(
                platform=state.platform, call_id=state.call_id, **values
            )
        else:
            statement = (
                phone_open_calls.update()
                .where(self._key(phone_open_calls, state.platform, state.call_id))
                .values(**values)
            )
        await self._db.execute(statement)

    async def delete_open(self, platform: str, call_id: str) -> None:
        """Remove an open call (emitted, or its corrupt row set aside)."""
        await self._db.execute(
            phone_open_calls.delete().where(self._key(phone_open_calls, platform, call_id))
        )

    async def due(self, now: dt.datetime, limit: int) -> list[tuple[str, str]]:
        """Keys of open calls whose due time has passed, oldest first (not locked)."""
        query = (
            sa.select(phone_open_calls.c.platform, phone_open_calls.c.call_id)
            .where(phone_open_calls.c.due_at <= _utc(now))
            .order_by(phone_open_calls.c.due_at)
            .limit(limit)
        )
        return [(row.platform, row.call_id) for row in (await self._db.execute(query)).all()]

    async def record_emitted(self, platform: str, call_id: str, emitted: Emitted) -> None:
        """Remember an emitted call; a second emission fails on the primary key."""
        await self._db.execute(
            phone_emitted_calls.insert().values(
                platform=platform,
                call_id=call_id,
                item_id=emitted.item_id,
                routed=emitted.routed,
                perimeter_reason=emitted.perimeter_reason,
                completion=emitted.completion,
                emitted_at=_utc(emitted.emitted_at),
            )
        )

    async def purge_emitted(self, before: dt.datetime) -> int:
        """Forget calls emitted before ``before`` (retention of the late-event guard)."""
        result = await self._db.execute(
            phone_emitted_calls.delete().where(phone_emitted_calls.c.emitted_at < _utc(before))
        )
        return int(result.rowcount or 0)

    async def remember_once(
        self, consumer: str, message_id: str, outcome: str, now: dt.datetime
    ) -> bool:
        """Record ``message_id`` for ``consumer``; ``False`` when it was already recorded."""
        query = sa.select(sa.literal(1)).where(
            processed_messages.c.consumer == consumer,
            processed_messages.c.message_id == message_id,
        )
        if (await self._db.execute(query)).first() is not None:
            return False
        await self._db.execute(
            processed_messages.insert().values(
                consumer=consumer, message_id=message_id, outcome=outcome, processed_at=_utc(now)
            )
        )
        return True

    async def counts(self) -> dict[str, int]:
        """Open calls, and emitted calls by perimeter reason (``aiguillage phone stats``)."""
        open_count = await self._db.scalar(sa.select(sa.func.count()).select_from(phone_open_calls))
        rows = (
            await self._db.execute(
                sa.select(phone_emitted_calls.c.perimeter_reason, sa.func.count()).group_by(
                    phone_emitted_calls.c.perimeter_reason
                )
            )
        ).all()
        return {"open": int(open_count or 0), **{str(r[0]): int(r[1]) for r in rows}}

"""The open and emitted calls in the store (SQLAlchemy Core, SQLite or PostgreSQL).

Every method runs inside a transaction the caller owns. Whoever changes a
call first holds it (:meth:`CallRepository.lock_calls`, or
:meth:`CallRepository.try_lock_calls` for the sweeper, one statement for a
whole batch of calls): on PostgreSQL a
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.store.tables import processed_messages
from services.intake_phone.adapters.tables import phone_emitted_calls, phone_open_calls
from services.intake_phone.domain import CallState, OpenCall

__all__ = ["CallKey", "CallRepository", "Emitted", "OpenRow", "StoredCall"]

CallKey = tuple[str, str]
"""``(platform, call_id)``."""
_SAVED_COLUMNS = (
    "state",
    "event_count",
    "first_seen_at",
    "ended_seen_at",
    "due_at",
    "changed_at",
)
# Transaction-scoped advisory locks in key space 1370, for a batch of lock keys.
_LOCK_ALL = sa.text(
    "SELECT pg_advisory_xact_lock(1370, k) FROM unnest(CAST(:keys AS integer[])) AS t(k)"
)
_TRY_LOCK_ALL = sa.text(
    "SELECT k FROM unnest(CAST(:keys AS integer[])) AS t(k) "
    "WHERE pg_try_advisory_xact_lock(1370, k)"
)
_IN_CHUNK = 500  # keys per VALUES list on SQLite (its bound-parameter limit)


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


@dataclass(frozen=True, slots=True)
class OpenRow:
    """An open call to write, with its due time."""

    call: OpenCall
    due_at: dt.datetime

    def values(self) -> dict[str, object]:
        """The row's column values."""
        call, state = self.call, self.call.state
        return {
            "platform": state.platform,
            "call_id": state.call_id,
            "state": state.to_json(),
            "event_count": len(state.events),
            "first_seen_at": _utc(call.first_seen_at),
            "ended_seen_at": None if call.ended_seen_at is None else _utc(call.ended_seen_at),
            "due_at": _utc(self.due_at),
            "changed_at": _utc(call.changed_at or call.first_seen_at),
        }


def _lock_key(platform: str, call_id: str) -> int:
    return zlib.crc32(f"phone:{platform}:{call_id}".encode()) - 2**31


def _stored(row: Any) -> StoredCall:
    ended = row.ended_seen_at
    return StoredCall(
        platform=row.platform,
        call_id=row.call_id,
        state_json=row.state,
        first_seen_at=_utc(row.first_seen_at),
        ended_seen_at=None if ended is None else _utc(ended),
        changed_at=_utc(row.changed_at),
    )


def _read_calls(k: sa.FromClause) -> sa.Executable:
    o, e = phone_open_calls, phone_emitted_calls
    return sa.select(
        k.c.platform,
        k.c.call_id,
        o.c.state,
        o.c.first_seen_at,
        o.c.ended_seen_at,
        o.c.changed_at,
        e.c.item_id,
    ).select_from(
        k.outerjoin(o, sa.and_(o.c.platform == k.c.platform, o.c.call_id == k.c.call_id)).outerjoin(
            e, sa.and_(e.c.platform == k.c.platform, e.c.call_id == k.c.call_id)
        )
    )


def _delete_open(k: sa.FromClause) -> sa.Executable:
    columns = sa.tuple_(phone_open_calls.c.platform, phone_open_calls.c.call_id)
    return phone_open_calls.delete().where(columns.in_(sa.select(k.c.platform, k.c.call_id)))


def _upsert(insert: postgresql.Insert | sqlite.Insert) -> sa.Executable:
    table = phone_open_calls
    return insert.on_conflict_do_update(
        index_elements=[table.c.platform, table.c.call_id],
        set_={name: insert.excluded[name] for name in _SAVED_COLUMNS},
    )


_TEXT_ARRAY = postgresql.ARRAY(sa.String)
_PG_KEYS = (
    sa.func.unnest(
        sa.bindparam("k_platforms", type_=_TEXT_ARRAY),
        sa.bindparam("k_call_ids", type_=_TEXT_ARRAY),
    )
    .table_valued("platform", "call_id")
    .render_derived(name="k")
)
_PG_READ_CALLS = _read_calls(_PG_KEYS)
_PG_DELETE_OPEN = _delete_open(_PG_KEYS)
_UPSERT_PG = _upsert(postgresql.insert(phone_open_calls))
_UPSERT_SQLITE = _upsert(sqlite.insert(phone_open_calls))


class CallRepository:
    """Reads and writes open and emitted calls inside one transaction."""

    def __init__(self, connection: AsyncConnection, *, postgres: bool) -> None:
        self._db = connection
        self._postgres = postgres

    async def lock_calls(self, keys: list[CallKey]) -> None:
        """Hold every call of a batch for this transaction (waits), in lock-key order.

        One statement whatever the batch size; the order is the same in every
        instance, so two batches never wait on each other in a cycle (and a
        deadlock PostgreSQL would still report is retried as transient).
        """
        if not self._postgres or not keys:
            return
        locks = sorted({_lock_key(*key) for key in keys})
        await self._db.execute(_LOCK_ALL, {"keys": locks})

    async def try_lock_calls(self, keys: list[CallKey]) -> list[CallKey]:
        """The calls of ``keys`` this transaction could hold without waiting (sweeper)."""
        if not self._postgres or not keys:
            return keys
        by_lock: dict[int, list[CallKey]] = {}
        for key in keys:
            by_lock.setdefault(_lock_key(*key), []).append(key)
        rows = await self._db.execute(_TRY_LOCK_ALL, {"keys": sorted(by_lock)})
        held = {int(row[0]) for row in rows}
        return [key for key in keys if _lock_key(*key) in held]

    async def read_calls(
        self, keys: list[CallKey]
    ) -> tuple[dict[CallKey, StoredCall], set[CallKey]]:
        """The open calls among ``keys`` (lock them first), and the already emitted ones.

        One statement per batch (per chunk on SQLite).
        """
        stored: dict[CallKey, StoredCall] = {}
        emitted: set[CallKey] = set()
        for statement, params in self._with_keys(_PG_READ_CALLS, _read_calls, keys):
            for row in (await self._db.execute(statement, params)).all():
                key = (row.platform, row.call_id)
                if row.state is not None:
                    stored[key] = _stored(row)
                elif row.item_id is not None:
                    emitted.add(key)
        return stored, emitted

    async def delete_open_many(self, keys: list[CallKey]) -> None:
        """Remove these open calls (emitted, or their unreadable row set aside)."""
        for statement, params in self._with_keys(_PG_DELETE_OPEN, _delete_open, keys):
            await self._db.execute(statement, params)

    def _with_keys(
        self,
        postgres: sa.Executable,
        build: Callable[[sa.FromClause], sa.Executable],
        keys: list[CallKey],
    ) -> list[tuple[sa.Executable, dict[str, object]]]:
        """The statement(s) and parameters that run a statement over the relation ``keys``.

        PostgreSQL: ``postgres`` (built once), the keys as two array
        parameters (same text for any batch size: one prepared statement);
        SQLite (no round trips to save): ``build`` over a ``VALUES`` list per chunk.
        """
        if not keys:
            return []
        if self._postgres:
            params: dict[str, object] = {
                "k_platforms": [k[0] for k in keys],
                "k_call_ids": [k[1] for k in keys],
            }
            return [(postgres, params)]
        columns = (sa.column("platform", sa.String), sa.column("call_id", sa.String))
        return [
            (build(sa.values(*columns, name="k").data(keys[i : i + _IN_CHUNK]).cte("k")), {})
            for i in range(0, len(keys), _IN_CHUNK)
        ]

    async def save_open_many(self, rows: list[OpenRow]) -> None:
        """Insert or overwrite open calls (one statement; the caller holds the calls)."""
        if rows:
            statement = _UPSERT_PG if self._postgres else _UPSERT_SQLITE
            await self._db.execute(statement, [row.values() for row in rows])

    async def record_emitted_many(self, emitted: list[tuple[CallKey, Emitted]]) -> None:
        """Remember emitted calls; a second emission of one fails on the primary key."""
        if emitted:
            await self._db.execute(
                phone_emitted_calls.insert(),
                [
                    {
                        "platform": platform,
                        "call_id": call_id,
                        "item_id": e.item_id,
                        "routed": e.routed,
                        "perimeter_reason": e.perimeter_reason,
                        "completion": e.completion,
                        "emitted_at": _utc(e.emitted_at),
                    }
                    for (platform, call_id), e in emitted
                ],
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

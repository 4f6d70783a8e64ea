"""Outbox rows parked for their size (``services.common.outbox``): list them, requeue them.

What ``aiguillage outbox parked|release`` reads and changes; never the payload
(it may hold personal data).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection

import sqlalchemy as sa

from services.common.store.engine import Store
from services.common.store.tables import outbox

__all__ = ["ParkedRow", "parked_rows", "release_parked"]


@dataclasses.dataclass(frozen=True, slots=True)
class ParkedRow:
    """An outbox row the broker refused for its size (no payload: it may hold personal data)."""

    id: int
    topic: str
    key: str | None
    characters: int  # of the payload
    created_at: dt.datetime
    parked_at: dt.datetime
    reason: str


async def parked_rows(store: Store) -> list[ParkedRow]:
    """The parked rows, oldest first."""
    query = (
        sa.select(
            outbox.c.id,
            outbox.c.topic,
            outbox.c.key,
            sa.func.length(outbox.c.payload),
            outbox.c.created_at,
            outbox.c.parked_at,
            outbox.c.parked_reason,
        )
        .where(outbox.c.parked_at.is_not(None))
        .order_by(outbox.c.id)
    )
    async with store.engine.connect() as connection:
        return [ParkedRow(*row) for row in (await connection.execute(query)).all()]


async def release_parked(store: Store, ids: Collection[int] | None = None) -> int:
    """Put parked rows (these, or all) back in the queue; return how many.

    Once the broker takes larger messages (its ``message.max.bytes`` and the
    services' ``KAFKA_MAX_REQUEST_SIZE`` raised), the next sweep publishes
    them; a row still too large is parked again.
    """
    statement = (
        outbox.update()
        .where(outbox.c.parked_at.is_not(None))
        .values(parked_at=None, parked_reason=None)
    )
    if ids is not None:
        statement = statement.where(outbox.c.id.in_(list(ids)))
    async with store.transaction() as connection:
        return (await connection.execute(statement)).rowcount

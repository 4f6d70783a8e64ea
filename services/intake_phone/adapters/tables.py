"""intake_phone tables on the shared store metadata (migration ``phone_0001``).

``phone_open_calls`` holds every call not yet emitted: its folded events
(``CallState`` JSON) and when the service first saw it and its end, so open
calls survive a restart. ``phone_emitted_calls`` remembers each call emitted
(routed or counted out of the perimeter) so that a late or replayed event
never opens it again: its primary key is what makes emission happen once.
"""

from __future__ import annotations

import sqlalchemy as sa

from services.common.store.tables import UtcTimestamp, metadata

__all__ = ["phone_emitted_calls", "phone_open_calls"]

phone_open_calls = sa.Table(
    "phone_open_calls",
    metadata,
    sa.Column("platform", sa.String(16), primary_key=True),
    sa.Column("call_id", sa.String(128), primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("event_count", sa.Integer, nullable=False),
    sa.Column("first_seen_at", UtcTimestamp, nullable=False),
    sa.Column("ended_seen_at", UtcTimestamp, nullable=True),
    sa.Column("due_at", UtcTimestamp, nullable=False),
    sa.Column("changed_at", UtcTimestamp, nullable=False),
    sa.Index("ix_phone_open_calls_due_at", "due_at"),
)

phone_emitted_calls = sa.Table(
    "phone_emitted_calls",
    metadata,
    sa.Column("platform", sa.String(16), primary_key=True),
    sa.Column("call_id", sa.String(128), primary_key=True),
    sa.Column("item_id", sa.String(256), nullable=False),
    sa.Column("routed", sa.Boolean, nullable=False),
    sa.Column("perimeter_reason", sa.String(40), nullable=False),
    sa.Column("completion", sa.String(40), nullable=False),
    sa.Column("emitted_at", UtcTimestamp, nullable=False),
    sa.Index("ix_phone_emitted_calls_emitted_at", "emitted_at"),
)

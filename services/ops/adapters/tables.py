"""The ops table: which dead letters were replayed (the replay marker)."""

from __future__ import annotations

import sqlalchemy as sa

from services.common.store.tables import UtcTimestamp, metadata

__all__ = ["dlq_replays"]

# One row per replayed dead letter: a second replay of the same letter is
# refused unless forced (consumers are idempotent by item id anyway).
dlq_replays = sa.Table(
    "ops_dlq_replays",
    metadata,
    sa.Column("dead_letter_id", sa.String(300), primary_key=True),
    sa.Column("original_topic", sa.String(200), nullable=False),
    sa.Column("original_key", sa.String(300), nullable=True),
    sa.Column("reason_code", sa.String(100), nullable=False),
    sa.Column("payload_sha256", sa.String(64), nullable=False),
    sa.Column("corrected", sa.Boolean, nullable=False),
    sa.Column("replay_count", sa.Integer, nullable=False),
    sa.Column("first_replayed_at", UtcTimestamp, nullable=False),
    sa.Column("replayed_at", UtcTimestamp, nullable=False),
    sa.Index("ix_ops_dlq_replays_replayed_at", "replayed_at"),
)

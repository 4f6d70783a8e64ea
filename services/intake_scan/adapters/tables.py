"""intake_scan's tables in the shared store: content-hash dedupe and batch progress.

``scan_letters`` holds one row per letter content ever published (by SHA-256):
re-dropping a file, in the same batch or another, never yields a second item.
``scan_batches`` and ``scan_batch_entries`` record each batch run (a batch id
and the hash of its index) and the outcome of each of its files and rows, so
that a resumed batch finishes what a crash left and rejects nothing twice.
"""

from __future__ import annotations

import sqlalchemy as sa

from services.common.store.tables import UtcTimestamp, metadata

__all__ = ["scan_batch_entries", "scan_batches", "scan_letters"]

scan_letters = sa.Table(
    "scan_letters",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("item_id", sa.String(256), nullable=False),
    sa.Column("batch_id", sa.String(100), nullable=False),
    # reserved: the item is being published; published: Kafka acknowledged it.
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reserved_at", UtcTimestamp, nullable=False),
    sa.Column("published_at", UtcTimestamp, nullable=True),
)

scan_batches = sa.Table(
    "scan_batches",
    metadata,
    sa.Column("batch_id", sa.String(100), primary_key=True),
    sa.Column("index_sha256", sa.String(64), primary_key=True),
    sa.Column("instance", sa.String(200), nullable=False),
    # in_progress | done | quarantined
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("letters", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rejections", sa.Integer, nullable=False, server_default="0"),
    sa.Column("started_at", UtcTimestamp, nullable=False),
    sa.Column("finished_at", UtcTimestamp, nullable=True),
)

scan_batch_entries = sa.Table(
    "scan_batch_entries",
    metadata,
    sa.Column("batch_id", sa.String(100), primary_key=True),
    sa.Column("index_sha256", sa.String(64), primary_key=True),
    sa.Column("entry_key", sa.String(300), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=True),
    # published | duplicate | quarantined | dead_lettered
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("reason_code", sa.String(40), nullable=True),
    sa.Column("item_id", sa.String(256), nullable=True),
    sa.Column("recorded_at", UtcTimestamp, nullable=False),
)

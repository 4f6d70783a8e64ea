"""intake_mail tables on the shared store metadata (migration ``mail_0001``).

``mail_uids`` remembers, per account + folder + UIDVALIDITY + UID (the
paperless-ngx lesson), what was decided for each mail and where it must go,
so that a mail left in the mailbox by a crash is only moved on the next pass.
``mail_items`` is the dedupe by item id (Message-ID + content hash): a mail
read again under another UID (UIDVALIDITY change, a copy) is never published
twice. ``mail_acknowledgements`` holds one row per acknowledged item: its
primary key makes the acknowledgement happen at most once, its status is the
claim committed before sending.
"""

from __future__ import annotations

import sqlalchemy as sa

from services.common.store.tables import UtcTimestamp, metadata

__all__ = ["mail_acknowledgements", "mail_items", "mail_uids"]

mail_uids = sa.Table(
    "mail_uids",
    metadata,
    sa.Column("account", sa.String(200), primary_key=True),
    sa.Column("folder", sa.String(200), primary_key=True),
    sa.Column("uidvalidity", sa.BigInteger, primary_key=True),
    sa.Column("uid", sa.String(128), primary_key=True),
    sa.Column("item_id", sa.String(64), nullable=True),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("destination", sa.String(200), nullable=False),
    sa.Column("reason_code", sa.String(64), nullable=True),
    sa.Column("recorded_at", UtcTimestamp, nullable=False),
    sa.Column("moved_at", UtcTimestamp, nullable=True),
    sa.Index("ix_mail_uids_item_id", "item_id"),
)

mail_items = sa.Table(
    "mail_items",
    metadata,
    sa.Column("item_id", sa.String(64), primary_key=True),
    sa.Column("content_sha256", sa.String(64), nullable=False),
    sa.Column("source_ref", sa.String(1024), nullable=False),
    sa.Column("published_at", UtcTimestamp, nullable=False),
)

mail_acknowledgements = sa.Table(
    "mail_acknowledgements",
    metadata,
    sa.Column("item_id", sa.String(64), primary_key=True),
    sa.Column("message_id", sa.String(300), nullable=False),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("in_reply_to", sa.String(1000), nullable=True),
    sa.Column("contact_date", UtcTimestamp, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UtcTimestamp, nullable=False),
    sa.Column("claimed_at", UtcTimestamp, nullable=True),
    sa.Column("sent_at", UtcTimestamp, nullable=True),
    sa.Column("last_error", sa.String(200), nullable=True),
    sa.Column("created_at", UtcTimestamp, nullable=False),
    sa.Index("ix_mail_acknowledgements_status_next_attempt_at", "status", "next_attempt_at"),
)

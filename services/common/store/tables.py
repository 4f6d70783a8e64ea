"""Tables of the dossier store (SQLAlchemy Core); Alembic migrations create them."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "dossier_contacts",
    "dossiers",
    "metadata",
    "outbox",
    "processed_messages",
]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    }
)

UtcTimestamp = sa.DateTime(timezone=True)

# Every consumer records what it consumed in the same transaction as its
# effects (eventsourcing's lesson): redelivery after a crash changes nothing.
processed_messages = sa.Table(
    "processed_messages",
    metadata,
    sa.Column("consumer", sa.String(64), primary_key=True),
    sa.Column("message_id", sa.String(300), primary_key=True),
    sa.Column("outcome", sa.String(40), nullable=False),
    sa.Column("dossier_id", sa.String(64), nullable=True),
    sa.Column("processed_at", UtcTimestamp, nullable=False),
)

# Transactional outbox: produced events are written with the effects and
# published after the commit, so a crash between the two loses nothing. A row
# is deleted once published (migration 0002); ``published_at`` is what older
# relays set instead, and is skipped by the claim. A row the broker refuses for
# its size is parked (``parked_at``, ``parked_reason``; migration 0003): kept,
# skipped by the claims, until ``aiguillage outbox release``.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("topic", sa.String(200), nullable=False),
    sa.Column("key", sa.String(300), nullable=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", UtcTimestamp, nullable=False),
    sa.Column("published_at", UtcTimestamp, nullable=True),
    sa.Column("parked_at", UtcTimestamp, nullable=True),
    sa.Column("parked_reason", sa.String(1000), nullable=True),
    # ids are never reused on SQLite either (migration 0004): a relay deletes by id
    sqlite_autoincrement=True,
)

dossiers = sa.Table(
    "dossiers",
    metadata,
    sa.Column("dossier_id", sa.String(64), primary_key=True),
    sa.Column("customer_key", sa.String(200), nullable=True),
    sa.Column("customer_ref", sa.String(9), nullable=True),
    sa.Column("dossier_type", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("urgency", sa.String(20), nullable=False),
    sa.Column("service", sa.String(60), nullable=False),
    sa.Column("channel", sa.String(10), nullable=False),
    sa.Column("sensitive", sa.String(300), nullable=False, server_default=""),
    sa.Column("needs_field_work", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("identified", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("item_id", sa.String(256), nullable=False),
    sa.Column("contact_date", UtcTimestamp, nullable=False),
    sa.Column("opened_at", UtcTimestamp, nullable=False),
    sa.Column("closed_at", UtcTimestamp, nullable=True),
    sa.Column("linked_dossier_id", sa.String(64), nullable=True),
    sa.Column("identification", sa.String(30), nullable=False, server_default="none"),
    sa.Index("ix_dossiers_customer_key_status", "customer_key", "status"),
    # Two router instances never open two dossiers for one request: at most one
    # open dossier per customer and dossier type, enforced by the database.
    sa.Index(
        "uq_dossiers_open_request",
        "customer_key",
        "dossier_type",
        unique=True,
        sqlite_where=sa.text("status = 'open' AND customer_key IS NOT NULL"),
        postgresql_where=sa.text("status = 'open' AND customer_key IS NOT NULL"),
    ),
)

dossier_contacts = sa.Table(
    "dossier_contacts",
    metadata,
    sa.Column("item_id", sa.String(256), primary_key=True),
    sa.Column("dossier_id", sa.String(64), sa.ForeignKey("dossiers.dossier_id"), nullable=False),
    sa.Column("channel", sa.String(10), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("contact_date", UtcTimestamp, nullable=False),
    sa.Column("attached_at", UtcTimestamp, nullable=False),
    sa.Column("sender_is_holder", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Index("ix_dossier_contacts_dossier_id", "dossier_id"),
)

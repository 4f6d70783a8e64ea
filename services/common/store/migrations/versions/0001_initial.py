"""Initial store: processed messages, outbox, dossiers and their contacts.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
OPEN_REQUEST = "status = 'open' AND customer_key IS NOT NULL"


def upgrade() -> None:
    op.create_table(
        "processed_messages",
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(300), nullable=False),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("dossier_id", sa.String(64), nullable=True),
        sa.Column("processed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("consumer", "message_id", name="pk_processed_messages"),
    )
    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("key", sa.String(300), nullable=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("published_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index("ix_outbox_unpublished", "outbox", ["published_at", "id"])
    op.create_table(
        "dossiers",
        sa.Column("dossier_id", sa.String(64), nullable=False),
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
        sa.Column("contact_date", TS, nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("linked_dossier_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("dossier_id", name="pk_dossiers"),
    )
    op.create_index("ix_dossiers_customer_key_status", "dossiers", ["customer_key", "status"])
    op.create_index(
        "uq_dossiers_open_request",
        "dossiers",
        ["customer_key", "dossier_type"],
        unique=True,
        sqlite_where=sa.text(OPEN_REQUEST),
        postgresql_where=sa.text(OPEN_REQUEST),
    )
    op.create_table(
        "dossier_contacts",
        sa.Column("item_id", sa.String(256), nullable=False),
        sa.Column("dossier_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("contact_date", TS, nullable=False),
        sa.Column("attached_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("item_id", name="pk_dossier_contacts"),
        sa.ForeignKeyConstraint(
            ["dossier_id"],
            ["dossiers.dossier_id"],
            name="fk_dossier_contacts_dossier_id_dossiers",
        ),
    )
    op.create_index("ix_dossier_contacts_dossier_id", "dossier_contacts", ["dossier_id"])


def downgrade() -> None:
    op.drop_table("dossier_contacts")
    op.drop_table("dossiers")
    op.drop_table("outbox")
    op.drop_table("processed_messages")

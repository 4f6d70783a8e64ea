"""intake_mail: processed mail by UID, published items, acknowledgement claims.

Revision ID: mail_0001
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "mail_0001"
down_revision = "0001"
branch_labels = ("intake_mail",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "mail_uids",
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("folder", sa.String(200), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger, nullable=False),
        sa.Column("uid", sa.String(128), nullable=False),
        sa.Column("item_id", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("destination", sa.String(200), nullable=False),
        sa.Column("reason_code", sa.String(64), nullable=True),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("moved_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("account", "folder", "uidvalidity", "uid", name="pk_mail_uids"),
    )
    op.create_index("ix_mail_uids_item_id", "mail_uids", ["item_id"])
    op.create_table(
        "mail_items",
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("source_ref", sa.String(1024), nullable=False),
        sa.Column("published_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("item_id", name="pk_mail_items"),
    )
    op.create_table(
        "mail_acknowledgements",
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(300), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("in_reply_to", sa.String(1000), nullable=True),
        sa.Column("contact_date", TS, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("claimed_at", TS, nullable=True),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("item_id", name="pk_mail_acknowledgements"),
    )
    op.create_index(
        "ix_mail_acknowledgements_status_next_attempt_at",
        "mail_acknowledgements",
        ["status", "next_attempt_at"],
    )


def downgrade() -> None:
    op.drop_table("mail_acknowledgements")
    op.drop_table("mail_items")
    op.drop_table("mail_uids")

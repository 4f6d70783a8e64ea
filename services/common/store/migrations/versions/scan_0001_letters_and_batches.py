"""intake_scan: content-hash dedupe of letters, batch runs and their entries.

Revision ID: scan_0001
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "scan_0001"
down_revision = "0001"
branch_labels = ("intake_scan",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "scan_letters",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("item_id", sa.String(256), nullable=False),
        sa.Column("batch_id", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reserved_at", TS, nullable=False),
        sa.Column("published_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("sha256", name="pk_scan_letters"),
    )
    op.create_table(
        "scan_batches",
        sa.Column("batch_id", sa.String(100), nullable=False),
        sa.Column("index_sha256", sa.String(64), nullable=False),
        sa.Column("instance", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("letters", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rejections", sa.Integer, nullable=False, server_default="0"),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("batch_id", "index_sha256", name="pk_scan_batches"),
    )
    op.create_table(
        "scan_batch_entries",
        sa.Column("batch_id", sa.String(100), nullable=False),
        sa.Column("index_sha256", sa.String(64), nullable=False),
        sa.Column("entry_key", sa.String(300), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("reason_code", sa.String(40), nullable=True),
        sa.Column("item_id", sa.String(256), nullable=True),
        sa.Column("recorded_at", TS, nullable=False),
        sa.PrimaryKeyConstraint(
            "batch_id", "index_sha256", "entry_key", name="pk_scan_batch_entries"
        ),
    )


def downgrade() -> None:
    op.drop_table("scan_batch_entries")
    op.drop_table("scan_batches")
    op.drop_table("scan_letters")

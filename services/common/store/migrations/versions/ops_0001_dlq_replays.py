"""ops: the dead-letter replay marker.

Revision ID: ops_0001
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "ops_0001"
down_revision = "0001"
branch_labels = ("ops",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ops_dlq_replays",
        sa.Column("dead_letter_id", sa.String(300), nullable=False),
        sa.Column("original_topic", sa.String(200), nullable=False),
        sa.Column("original_key", sa.String(300), nullable=True),
        sa.Column("reason_code", sa.String(100), nullable=False),
        sa.Column("payload_sha256", sa.String(64), nullable=False),
        sa.Column("corrected", sa.Boolean, nullable=False),
        sa.Column("replay_count", sa.Integer, nullable=False),
        sa.Column("first_replayed_at", TS, nullable=False),
        sa.Column("replayed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("dead_letter_id", name="pk_ops_dlq_replays"),
    )
    op.create_index("ix_ops_dlq_replays_replayed_at", "ops_dlq_replays", ["replayed_at"])


def downgrade() -> None:
    op.drop_table("ops_dlq_replays")

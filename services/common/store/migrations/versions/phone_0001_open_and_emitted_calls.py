"""intake_phone: open calls (folded events, deadlines) and emitted calls.

Revision ID: phone_0001
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "phone_0001"
down_revision = "0001"
branch_labels = ("intake_phone",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "phone_open_calls",
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("call_id", sa.String(128), nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("event_count", sa.Integer, nullable=False),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("ended_seen_at", TS, nullable=True),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("changed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("platform", "call_id", name="pk_phone_open_calls"),
    )
    op.create_index("ix_phone_open_calls_due_at", "phone_open_calls", ["due_at"])
    op.create_table(
        "phone_emitted_calls",
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("call_id", sa.String(128), nullable=False),
        sa.Column("item_id", sa.String(256), nullable=False),
        sa.Column("routed", sa.Boolean, nullable=False),
        sa.Column("perimeter_reason", sa.String(40), nullable=False),
        sa.Column("completion", sa.String(40), nullable=False),
        sa.Column("emitted_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("platform", "call_id", name="pk_phone_emitted_calls"),
    )
    op.create_index("ix_phone_emitted_calls_emitted_at", "phone_emitted_calls", ["emitted_at"])


def downgrade() -> None:
    op.drop_table("phone_emitted_calls")
    op.drop_table("phone_open_calls")

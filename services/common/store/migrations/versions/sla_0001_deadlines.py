"""sla_watch: per-dossier deadline state with its due-time index, and the action ledger.

Revision ID: sla_0001
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "sla_0001"
down_revision = "0001"
branch_labels = ("sla_watch",)
depends_on = None

TS = sa.DateTime(timezone=True)
HAS_CHECK = "next_check_at IS NOT NULL"
QUEUED = "status IN ('pending', 'sending')"


def upgrade() -> None:
    op.create_table(
        "sla_dossiers",
        sa.Column("dossier_id", sa.String(64), nullable=False),
        sa.Column("events", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("deadline_id", sa.String(100), nullable=True),
        sa.Column("due_at", TS, nullable=True),
        sa.Column("holding_mail_at", TS, nullable=True),
        sa.Column("next_check_at", TS, nullable=True),
        sa.Column("parked_reason", sa.String(200), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("dossier_id", name="pk_sla_dossiers"),
    )
    op.create_index(
        "ix_sla_dossiers_next_check_at",
        "sla_dossiers",
        ["next_check_at"],
        sqlite_where=sa.text(HAS_CHECK),
        postgresql_where=sa.text(HAS_CHECK),
    )
    op.create_table(
        "sla_actions",
        sa.Column("action_id", sa.String(300), nullable=False),
        sa.Column("dossier_id", sa.String(64), nullable=False),
        sa.Column("deadline_id", sa.String(100), nullable=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("medium", sa.String(20), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("message_id", sa.String(200), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("uncertain", sa.Integer, nullable=False, server_default="0"),
        sa.Column("claim_token", sa.String(64), nullable=True),
        sa.Column("available_at", TS, nullable=True),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("done_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("action_id", name="pk_sla_actions"),
    )
    op.create_index("ix_sla_actions_dossier_id", "sla_actions", ["dossier_id"])
    op.create_index(
        "ix_sla_actions_queue",
        "sla_actions",
        ["available_at"],
        sqlite_where=sa.text(QUEUED),
        postgresql_where=sa.text(QUEUED),
    )


def downgrade() -> None:
    op.drop_table("sla_actions")
    op.drop_table("sla_dossiers")

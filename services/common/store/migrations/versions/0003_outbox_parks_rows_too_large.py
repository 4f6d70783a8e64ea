"""Outbox: a row the broker refuses for its size is parked, not retried for ever.

Before, such a row failed every publication, and every row after it waited
behind it. ``parked_at`` and ``parked_reason`` keep it, out of the claims,
until an operator releases it (``aiguillage outbox release``).

On PostgreSQL the queue table also gets its own autovacuum thresholds: rows
are inserted and deleted all day, and with the default scale factor (20 % of
the table) the dead rows of a busy minute pile up between two vacuums; the
periodic sweep reads them all (``ORDER BY id``).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("outbox", sa.Column("parked_reason", sa.String(1000), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, "
            "autovacuum_vacuum_threshold = 10000, autovacuum_vacuum_cost_delay = 0)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE outbox RESET (autovacuum_vacuum_scale_factor, "
            "autovacuum_vacuum_threshold, autovacuum_vacuum_cost_delay)"
        )
    op.drop_column("outbox", "parked_reason")
    op.drop_column("outbox", "parked_at")

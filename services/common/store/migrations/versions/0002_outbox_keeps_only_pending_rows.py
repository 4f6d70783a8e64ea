"""Outbox: published rows are deleted, not marked; their index goes.

The relay now deletes a row once Kafka acknowledged it, so the table holds
only what is still to publish and the claim (``ORDER BY id``, the primary key)
stays short. Rows marked published by the old relay are deleted here. The
``published_at`` column stays, so that a relay of the previous version still
running during a rolling upgrade keeps working.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = ("outbox_pending_only",)
depends_on = None


def upgrade() -> None:
    op.execute(sa.text("DELETE FROM outbox WHERE published_at IS NOT NULL"))
    op.drop_index("ix_outbox_unpublished", table_name="outbox")


def downgrade() -> None:
    op.create_index("ix_outbox_unpublished", "outbox", ["published_at", "id"])

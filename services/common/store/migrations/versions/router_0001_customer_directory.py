"""Router: the customer directory; how each dossier's customer was identified.

Revision ID: router_0001
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "router_0001"
down_revision = "0001"
branch_labels = ("router",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("customer_ref", sa.String(9), nullable=False),
        sa.Column("first_name", sa.String(200), nullable=True),
        sa.Column("last_name", sa.String(200), nullable=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("mobile", sa.String(16), nullable=True),
        sa.Column("phone", sa.String(16), nullable=True),
        sa.Column("address_line", sa.String(500), nullable=True),
        sa.Column("postcode", sa.String(5), nullable=True),
        sa.Column("city", sa.String(200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_ref", name="pk_customers"),
    )
    op.create_index("ix_customers_email", "customers", ["email"])
    op.create_index("ix_customers_mobile", "customers", ["mobile"])
    op.create_index("ix_customers_postcode", "customers", ["postcode"])
    with op.batch_alter_table("dossiers") as batch:
        batch.add_column(
            sa.Column("identification", sa.String(30), nullable=False, server_default="none")
        )
    with op.batch_alter_table("dossier_contacts") as batch:
        batch.add_column(
            sa.Column("sender_is_holder", sa.Boolean, nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table("dossier_contacts") as batch:
        batch.drop_column("sender_is_holder")
    with op.batch_alter_table("dossiers") as batch:
        batch.drop_column("identification")
    op.drop_table("customers")

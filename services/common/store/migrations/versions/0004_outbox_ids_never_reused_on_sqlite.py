"""Outbox on SQLite: ids are never reused (AUTOINCREMENT).

SQLite gives a plain ``INTEGER PRIMARY KEY`` row ``max(id) + 1``, so 1 again
once the table is empty, and the outbox is empty most of the time. With several
processes on one file (``aiguillage up``), a relay still waiting for its acks
deleted, by id, rows written after another relay had published and deleted the
ones it held: committed rows gone, never published. PostgreSQL ids come from a
sequence and were never reused; nothing changes there.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "outbox", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "outbox", recreate="always", table_kwargs={"sqlite_autoincrement": False}
    ):
        pass

"""Alembic environment: always runs on the connection handed over by ``migrate``."""

from alembic import context

from services.common.store.registry import all_tables

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through services.common.store.migrate")
context.configure(
    connection=connection,
    target_metadata=all_tables(),
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()

"""The dossier store: SQLAlchemy 2 async engine, tables and Alembic migrations."""

from services.common.store.engine import Store, create_store
from services.common.store.migrate import migrate

__all__ = ["Store", "create_store", "migrate"]

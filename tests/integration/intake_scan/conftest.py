"""intake_scan as its own OS process on tansu, PostgreSQL and real tesseract: folders and env."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.common.store import Store, create_store, migrate
from services.intake_scan.harness import ScanFolders


@pytest.fixture
def folders(tmp_path: Path) -> ScanFolders:
    found = ScanFolders(tmp_path / "scans")
    found.staging.mkdir(parents=True)
    return found


@pytest.fixture
def scan_env(kafka_env: dict[str, str], pg_url: str, folders: ScanFolders) -> dict[str, str]:
    return {**kafka_env, **folders.env(), "DATABASE_URL": pg_url}


@pytest.fixture
async def pg_store(pg_url: str) -> AsyncIterator[Store]:
    store = create_store(pg_url)
    await migrate(store)
    yield store
    await store.dispose()

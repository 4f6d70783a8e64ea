"""intake_mail's application layer on FastStream's in-memory broker, SQLite and a Maildir."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.common.store import Store, create_store, migrate
from services.intake_mail.harness import Harness, intake_harness


@pytest.fixture
async def mail_store(tmp_path: Path) -> AsyncIterator[Store]:
    """A migrated SQLite store."""
    store = create_store(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    await migrate(store)
    yield store
    await store.dispose()


@pytest.fixture
async def harness(mail_store: Store, tmp_path: Path) -> AsyncIterator[Harness]:
    """``MailIntake`` + ``Acknowledger`` + loop over a Maildir (see ``services.intake_mail.harness``)."""
    async with intake_harness(mail_store, tmp_path) as wired:
        yield wired

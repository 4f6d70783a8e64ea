"""The customer directory: a CSV import feeds customers.directory.v1, the router identifies by it."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from schemas import IntakeItem, SenderHints
from schemas.topics import INTAKE_ITEMS
from services.common.settings import ServiceSettings
from services.common.store import create_store, migrate
from services.common.store.tables import dossier_contacts, dossiers
from services.common.testing import ServiceProcess, eventually, produce
from services.router.adapters.tables import customers

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

CSV = """customer_ref;first_name;last_name;email;mobile;phone;address;postcode;city
400000001;Agathe;Roussel;Agathe.Roussel@Example.test;+33612345671;;4 rue Pasteur;35000;Rennes
400000002;Bruno;Carpentier;;+33612345672;;18 avenue Foch;67000;Strasbourg
40000000X;Bad;Row;;;;;;
"""


async def test_imported_customers_identify_later_contacts(
    topics: ServiceSettings, kafka_env: dict[str, str], pg_url: str, tmp_path: Path
) -> None:
    store = create_store(pg_url)
    await migrate(store)
    env = {**kafka_env, "DATABASE_URL": pg_url}
    export = tmp_path / "export.csv"
    export.write_text(CSV, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "customers", "import", str(export)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr  # one rejected row makes the import fail loudly
    assert "2 customers published, 1 rows rejected" in result.stdout
    assert "line 4: invalid customer_ref" in result.stderr

    router = ServiceProcess("router", env, tmp_path).start()
    try:

        async def directory_loaded() -> bool:
            async with store.engine.connect() as connection:
                count = await connection.scalar(sa.select(sa.func.count()).select_from(customers))
            return count == 2

        await eventually(directory_loaded, timeout=60)
        now = dt.datetime(2026, 10, 5, 9, tzinfo=dt.UTC)
        by_email = IntakeItem(
            item_id="email:dir-1", channel="email", received_at=now, source_ref="INBOX/1",
            sender=SenderHints(email="agathe.roussel@example.test"),
            text="Je souhaite passer à la mensualisation.",
        )  # fmt: skip
        by_mobile = IntakeItem(
            item_id="phone:dir-2", channel="phone", received_at=now, source_ref="call/2",
            sender=SenderHints(mobile="+33612345672"), text="Demande de duplicata de facture.",
        )  # fmt: skip
        await produce(
            topics.kafka_bootstrap_servers,
            INTAKE_ITEMS,
            [
                (i.partition_key().encode(), i.model_dump_json().encode())
                for i in (by_email, by_mobile)
            ],
        )

        async def routed() -> bool:
            async with store.engine.connect() as connection:
                count = await connection.scalar(
                    sa.select(sa.func.count()).select_from(dossier_contacts)
                )
            return count == 2

        await eventually(routed, timeout=60)
    finally:
        assert router.stop() == 0, router.output()
    async with store.engine.connect() as connection:
        rows = (
            await connection.execute(sa.select(dossiers.c.customer_ref, dossiers.c.identification))
        ).all()
    await store.dispose()
    assert sorted(tuple(r) for r in rows) == [("400000001", "email"), ("400000002", "mobile")]

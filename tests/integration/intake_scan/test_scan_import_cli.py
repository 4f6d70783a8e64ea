"""``aiguillage scan import DIR`` by hand on a backlog: a progress bar, then a summary table."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys

import pytest

from schemas import IntakeItem
from schemas.topics import INTAKE_ITEMS
from services.common.settings import ServiceSettings
from services.common.testing import read_topic
from services.intake_scan.harness import ScanFolders
from services.intake_scan.testing import text_pdf_batch

pytestmark = [pytest.mark.kafka]


async def test_scan_import_cli_runs_a_backlog_of_folders_and_zips(
    topics: ServiceSettings,
    kafka_env: dict[str, str],
    folders: ScanFolders,
    kafka: str,
    sqlite_url: str,
) -> None:
    backlog = folders.root / "backlog"
    text_pdf_batch(backlog / "B1", ["200000061", "200000062"])
    text_pdf_batch(folders.staging / "Z1", ["200000063"])
    shutil.make_archive(str(backlog / "Z1"), "zip", folders.staging, "Z1")
    env = {**os.environ, **kafka_env, **folders.env(), "DATABASE_URL": sqlite_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli.main", "scan", "import", str(backlog),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    text = output.decode()
    assert process.returncode == 0, text
    assert "letters published" in text
    assert "batches done" in text
    values = await read_topic(kafka, INTAKE_ITEMS, expect=3, max_s=20)
    refs = sorted(IntakeItem.model_validate_json(v).sender.customer_ref or "" for v in values)
    assert refs == ["200000061", "200000062", "200000063"]
    assert list(backlog.iterdir()) == []
    assert not (folders.work).exists() or list(folders.work.iterdir()) == []

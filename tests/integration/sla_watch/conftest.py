"""sla_watch as real OS processes on tansu, PostgreSQL and an aiosmtpd sink, on a movable clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.common.settings import ServiceSettings
from services.common.store import create_store, migrate
from services.sla_watch.domain import PARIS
from services.sla_watch.testing import ClockFile, SlaRig

MONDAY = dt.datetime(2026, 6, 8, 10, 0, tzinfo=PARIS)


@pytest.fixture
async def rig(
    topics: ServiceSettings, kafka_env: dict[str, str], pg_url: str, tmp_path: Path
) -> AsyncIterator[SlaRig]:
    store = create_store(pg_url)
    await migrate(store)
    clock = ClockFile(tmp_path / "clock", MONDAY)
    env = {
        **kafka_env,
        "DATABASE_URL": pg_url,
        "SLA_WATCH_CLOCK_FILE": str(clock.path),
        "SLA_WATCH_SCHEDULER_INTERVAL_S": "0.2",
        "SLA_WATCH_SMTP_TIMEOUT_S": "2",
        "SLA_WATCH_SEND_LEASE_S": "6",
        "SLA_WATCH_MAIL_FROM": "Service Client <service.client@eau.example>",
        "SLA_WATCH_OUTBOX_SWEEP_INTERVAL_S": "0.5",
    }
    rig = SlaRig(env, clock, store, tmp_path)
    try:
        yield rig
    finally:
        codes = {
            str(process.log_path): process.stop()
            for process in rig.processes
            if process.process is not None and process.process.poll() is None
        }
        await store.dispose()
    # A process still running at the end stops gracefully (SIGTERM, exit code 0).
    assert all(code == 0 for code in codes.values()), codes

"""intake_phone as its own OS process (``aiguillage run intake-phone``) on tansu.

``phone_env`` is the service's environment: the test broker, a free
loopback port, one credential per platform (HMAC, or a bearer token for
twilio: ``services.intake_phone.testing.SECRETS``) and short deadlines
(settle 0.5 s, grace 2 s) so calls complete within a test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.common.embedded import free_port
from services.common.settings import ServiceSettings
from services.intake_phone.testing import SECRETS, TWILIO_TOKEN, PhoneProcess


@pytest.fixture
def phone_env(topics: ServiceSettings, kafka_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Environment of the service under test (SQLite store in the test's directory)."""
    return {
        **kafka_env,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'store.db'}",
        "INTAKE_PHONE_LISTEN_PORT": str(free_port()),
        "INTAKE_PHONE_GENERIC_HMAC_SECRET": SECRETS["generic"],
        "INTAKE_PHONE_RINGOVER_HMAC_SECRET": SECRETS["ringover"],
        "INTAKE_PHONE_ASTERISK_HMAC_SECRET": SECRETS["asterisk"],
        "INTAKE_PHONE_TWILIO_BEARER_TOKEN": TWILIO_TOKEN,
        "INTAKE_PHONE_MAX_BODY_BYTES": "16384",
        "INTAKE_PHONE_SETTLE_S": "0.5",
        "INTAKE_PHONE_GRACE_S": "2",
        "INTAKE_PHONE_SWEEP_INTERVAL_S": "0.2",
        "INTAKE_PHONE_OUTBOX_INTERVAL_S": "0.5",
    }


@pytest.fixture
async def phone(phone_env: dict[str, str], tmp_path: Path) -> AsyncIterator[PhoneProcess]:
    """The service, started; stopped gracefully (exit code 0) after the test."""
    process = await PhoneProcess(phone_env, tmp_path).start()
    yield process
    assert await process.stop() == 0, process.process.output()

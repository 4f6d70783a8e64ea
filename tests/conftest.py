"""Fixtures on real parts: tansu broker, PostgreSQL, SQLite.

A missing component fails the run (never a silent skip): under CI=true and
everywhere else alike.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from services.common.embedded import EmbeddedBroker, free_port
from services.common.kafka import ensure_topics
from services.common.settings import ServiceSettings
from services.common.store import Store, create_store, migrate

PG_HOST = os.environ.get("TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("TEST_PG_USER", "postgres")


async def _pg_reachable(port: int) -> bool:
    try:
        connection = await asyncpg.connect(
            host=PG_HOST, port=port, user=PG_USER, database="postgres", timeout=3
        )
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await connection.close()
    return True


def _throwaway_cluster() -> tuple[int, Path]:
    """initdb + pg_ctl as the postgres user, on a free port (machines without a server)."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not binaries or shutil.which("runuser") is None:
        pytest.fail("PostgreSQL is neither running on 127.0.0.1:5432 nor installed (make deps)")
    bin_dir = Path(binaries[-1])
    data = Path(tempfile.mkdtemp(prefix="aiguillage-pg-"))
    shutil.chown(data, "postgres")
    port = free_port()
    as_pg = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_pg, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
    subprocess.run(
        [*as_pg, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "start"],
        check=True,
        capture_output=True,
    )
    return port, data


@pytest.fixture(scope="session")
async def pg_server() -> AsyncIterator[int]:
    """Port of a PostgreSQL server: the local one, else a throwaway cluster."""
    if await _pg_reachable(PG_PORT):
        yield PG_PORT
        return
    port, data = _throwaway_cluster()
    try:
        yield port
    finally:
        bin_dir = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
        subprocess.run(
            ["runuser", "-u", "postgres", "--", f"{bin_dir}/pg_ctl", "-D", str(data), "stop"],
            check=False,
            capture_output=True,
        )


@pytest.fixture
async def pg_url(pg_server: int) -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    name = f"aiguillage_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(host=PG_HOST, port=pg_server, user=PG_USER, database="postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{pg_server}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file in the test's temporary directory."""
    return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty store on each backend (the contract tests run on both)."""
    if request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
        url: str = request.getfixturevalue("pg_url")
        return url
    return str(request.getfixturevalue("sqlite_url"))


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """A migrated store on each backend."""
    instance = create_store(store_url)
    await migrate(instance)
    try:
        yield instance
    finally:
        await instance.dispose()


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[str]:
    """A fresh tansu broker (memory storage) for one test: ``host:port``."""
    with EmbeddedBroker(log_path=tmp_path / "tansu.log") as broker:
        yield broker.bootstrap_servers


@pytest.fixture
def kafka_env(kafka: str) -> dict[str, str]:
    """Environment for services talking to the test broker (short tansu join waits)."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "KAFKA_SESSION_TIMEOUT_MS": "2000",
        "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "KAFKA_DEFAULT_PARTITIONS": "3",
        "LOG_FORMAT": "json",
    }


@pytest.fixture
async def topics(kafka_env: dict[str, str]) -> ServiceSettings:
    """Settings for the test broker, with every topic created."""
    settings = ServiceSettings.model_validate(kafka_env)
    await ensure_topics(settings)
    return settings

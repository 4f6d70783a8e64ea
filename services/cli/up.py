"""``aiguillage up``: the embedded default on one machine.

Starts the tansu broker (memory storage: for one machine and demos, it keeps
nothing across its own restart) unless ``KAFKA_BOOTSTRAP_SERVERS`` is set,
uses a SQLite store under ``./var/`` unless ``DATABASE_URL`` is set, creates
the topics, applies the migrations, then runs every service as its own
process until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from services.cli.registry import SERVICES
from services.common.embedded import EmbeddedBroker
from services.common.lifecycle import prepare_infrastructure
from services.common.logging import configure_logging, get_logger
from services.common.settings import ServiceSettings
from services.common.store import create_store

__all__ = ["embedded_environment", "run_up", "start_services", "stop_processes"]

log = get_logger(__name__)


@contextlib.contextmanager
def embedded_environment(var: Path, *, fresh_db: str | None = None) -> Iterator[dict[str, str]]:
    """Environment of the embedded default; starts tansu when no cluster is configured.

    ``fresh_db`` names a SQLite file under ``var`` that is deleted first (the
    demo starts from nothing, like the memory-backed broker it runs on).
    """
    var.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    db_file = var / (fresh_db or "aiguillage.db")
    if fresh_db and "DATABASE_URL" not in env:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    env.setdefault("DATABASE_URL", f"sqlite+aiosqlite:///{db_file.resolve()}")
    # tansu makes each consumer join wait session_timeout / 2: keep it short locally.
    env.setdefault("KAFKA_SESSION_TIMEOUT_MS", "6000")
    env.setdefault("KAFKA_HEARTBEAT_INTERVAL_MS", "1000")
    env.setdefault("KAFKA_DEFAULT_PARTITIONS", "3")
    if fresh_db:  # the demo prints a table: keep the services' logs to warnings
        env.setdefault("LOG_LEVEL", "WARNING")
    if env.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield env
        return
    with EmbeddedBroker(log_path=var / "tansu.log") as broker:
        env["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
        log.info("embedded.broker_started", bootstrap_servers=broker.bootstrap_servers)
        yield env


async def _prepare(env: dict[str, str]) -> None:
    settings = ServiceSettings.model_validate(
        {key: value for key, value in env.items() if key.isupper()}
    )
    store = create_store(settings.resolved_database_url())
    try:
        await prepare_infrastructure(settings, store)
    finally:
        await store.dispose()


def start_services(
    env: dict[str, str], names: tuple[str, ...] | None = None
) -> list[subprocess.Popen[bytes]]:
    """Start each service as its own OS process (``aiguillage run NAME``)."""
    return [
        subprocess.Popen([sys.executable, "-m", "services.cli.main", "run", name], env=env)
        for name in (names or tuple(SERVICES))
    ]


def stop_processes(processes: list[subprocess.Popen[bytes]], timeout: float = 20.0) -> None:
    """SIGTERM every process (graceful shutdown), SIGKILL what is still alive after timeout."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_up(*, var: Path, demo: bool) -> int:
    """Run the pipeline; with ``demo``, feed sample contacts, print the outcome and exit."""
    configure_logging("INFO", "auto")
    with embedded_environment(var, fresh_db="demo.db" if demo else None) as env:
        asyncio.run(_prepare(env))
        processes = start_services(env)
        try:
            if demo:
                from services.cli.demo import run_demo

                return asyncio.run(run_demo(env))
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
            failed = [p.args for p in processes if p.returncode not in (None, 0)]
            log.error("up.service_exited", services=[str(a) for a in failed])
            return 1
        except KeyboardInterrupt:
            return 0
        finally:
            stop_processes(processes)

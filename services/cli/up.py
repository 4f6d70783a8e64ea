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
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from services.cli.demo_setup import demo_settings
from services.cli.registry import SERVICES
from services.common.embedded import EmbeddedBroker
from services.common.logging import configure_logging, get_logger

__all__ = ["embedded_environment", "run_up", "start_services", "stop_processes"]

log = get_logger(__name__)


@contextlib.contextmanager
def embedded_environment(var: Path, *, demo: bool = False) -> Iterator[dict[str, str]]:
    """Environment of the embedded default; starts tansu when no cluster is configured.

    Everything lives under ``var`` (the demo under ``var/demo``, emptied first:
    it starts from nothing, like the memory-backed broker it runs on). Values
    already in the environment win.
    """
    root = var / "demo" if demo else var
    if demo:
        shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    env = dict(os.environ)
    defaults = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{root / 'aiguillage.db'}",
        # tansu makes each consumer join wait session_timeout / 2: keep it short locally.
        "KAFKA_SESSION_TIMEOUT_MS": "6000",
        "KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
        "KAFKA_DEFAULT_PARTITIONS": "3",
        "INTAKE_SCAN_INBOX_DIR": str(root / "scans/inbox"),
        "INTAKE_SCAN_WORK_DIR": str(root / "scans/work"),
        "INTAKE_SCAN_ARCHIVE_DIR": str(root / "scans/archive"),
        "INTAKE_SCAN_QUARANTINE_DIR": str(root / "scans/quarantine"),
        "INTAKE_MAIL_ATTACHMENTS_DIR": str(root / "attachments"),
    }
    if demo:
        defaults |= demo_settings(root)
    for key, value in defaults.items():
        env.setdefault(key, value)
    if env.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield env
        return
    with EmbeddedBroker(log_path=root / "tansu.log") as broker:
        env["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
        log.info("embedded.broker_started", bootstrap_servers=broker.bootstrap_servers)
        yield env


def _prepare(env: dict[str, str]) -> None:
    # A child process reads the settings from its environment, exactly as the services do.
    subprocess.run([sys.executable, "-m", "services.cli.main", "prepare"], env=env, check=True)


def start_services(
    env: dict[str, str], names: tuple[str, ...] | None = None, metrics_base: int = 0
) -> list[subprocess.Popen[bytes]]:
    """Start each service as its own OS process (``aiguillage run NAME``).

    With ``metrics_base``, service number i serves /metrics on port base + i.
    """
    processes = []
    for index, name in enumerate(names or tuple(SERVICES)):
        own = dict(env)
        if metrics_base:
            own["METRICS_PORT"] = str(metrics_base + index)
            log.info("up.metrics", service=name, port=metrics_base + index)
        processes.append(
            subprocess.Popen([sys.executable, "-m", "services.cli.main", "run", name], env=own)
        )
    return processes


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


def run_up(*, var: Path, demo: bool, metrics_base: int = 0) -> int:
    """Run the pipeline; with ``demo``, feed sample contacts, print the outcome and exit."""
    configure_logging("INFO", "auto")
    with embedded_environment(var, demo=demo) as env:
        _prepare(env)
        processes = start_services(env, metrics_base=0 if demo else metrics_base)
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

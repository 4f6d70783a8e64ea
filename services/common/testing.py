"""Helpers for tests and benchmarks on real parts: read topics, run services as processes."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

__all__ = [
    "PostgresCluster",
    "ServiceProcess",
    "SmtpSink",
    "eventually",
    "produce",
    "read_topic",
]


async def produce(
    bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes]]
) -> int:
    """Publish (key, value) pairs and wait for every acknowledgement."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    count = 0
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value, key=key)
            count += 1
    finally:
        await producer.stop()
    return count


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    expect: int | None = None,
    quiet_s: float = 1.5,
    max_s: float = 30,
) -> list[bytes]:
    """Every value on a topic from the beginning, until ``expect`` or a quiet period."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=50,  # tansu holds a fetch for the whole wait, records or not
    )
    await consumer.start()
    values: list[bytes] = []
    deadline = time.monotonic() + max_s
    last_seen = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                values += [r.value for r in records]
                last_seen = time.monotonic()
            if expect is not None and len(values) >= expect:
                if time.monotonic() - last_seen > 0.3:
                    break
            elif expect is None and time.monotonic() - last_seen > quiet_s:
                break
    finally:
        await consumer.stop()
    return values


async def eventually(
    probe: Callable[[], Awaitable[bool]], *, timeout: float = 60.0, interval: float = 0.2
) -> None:
    """Wait until ``probe()`` is true; fail with AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


class ServiceProcess:
    """One ``aiguillage run NAME`` OS process, with its output captured to a file."""

    def __init__(
        self, name: str, env: dict[str, str], log_dir: Path, *, label: str | None = None
    ) -> None:
        self.name = name
        self.label = label or name
        self.env = {**os.environ, **env}
        self.log_path = log_dir / f"{self.label}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        """Launch the service."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "run", self.name],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, like a crash."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait for a graceful exit; SIGKILL after ``timeout``."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def output(self) -> str:
        """What the process printed so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")


class SmtpSink:
    """An aiosmtpd SMTP server on a free loopback port that keeps every message it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        from services.common.embedded import free_port

        self.messages: list[tuple[str, tuple[str, ...], bytes]] = []
        self.host = "127.0.0.1"
        self.port = free_port()
        sink = self

        class _Handler:
            async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
                content = envelope.original_content or envelope.content
                sink.messages.append((envelope.mail_from, tuple(envelope.rcpt_tos), content))
                return "250 Message accepted for delivery"

        self._controller = Controller(_Handler(), hostname=self.host, port=self.port)

    def start(self) -> SmtpSink:
        """Start serving (returns at once: aiosmtpd runs in its own thread)."""
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._controller.stop()

    def parsed(self) -> list[EmailMessage]:
        """The received messages, parsed."""
        parser = BytesParser(policy=policy.default)
        return [parser.parsebytes(content) for _, _, content in self.messages]


class PostgresCluster:
    """A throwaway PostgreSQL cluster (initdb + pg_ctl) on a free loopback port.

    For tests that stop the database under the services (the shared server on
    5432 must never be stopped). Runs as the ``postgres`` user when started by
    root, as PostgreSQL refuses to run as root.
    """

    def __init__(self, root: Path | None = None) -> None:
        from services.common.embedded import free_port

        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not binaries:
            raise RuntimeError("PostgreSQL server binaries are not installed (make system-deps)")
        self._bin = Path(binaries[-1])
        self.data = Path(tempfile.mkdtemp(prefix="aiguillage-pg-", dir=root))
        self.port = free_port()
        self._as_owner: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres")
            self._as_owner = ["runuser", "-u", "postgres", "--"]

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` on this cluster (asyncpg driver)."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self._as_owner, str(self._bin / "pg_ctl"), "-D", str(self.data), *args],
            check=True,
            capture_output=True,
        )

    def init(self) -> PostgresCluster:
        """Create the cluster (trust authentication, loopback only) and start it."""
        initdb = [str(self._bin / "initdb"), "-D", str(self.data), "-U", "postgres"]
        subprocess.run(
            [*self._as_owner, *initdb, "--auth=trust", "--no-sync"],
            check=True,
            capture_output=True,
        )
        return self.start()

    def start(self) -> PostgresCluster:
        """Start (again) on the same port and data directory; returns when it accepts."""
        options = (
            f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=200"
        )
        self._ctl("-o", options, "-l", str(self.data / "server.log"), "-w", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: connections are cut, as in an outage)."""
        self._ctl("-m", mode, "-w", "stop")

    def destroy(self) -> None:
        """Stop if running and delete the data directory."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.data, ignore_errors=True)

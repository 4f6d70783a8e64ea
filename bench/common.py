"""What every benchmark shares: figures, percentiles, peak RSS, the machine, scratch infra."""

from __future__ import annotations

import os
import platform
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

__all__ = [
    "CpuMeter",
    "Figure",
    "host_speed_s",
    "machine",
    "peak_rss_mb",
    "percentile",
    "scratch_postgres",
    "service_env",
]


def service_env(bootstrap: str, database_url: str, **extra: str) -> dict[str, str]:
    """Environment of a measured service: the bench's broker and store, short tansu joins,
    warnings only in the logs; ``extra`` adds or overrides variables."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DATABASE_URL": database_url,
        "KAFKA_SESSION_TIMEOUT_MS": "2000",
        "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
        **extra,
    }


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure with its target (``higher`` says which way is better)."""

    name: str
    measured: float
    unit: str
    target: float | None = None
    higher: bool = True

    @property
    def met(self) -> bool | None:
        """Whether the target is met (None without a target)."""
        if self.target is None:
            return None
        return self.measured >= self.target if self.higher else self.measured <= self.target


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0–100) of ``values``."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, int(q) - 1))]


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


_TICKS = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    """Direct children of a live process."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


def _named(name: str) -> list[int]:
    """Processes whose command name is ``name`` (PostgreSQL's backends, say)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().split(" (", 1)[1].startswith(f"{name})"):
                found.append(int(stat.parent.name))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return found


class CpuMeter:
    """CPU seconds spent, between :meth:`start` and :meth:`stop`, by groups of processes.

    A group is a pid (``pids``), the children of a pid (``children``: a service's
    worker pool) or a command name (``names``: ``"postgres"`` counts every backend).
    Where the cores went tells whether a figure is the measured service's limit or
    its neighbours'.
    """

    def __init__(
        self, *, pids: dict[str, int], children: dict[str, int], names: dict[str, str]
    ) -> None:
        self._pids, self._children, self._names = pids, children, names
        self._started: dict[str, dict[int, float]] = {}
        self._wall = 0.0

    def _read(self) -> dict[str, dict[int, float]]:
        groups = {group: [pid] for group, pid in self._pids.items()}
        groups |= {group: _children(pid) for group, pid in self._children.items()}
        groups |= {group: _named(name) for group, name in self._names.items()}
        return {group: {pid: _cpu_s(pid) for pid in pids} for group, pids in groups.items()}

    def start(self) -> None:
        """Take the first reading."""
        self._started, self._wall = self._read(), time.monotonic()

    def stop(self) -> tuple[dict[str, float], float]:
        """CPU seconds per group since :meth:`start` (a process that ended in between is
        not counted), and the wall-clock seconds."""
        now = self._read()
        spent = {}
        for group, pids in now.items():
            before = self._started.get(group, {})
            spent[group] = sum(cpu - before.get(pid, 0.0) for pid, cpu in pids.items())
        return spent, time.monotonic() - self._wall


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size of a live process (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def host_speed_s() -> float:
    """Seconds for 10 million Python additions, now: the host's speed at the time of a run.

    A shared VM's speed moves under its tenants' feet (this one's went from 0.77
    to 1.27 s within a minute, idle): the figure beside each bench says how
    fast the machine was when it ran (lower is faster).
    """
    started = time.perf_counter()
    total = 0
    for n in range(10_000_000):
        total += n
    return time.perf_counter() - started


def machine() -> str:
    """Cores and CPU model of this machine."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import os

    return f"{os.cpu_count()} cores, {model}, {platform.system()} {platform.release()}"


@asynccontextmanager
async def scratch_postgres(
    host: str = "127.0.0.1", port: int = 5432, user: str = "postgres"
) -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one benchmark run, dropped afterwards."""
    name = f"aiguillage_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(host=host, port=port, user=user, database="postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://{user}@{host}:{port}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

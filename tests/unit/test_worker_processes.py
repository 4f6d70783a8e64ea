"""The worker processes a service spawns leave with it, even when it is SIGKILLed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Each script builds a service's pool, makes it spawn its workers, prints their
# pids and kills its own process, as the OOM killer or a chaos test would.
_ROUTER_CLASSIFIER = """
import asyncio, multiprocessing, os, signal
from services.router.classifier import ProcessClassifier
from services.router.rules_loader import load_rules

async def main():
    classifier = ProcessClassifier(load_rules(), None, processes=2)
    await classifier.start()
    print("workers:", *(p.pid for p in multiprocessing.active_children()), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""

_SCAN_READER = """
import asyncio, multiprocessing, os, signal, sys
from pathlib import Path
from services.intake_scan.adapters.reader import PoolReader, ReadOptions

async def main():
    reader = PoolReader(ReadOptions(), workers=2)
    letter = Path(sys.argv[1])
    letter.write_bytes(b"not a letter")
    await asyncio.gather(reader.read(letter), reader.read(letter))
    print("workers:", *(p.pid for p in multiprocessing.active_children()), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.parametrize(
    "script", [_ROUTER_CLASSIFIER, _SCAN_READER], ids=["router-classifier", "scan-reader"]
)
def test_the_workers_of_a_killed_service_exit(script: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "letter.pdf")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the orphans would hold a pipe open: never wait on them
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL
    line = next(line for line in done.stdout.splitlines() if line.startswith("workers:"))
    pids = [int(pid) for pid in line.split()[1:]]
    assert len(pids) == 2

    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)

    assert not any(_alive(pid) for pid in pids)

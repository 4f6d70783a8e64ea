"""Worker processes that leave with their parent.

A service killed with SIGKILL (the OOM killer, an operator, a chaos test)
cannot stop its ``ProcessPoolExecutor``: its workers, blocked on the pool's
queue, would wait for work forever, each holding its memory. Every worker a
service spawns calls :func:`leave_with_parent` first: a daemon thread that ends
the worker within a second of its parent's death (the worker is re-parented,
so ``getppid()`` changes). Portable to every POSIX system, unlike
``PR_SET_PDEATHSIG``, and safe whichever thread of the parent spawned it.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["leave_with_parent"]


def _exit_when_orphaned(parent: int, interval_s: float) -> None:
    while os.getppid() == parent:
        time.sleep(interval_s)
    os._exit(0)


def leave_with_parent(parent: int, *, interval_s: float = 1.0) -> None:
    """In a worker process: exit once ``parent`` (the spawning process's pid) is gone."""
    watch = threading.Thread(
        target=_exit_when_orphaned, args=(parent, interval_s), name="leave-with-parent", daemon=True
    )
    watch.start()

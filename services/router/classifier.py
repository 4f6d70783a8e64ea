"""Where a batch is qualified: a worker thread, or worker processes beside the router.

Qualification (procedure 4.6, 4.7, 4.13, 5.1.2, 5.1.4) is a pure function of
an item's words and the rules, and the largest CPU cost of routing. In a
thread it shares the interpreter lock with the event loop that reads and
writes the store, so one router process uses about one core. With
``ROUTER_CLASSIFY_PROCESSES`` ≥ 1 it runs in that many worker processes
(spawned, each loading and validating the same rules once), and the router's
loop keeps its own core for the store, Kafka and the outbox.

Both give the same answers: the workers call the same :func:`classify` on the
same rule files. A worker that dies (killed, out of memory) breaks its pool:
the batch is then qualified in a thread, and a new pool is started for the
next one; nothing is lost or qualified twice in the store. A router that is
killed takes its workers with it (each exits within a second of being
orphaned).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Protocol

from schemas import IntakeItem
from services.common.logging import get_logger
from services.common.workers import leave_with_parent
from services.router.domain.classification import Classification, classify
from services.router.domain.rules import RuleSet
from services.router.rules_loader import load_rules

__all__ = ["Classifier", "ProcessClassifier", "ThreadClassifier", "classify_items"]

log = get_logger(__name__)

_Words = tuple[str, str | None, str, str, str | None]  # item id, subject, text, channel, TSA box
_MIN_CHUNK = 16  # smaller chunks cost more in pickling and wake-ups than they save


class Classifier(Protocol):
    """Qualifies a batch of items, by item id."""

    async def classify_all(self, items: Sequence[IntakeItem]) -> dict[str, Classification]:
        """Each item's classification, by item id."""
        ...

    def close(self) -> None:
        """Release the workers (no-op for a thread)."""
        ...


def _words(item: IntakeItem) -> _Words:
    return (item.item_id, item.subject, item.text, item.channel, item.tsa_box)


def _classify_words(rules: RuleSet, words: Sequence[_Words]) -> dict[str, Classification]:
    return {
        item_id: classify(subject=subject, text=text, channel=channel, tsa_box=tsa, rules=rules)
        for item_id, subject, text, channel, tsa in words
    }


def classify_items(rules: RuleSet, items: Sequence[IntakeItem]) -> dict[str, Classification]:
    """Qualify each item (4.6, 4.7, 4.13, 5.1.4), by item id: a pure function of its words."""
    return _classify_words(rules, [_words(item) for item in items])


class ThreadClassifier:
    """Qualifies in a worker thread of the router's process."""

    def __init__(self, rules: RuleSet) -> None:
        self._rules = rules

    async def classify_all(self, items: Sequence[IntakeItem]) -> dict[str, Classification]:
        """Each item's classification, computed in a thread (the loop stays free)."""
        return await asyncio.to_thread(classify_items, self._rules, items)

    def close(self) -> None:
        """Nothing to release."""


# In a worker process: the rules it loaded at start.
_worker_rules: RuleSet | None = None


def _start_worker(directory: Path | None, parent: int) -> None:
    global _worker_rules  # one per worker process, set once at its start
    leave_with_parent(parent)  # a SIGKILLed router cannot stop its pool
    _worker_rules = load_rules(directory)


def _classify_in_worker(words: Sequence[_Words]) -> dict[str, Classification]:
    assert _worker_rules is not None, "worker started without its rules"
    return _classify_words(_worker_rules, words)


def _ready() -> bool:
    return _worker_rules is not None


class ProcessClassifier:
    """Qualifies in ``processes`` worker processes; the batch is split between them."""

    def __init__(self, rules: RuleSet, rules_dir: Path | None, processes: int) -> None:
        if processes < 1:
            raise ValueError("a process classifier needs at least one process")
        self._rules = rules  # for a batch whose pool broke
        self._rules_dir = rules_dir
        self._processes = processes
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the router's process runs threads and an event loop.
        return ProcessPoolExecutor(
            self._processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(self._rules_dir, os.getpid()),
        )

    async def start(self) -> None:
        """Start every worker and load its rules now, not on the first batch."""
        loop = asyncio.get_running_loop()
        ready = [loop.run_in_executor(self._pool, _ready) for _ in range(self._processes)]
        if not all(await asyncio.gather(*ready)):
            raise RuntimeError("a classifier worker did not load its rules")
        log.info("router.classifier_started", processes=self._processes)

    async def classify_all(self, items: Sequence[IntakeItem]) -> dict[str, Classification]:
        """Each item's classification, computed by the workers (in a thread if they broke)."""
        words = [_words(item) for item in items]
        if not words:
            return {}
        parts = max(1, min(self._processes, len(words) // _MIN_CHUNK))
        size = -(-len(words) // parts)
        loop = asyncio.get_running_loop()
        try:
            chunks = await asyncio.gather(
                *(
                    loop.run_in_executor(self._pool, _classify_in_worker, words[n : n + size])
                    for n in range(0, len(words), size)
                )
            )
        except BrokenProcessPool:
            log.warning("router.classifier_broken", processes=self._processes)
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return await asyncio.to_thread(_classify_words, self._rules, words)
        return {item_id: c for chunk in chunks for item_id, c in chunk.items()}

    def close(self) -> None:
        """Stop the workers (pending work is cancelled: its batch is not committed)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

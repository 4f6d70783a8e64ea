"""Qualifying in worker processes gives the thread's answers, and survives a killed worker."""

from __future__ import annotations

import contextlib
import datetime as dt
import multiprocessing
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from schemas import IntakeItem, SenderHints
from services.router.classifier import ProcessClassifier, ThreadClassifier, classify_items
from services.router.domain.rules import RuleSet
from services.router.evaluation import load_examples
from services.router.rules_loader import load_rules

DATASET = Path(__file__).resolve().parents[2] / "data" / "contacts" / "labelled.jsonl"


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules()


@pytest.fixture(scope="module")
def items() -> list[IntakeItem]:
    now = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
    return [
        IntakeItem(
            item_id=f"item:{example.id}",
            channel=example.channel,
            received_at=now,
            source_ref=f"test/{example.id}",
            sender=SenderHints(customer_ref="100000001"),
            subject=example.subject,
            text=example.text,
            tsa_box=example.tsa_box,
        )
        for example in load_examples(DATASET)
    ]


@pytest.fixture
async def workers(rules: RuleSet) -> AsyncIterator[ProcessClassifier]:
    classifier = ProcessClassifier(rules, None, processes=2)
    await classifier.start()
    yield classifier
    classifier.close()


async def test_workers_qualify_every_item_as_the_thread_does(
    rules: RuleSet, items: list[IntakeItem], workers: ProcessClassifier
) -> None:
    expected = await ThreadClassifier(rules).classify_all(items)

    got = await workers.classify_all(items)

    assert got == expected
    assert len(got) == len(items) > 200
    assert got == classify_items(rules, items)


async def test_a_killed_worker_costs_no_item(rules: RuleSet, items: list[IntakeItem]) -> None:
    expected = classify_items(rules, items[:80])
    # Children of earlier tests may still be exiting: only this pool's count.
    before = {child.pid for child in multiprocessing.active_children()}
    workers = ProcessClassifier(rules, None, processes=2)
    await workers.start()
    try:
        children = [c for c in multiprocessing.active_children() if c.pid not in before]
        assert len(children) == 2
        for child in children:
            assert child.pid is not None
            # once the first is killed the pool may end the second itself: gone either way
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
            child.join(10)

        during = await workers.classify_all(items[:80])  # the broken pool: done in a thread
        after = await workers.classify_all(items[:80])  # a new pool
        killed = {child.pid for child in children}
        spawned = [c for c in multiprocessing.active_children() if c.pid not in before | killed]
        assert spawned, "the next batch went to a new pool"
    finally:
        workers.close()

    assert during == expected
    assert after == expected


async def test_an_empty_batch_needs_no_worker(workers: ProcessClassifier) -> None:
    assert await workers.classify_all([]) == {}


def test_a_pool_needs_a_process(rules: RuleSet) -> None:
    with pytest.raises(ValueError, match="at least one process"):
        ProcessClassifier(rules, None, processes=0)

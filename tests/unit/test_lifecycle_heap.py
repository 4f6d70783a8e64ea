"""Start-up objects are frozen out of the garbage collector's generations once a service runs."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from services.common.lifecycle import freeze_startup_heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test session collects as usual


def test_what_start_up_built_is_no_longer_walked_by_collections(unfrozen: None) -> None:
    built_at_start_up = [[f"rule {n}"] for n in range(1_000)]
    assert gc.is_tracked(built_at_start_up[0])
    assert any(built_at_start_up[0] is obj for obj in gc.get_objects())

    freeze_startup_heap()

    assert gc.get_freeze_count() >= len(built_at_start_up)
    assert not any(built_at_start_up[0] is obj for obj in gc.get_objects())

"""Lag arithmetic: positions, never-negative lag, oldest age, items/s between snapshots."""

from __future__ import annotations

import datetime as dt

import pytest

from services.common.lag import (
    LagSnapshot,
    PartitionLag,
    TopicHead,
    consumption_rates,
    production_rates,
)

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def lag(
    partition: int = 0,
    *,
    committed: int | None,
    hw: int,
    start: int = 0,
    oldest: dt.datetime | None = None,
    group: str = "router",
    topic: str = "intake.items.v1",
) -> PartitionLag:
    return PartitionLag(group, topic, partition, committed, start, hw, oldest)


@pytest.mark.parametrize(
    ("committed", "start", "hw", "expected"),
    [
        pytest.param(4, 0, 10, 6, id="halfway"),
        pytest.param(10, 0, 10, 0, id="caught-up"),
        pytest.param(None, 0, 10, 10, id="never-committed-counts-from-log-start"),
        pytest.param(None, 7, 10, 3, id="never-committed-after-retention"),
        pytest.param(2, 7, 10, 3, id="committed-before-what-retention-kept"),
        pytest.param(12, 0, 10, 0, id="committed-beyond-watermark-is-not-negative"),
        pytest.param(None, 0, 0, 0, id="empty-partition"),
    ],
)
def test_ops_lag_is_high_watermark_minus_position(
    committed: int | None, start: int, hw: int, expected: int
) -> None:
    assert lag(committed=committed, start=start, hw=hw).lag == expected


def test_ops_oldest_age_is_zero_when_caught_up_or_unknown() -> None:
    old = T0 - dt.timedelta(minutes=7)
    assert lag(committed=3, hw=5, oldest=old).age(T0) == dt.timedelta(minutes=7)
    assert lag(committed=5, hw=5, oldest=old).age(T0) == dt.timedelta(0)
    assert lag(committed=3, hw=5, oldest=None).age(T0) == dt.timedelta(0)
    future = T0 + dt.timedelta(seconds=3)  # producer clock ahead of ours
    assert lag(committed=3, hw=5, oldest=future).age(T0) == dt.timedelta(0)


def test_ops_snapshot_totals_and_oldest_age_per_group_and_topic() -> None:
    snapshot = LagSnapshot(
        T0,
        (
            lag(0, committed=3, hw=5, oldest=T0 - dt.timedelta(seconds=30)),
            lag(1, committed=1, hw=9, oldest=T0 - dt.timedelta(seconds=90)),
            lag(0, committed=2, hw=2, group="sla-watch", topic="dossier.events.v1"),
        ),
        (TopicHead("intake.dlq.v1", 0, 0, 4), TopicHead("intake.dlq.v1", 1, 2, 3)),
    )
    assert snapshot.group_lag("router") == 10
    assert snapshot.group_lag("sla-watch") == 0
    assert snapshot.oldest_age("router", "intake.items.v1") == dt.timedelta(seconds=90)
    assert snapshot.oldest_age("sla-watch", "dossier.events.v1") == dt.timedelta(0)
    assert snapshot.group_topics() == [
        ("router", "intake.items.v1"),
        ("sla-watch", "dossier.events.v1"),
    ]
    assert snapshot.topic_size("intake.dlq.v1") == 5


def test_ops_rates_between_two_snapshots() -> None:
    before = LagSnapshot(
        T0, (lag(0, committed=10, hw=20), lag(1, committed=None, hw=5)), (TopicHead("d", 0, 0, 1),)
    )
    after = LagSnapshot(
        T0 + dt.timedelta(seconds=2),
        (lag(0, committed=16, hw=24), lag(1, committed=4, hw=5)),
        (TopicHead("d", 0, 0, 3),),
    )
    assert consumption_rates(before, after) == {"router": 5.0}
    assert production_rates(before, after) == {"intake.items.v1": 2.0, "d": 1.0}
    assert consumption_rates(after, after) == {}
    assert production_rates(after, before) == {}

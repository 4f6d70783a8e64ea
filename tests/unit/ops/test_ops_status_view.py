"""The status view and the lag exporter's gauges, from synthetic snapshots."""

from __future__ import annotations

import datetime as dt

import pytest
from rich.console import Console
from typer.testing import CliRunner

from services.cli.registry import cli_groups
from services.common.lag import LagSnapshot, PartitionLag, TopicHead
from services.common.metrics import PipelineMetrics
from services.ops.adapters.store_views import DeadlineCounts, OutboxCounts
from services.ops.cli import dlq
from services.ops.exporter import export_snapshot
from services.ops.status import StatusReport, format_age, render_status

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
SNAPSHOT = LagSnapshot(
    T0,
    (
        PartitionLag("router", "intake.items.v1", 0, 3, 0, 8, T0 - dt.timedelta(minutes=12)),
        PartitionLag("router", "intake.items.v1", 1, 4, 0, 4, None),
        PartitionLag("sla-watch", "dossier.events.v1", 0, None, 0, 0, None),
    ),
    (TopicHead("intake.dlq.v1", 0, 0, 2),),
)


def text_of(report: StatusReport, *, all_partitions: bool = False) -> str:
    console = Console(record=True, width=160, color_system=None)
    console.print(render_status(report, all_partitions=all_partitions))
    return console.export_text()


def styled_line(report: StatusReport, label: str) -> str:
    """The rendered line holding ``label``, with its ANSI colour codes."""
    console = Console(record=True, width=160, color_system="standard", force_terminal=True)
    console.print(render_status(report))
    return next(line for line in console.export_text(styles=True).splitlines() if label in line)


RED = "\x1b[31m"


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        pytest.param(0, "0s", id="zero"),
        pytest.param(42, "42s", id="seconds"),
        pytest.param(192, "3m 12s", id="minutes"),
        pytest.param(7500, "2h 05m", id="hours"),
        pytest.param(3 * 86400 + 4 * 3600, "3d 04h", id="days"),
    ],
)
def test_ops_ages_read_at_a_glance(seconds: int, expected: str) -> None:
    assert format_age(dt.timedelta(seconds=seconds)) == expected


def test_ops_status_shows_lag_rates_dlq_dossiers_and_deadlines() -> None:
    report = StatusReport(
        SNAPSHOT,
        "intake.dlq.v1",
        consumed_per_s={"router": 12.5},
        produced_per_s={"intake.items.v1": 3.0},
        open_dossiers={"billing": 4, "customer_service": 3},
        deadlines=DeadlineCounts(open=9, at_risk=2, breached=1),
        replayed=1,
    )
    text = text_of(report)
    assert "router" in text
    assert "sla-watch" in text
    assert "12m 00s" in text  # oldest waiting item of the router
    assert "12.5" in text
    assert "3.0" in text
    assert "2 (1)" in text  # dead letters (replayed)
    assert "open dossiers" in text
    assert " 7 " in text
    assert "9 / 2 / 1" in text
    lagging = [line for line in text.splitlines() if "intake.items.v1" in line and " 8 " in line]
    assert lagging, "the lagging partition is listed with its high watermark"


def test_ops_status_tolerates_missing_tables_and_an_unreachable_store() -> None:
    missing = text_of(StatusReport(SNAPSHOT, "intake.dlq.v1", {}, {}))
    assert "deadlines open / at risk / breached" in missing
    assert "—" in missing
    outbox_line = next(line for line in missing.splitlines() if "outbox pending" in line)
    assert "—" in outbox_line
    down = text_of(StatusReport(SNAPSHOT, "intake.dlq.v1", {}, {}, store_error="OSError"))
    assert "unreachable (OSError)" in down


@pytest.mark.parametrize(
    ("counts", "shown", "red"),
    [
        pytest.param(OutboxCounts(12, 0, dt.timedelta(seconds=3)), "12 (3s) / 0", False, id="ok"),
        pytest.param(OutboxCounts(0, 0, None), "0 (0s) / 0", False, id="empty"),
        pytest.param(
            OutboxCounts(40, 0, dt.timedelta(seconds=125)), "40 (2m 05s) / 0", True, id="stuck"
        ),
        pytest.param(OutboxCounts(0, 2, None), "0 (0s) / 2", True, id="parked"),
    ],
)
def test_ops_status_shows_the_outbox_backlog(counts: OutboxCounts, shown: str, red: bool) -> None:
    report = StatusReport(SNAPSHOT, "intake.dlq.v1", {}, {}, outbox=counts)
    line = next(ln for ln in text_of(report).splitlines() if "outbox pending" in ln)
    assert "outbox pending (oldest) / parked" in line
    assert line.rstrip(" │").endswith(shown)
    assert (RED in styled_line(report, "outbox pending")) is red


def test_ops_status_lists_caught_up_partitions_only_on_request() -> None:
    caught_up = LagSnapshot(T0, (PartitionLag("router", "intake.items.v1", 0, 4, 0, 4),))
    report = StatusReport(caught_up, "intake.dlq.v1", {}, {})
    assert "Every partition is caught up." in text_of(report)
    assert "Every partition is caught up." not in text_of(report, all_partitions=True)


def test_ops_exporter_sets_the_lag_gauges() -> None:
    registry = PipelineMetrics()
    export_snapshot(registry, SNAPSHOT, "intake.dlq.v1")

    def value(name: str, **labels: str) -> float | None:
        return registry.registry.get_sample_value(name, labels)

    p0 = {"group": "router", "topic": "intake.items.v1", "partition": "0"}
    assert value("aiguillage_consumer_lag", **p0) == 5
    assert value("aiguillage_consumer_committed_offset", **p0) == 3
    assert value("aiguillage_topic_high_watermark", topic="intake.items.v1", partition="0") == 8
    assert value("aiguillage_topic_high_watermark", topic="intake.dlq.v1", partition="0") == 2
    age = value(
        "aiguillage_oldest_unprocessed_age_seconds", group="router", topic="intake.items.v1"
    )
    assert age == 720
    assert value("aiguillage_dlq_messages") == 2


def test_ops_dlq_commands_are_registered_and_refuse_an_empty_replay() -> None:
    assert cli_groups()["dlq"] is dlq
    result = CliRunner().invoke(dlq, ["replay"])
    assert result.exit_code == 2
    assert "select by id" in result.output

"""``aiguillage status``: what ops look at first, gathered and drawn as rich tables.

Lag per group (total, oldest waiting item, items/s consumed) and per lagging
partition; intake throughput; the DLQ's size and how much of it was replayed;
the outbox's backlog (events committed but not yet on Kafka, rows parked);
open dossiers; deadlines open, at risk and breached. Store-side counts show
"—" when their table does not exist yet or the store is unreachable: the view
never fails because one part of the pipeline is not deployed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from schemas.topics import INTAKE_ITEMS
from services.common.lag import LagReader, LagSnapshot, consumption_rates, production_rates
from services.common.retry import STORE_OUTAGE
from services.ops.adapters.store_views import DeadlineCounts, OutboxCounts, StoreViews
from services.ops.settings import OpsSettings

__all__ = ["StatusReport", "collect_status", "format_age", "render_status"]

_LATE = dt.timedelta(minutes=5)
# The relay publishes a row right after its commit; a minute means it cannot.
_OUTBOX_LATE = dt.timedelta(minutes=1)
_MISSING = "—"


@dataclass(frozen=True, slots=True)
class StatusReport:
    """One refresh of the status view."""

    snapshot: LagSnapshot
    dlq_topic: str
    consumed_per_s: dict[str, float]
    produced_per_s: dict[str, float]
    open_dossiers: dict[str, int] | None = None
    deadlines: DeadlineCounts | None = None
    replayed: int | None = None
    outbox: OutboxCounts | None = None
    store_error: str | None = None


async def collect_status(
    settings: OpsSettings,
    reader: LagReader,
    views: StoreViews | None,
    previous: LagSnapshot | None,
) -> StatusReport:
    """Measure lag now and read the store counts; rates are taken against ``previous``."""
    snapshot = await reader.snapshot(settings.groups, extra_topics=(settings.dlq_topic,))
    consumed = consumption_rates(previous, snapshot) if previous else {}
    produced = production_rates(previous, snapshot) if previous else {}
    report = StatusReport(snapshot, settings.dlq_topic, consumed, produced)
    if views is None:
        return report
    window = dt.timedelta(hours=settings.at_risk_window_h)
    try:
        dossiers = await views.open_dossiers()
        deadlines = await views.deadlines(snapshot.taken_at, window)
        replayed = await views.replayed()
        outbox = await views.outbox(snapshot.taken_at)
    except STORE_OUTAGE as error:
        return StatusReport(
            snapshot, settings.dlq_topic, consumed, produced, store_error=type(error).__name__
        )
    return StatusReport(
        snapshot,
        settings.dlq_topic,
        consumed,
        produced,
        open_dossiers=dossiers,
        deadlines=deadlines,
        replayed=None if replayed is None else len(replayed),
        outbox=outbox,
    )


def format_age(age: dt.timedelta) -> str:
    """A short human duration: ``0s``, ``42s``, ``3m 12s``, ``2h 05m``, ``3d 04h``."""
    seconds = int(age.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600:02d}h"


def _rate(value: float | None) -> str:
    return _MISSING if value is None else f"{value:.1f}"


def _groups_table(report: StatusReport) -> Table:
    snapshot = report.snapshot
    table = Table(title="Consumer groups", title_justify="left", expand=False)
    for column in ("group", "topic", "lag", "oldest waiting", "items/s"):
        table.add_column(column, justify="right" if column != "group" else "left")
    for group, topic in snapshot.group_topics():
        lag = sum(p.lag for p in snapshot.partitions if (p.group, p.topic) == (group, topic))
        age = snapshot.oldest_age(group, topic)
        style = "red" if age > _LATE else "yellow" if lag else "green"
        rate = report.consumed_per_s.get(group) if report.consumed_per_s else None
        table.add_row(
            group,
            topic,
            Text(str(lag), style=style),
            Text(format_age(age), style=style),
            _rate(rate),
        )
    return table


def _partitions_table(report: StatusReport, all_partitions: bool) -> RenderableType:
    rows = [p for p in report.snapshot.partitions if all_partitions or p.lag > 0]
    if not rows:
        return Text("Every partition is caught up.", style="green")
    table = Table(title="Partitions", title_justify="left")
    for column in ("group", "topic", "partition", "committed", "high watermark", "lag", "oldest"):
        table.add_column(column, justify="left" if column in {"group", "topic"} else "right")
    for p in rows:
        committed = _MISSING if p.committed is None else str(p.committed)
        table.add_row(
            p.group,
            p.topic,
            str(p.partition),
            committed,
            str(p.high_watermark),
            str(p.lag),
            format_age(p.age(report.snapshot.taken_at)),
        )
    return table


def _pipeline_table(report: StatusReport) -> Table:
    table = Table(title="Pipeline", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    produced = report.produced_per_s.get(INTAKE_ITEMS) if report.produced_per_s else None
    table.add_row("intake items/s", _rate(produced))
    size = report.snapshot.topic_size(report.dlq_topic)
    replayed = _MISSING if report.replayed is None else str(report.replayed)
    table.add_row("dead letters (replayed)", Text(f"{size} ({replayed})", "red" if size else ""))
    if report.store_error is not None:
        table.add_row("store", Text(f"unreachable ({report.store_error})", style="red"))
        return table
    table.add_row("outbox pending (oldest) / parked", _outbox(report.outbox))
    dossiers = report.open_dossiers
    table.add_row("open dossiers", _MISSING if dossiers is None else str(sum(dossiers.values())))
    deadlines = report.deadlines
    if deadlines is None:
        table.add_row("deadlines open / at risk / breached", _MISSING)
    else:
        style = "red" if deadlines.breached else "yellow" if deadlines.at_risk else ""
        text = f"{deadlines.open} / {deadlines.at_risk} / {deadlines.breached}"
        table.add_row("deadlines open / at risk / breached", Text(text, style=style))
    return table


def _outbox(counts: OutboxCounts | None) -> RenderableType:
    """Red when the relays cannot publish (the oldest row waits) or the broker refused rows."""
    if counts is None:
        return _MISSING
    age = counts.oldest_pending_age or dt.timedelta(0)
    style = "red" if age > _OUTBOX_LATE or counts.parked else ""
    return Text(f"{counts.pending} ({format_age(age)}) / {counts.parked}", style=style)


def render_status(report: StatusReport, *, all_partitions: bool = False) -> RenderableType:
    """The whole status view as one rich renderable."""
    stamp = report.snapshot.taken_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Group(
        Text(f"aiguillage status — {stamp}", style="bold"),
        _groups_table(report),
        _partitions_table(report, all_partitions),
        _pipeline_table(report),
    )

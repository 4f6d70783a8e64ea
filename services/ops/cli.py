"""``aiguillage dlq list|show|replay`` and ``aiguillage status [--watch]``.

Times are ISO 8601 (a time without offset is read as UTC) or relative
(``30m``, ``2h``, ``3d``: that long ago). Replay refuses an empty selection;
``--dry-run`` says what would happen. The payload of a dead letter may hold
personal data: ``show`` prints it only with ``--payload``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import re
from pathlib import Path
from typing import Annotated

import typer
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.live import Live
from rich.table import Table

from services.common.lag import LagReader, LagUnavailable
from services.common.logging import configure_logging
from services.common.store import create_store
from services.ops.adapters.store_views import StoreViews
from services.ops.dlq import list_dead_letters, replay_dead_letters
from services.ops.replay import InvalidCorrection, Selection
from services.ops.settings import OpsSettings
from services.ops.status import collect_status, render_status

__all__ = ["dlq", "parse_when", "status"]

dlq = typer.Typer(help="Dead letters: list, show, replay after a fix.", no_args_is_help=True)
console = Console()
_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_MISSING = "—"

Reasons = Annotated[list[str] | None, typer.Option("--reason", help="Reason code (repeatable).")]
Services = Annotated[list[str] | None, typer.Option("--service", help="Refusing service.")]
Topics = Annotated[list[str] | None, typer.Option("--topic", help="Original topic.")]
Since = Annotated[str | None, typer.Option(help="From (ISO 8601 or 30m, 2h, 3d ago).")]
Until = Annotated[str | None, typer.Option(help="Before (ISO 8601 or 30m, 2h, 3d ago).")]


def parse_when(text: str, now: dt.datetime) -> dt.datetime:
    """An aware UTC instant from ISO 8601 (naive = UTC) or a relative ``<n>[smhd]`` ago."""
    relative = _RELATIVE.match(text.strip())
    if relative:
        return now - dt.timedelta(**{_UNITS[relative[2]]: int(relative[1])})
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise typer.BadParameter(f"not a time: {text!r} (ISO 8601, or 30m, 2h, 3d)") from error
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _selection(
    ids: list[str] | None,
    reasons: list[str] | None,
    services: list[str] | None,
    topics: list[str] | None,
    since: str | None,
    until: str | None,
) -> Selection:
    now = dt.datetime.now(dt.UTC)
    return Selection(
        ids=frozenset(ids or ()),
        reason_codes=frozenset(reasons or ()),
        services=frozenset(services or ()),
        topics=frozenset(topics or ()),
        since=parse_when(since, now) if since else None,
        until=parse_when(until, now) if until else None,
    )


def _settings() -> OpsSettings:
    settings = OpsSettings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


@dlq.command("list")
def list_command(
    reason: Reasons = None,
    service: Services = None,
    topic: Topics = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, typer.Option(help="Show at most this many (newest).")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List dead letters with their reasons, newest last, and whether they were replayed."""
    selection = _selection(None, reason, service, topic, since, until)
    listing = asyncio.run(list_dead_letters(_settings(), selection))
    shown = listing.selected[-limit:] if limit > 0 else listing.selected
    replayed = listing.replayed
    if as_json:
        for stored in shown:
            row = stored.letter.model_dump(mode="json", exclude={"payload_b64"})
            row["replayed"] = None if replayed is None else replayed.get(row["dead_letter_id"], 0)
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    table = Table(title=f"Dead letters ({len(shown)} of {len(listing.selected)} selected)")
    for column in ("id", "when (UTC)", "service", "reason code", "reason", "replayed"):
        table.add_column(column, overflow="fold")
    for stored in shown:
        letter = stored.letter
        count = _MISSING if replayed is None else str(replayed.get(letter.dead_letter_id, 0))
        table.add_row(
            letter.dead_letter_id,
            letter.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
            letter.service,
            letter.reason_code,
            letter.reason[:120],
            count,
        )
    console.print(table)
    if listing.contents.unreadable:
        console.print(f"[yellow]{listing.contents.unreadable} unreadable record(s) skipped[/]")


@dlq.command("show")
def show_command(
    dead_letter_id: Annotated[str, typer.Argument(help="The dead letter id.")],
    payload: Annotated[bool, typer.Option(help="Print the original payload too.")] = False,
) -> None:
    """Show one dead letter: where it came from, why it was refused, replay history."""
    listing = asyncio.run(
        list_dead_letters(_settings(), Selection(ids=frozenset({dead_letter_id})))
    )
    if not listing.selected:
        console.print(f"no dead letter {dead_letter_id!r}", style="red", markup=False)
        raise typer.Exit(1)
    stored = listing.selected[0]
    letter = stored.letter
    table = Table(show_header=False, title=letter.dead_letter_id)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    for name, value in letter.model_dump(mode="json", exclude={"payload_b64"}).items():
        table.add_row(name, "" if value is None else str(value))
    table.add_row("dlq position", f"{stored.partition}@{stored.offset}")
    replayed = listing.replayed
    count = _MISSING if replayed is None else str(replayed.get(letter.dead_letter_id, 0))
    table.add_row("replayed", count)
    console.print(table)
    if payload and letter.payload_b64:
        console.print(base64.b64decode(letter.payload_b64).decode("utf-8", "replace"), markup=False)


@dlq.command("replay")
def replay_command(
    ids: Annotated[list[str] | None, typer.Argument(help="Dead letter ids.")] = None,
    reason: Reasons = None,
    service: Services = None,
    topic: Topics = None,
    since: Since = None,
    until: Until = None,
    payload_file: Annotated[
        Path | None, typer.Option(help="Corrected payload for exactly one dead letter.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replay letters already replayed.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Say what would be replayed.")] = False,
) -> None:
    """Put selected dead letters back on their original topic with their original key."""
    selection = _selection(ids, reason, service, topic, since, until)
    if selection.is_empty:
        raise typer.BadParameter("select by id, --reason, --service, --topic, --since or --until")
    corrected = payload_file.read_bytes() if payload_file else None
    try:
        results = asyncio.run(
            replay_dead_letters(
                _settings(), selection, corrected=corrected, force=force, dry_run=dry_run
            )
        )
    except (InvalidCorrection, ValueError) as error:
        console.print(str(error), style="red", markup=False)
        raise typer.Exit(2) from error
    table = Table(title=f"Replay ({len(results)} selected)")
    for column in ("id", "outcome", "detail"):
        table.add_column(column, overflow="fold")
    for result in results:
        table.add_row(result.dead_letter_id, result.outcome, result.detail)
    console.print(table)
    if any(r.outcome == "not_replayable" for r in results):
        raise typer.Exit(1)


async def _status(
    settings: OpsSettings, *, watch: bool, interval_s: float, all_partitions: bool
) -> None:
    store = create_store(settings.resolved_database_url())
    views = StoreViews(store, deadlines_table=settings.deadlines_table)
    try:
        async with LagReader(settings, timeout_s=settings.lag_timeout_s) as reader:
            previous = await reader.snapshot(settings.groups, extra_topics=(settings.dlq_topic,))
            await asyncio.sleep(min(interval_s, 1.0))  # a second sample gives items/s
            report = await collect_status(settings, reader, views, previous)
            if not watch:
                console.print(render_status(report, all_partitions=all_partitions))
                return
            with Live(
                render_status(report, all_partitions=all_partitions), console=console
            ) as live:
                while True:
                    await asyncio.sleep(interval_s)
                    report = await collect_status(settings, reader, views, report.snapshot)
                    live.update(render_status(report, all_partitions=all_partitions))
    finally:
        await store.dispose()


def status(
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds between refreshes.")] = 2.0,
    all_partitions: Annotated[
        bool, typer.Option("--all-partitions", help="List caught-up partitions too.")
    ] = False,
) -> None:
    """Lag per group and partition, items/s, DLQ size, open dossiers, deadlines at risk."""
    settings = _settings()
    try:
        asyncio.run(
            _status(settings, watch=watch, interval_s=interval, all_partitions=all_partitions)
        )
    except KeyboardInterrupt:
        return
    except (KafkaError, LagUnavailable, OSError) as error:
        console.print(f"[red]Kafka unreachable: {type(error).__name__}[/]")
        raise typer.Exit(1) from error

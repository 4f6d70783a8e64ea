"""A backlog imported by hand (``aiguillage scan import DIR``), with a rich progress bar.

The same batch runner as the service, on DIR instead of the inbox: every
complete batch is claimed (moved; copied then deleted across disks), run,
and counted. The import takes its own working folder and lock, so a crash
leaves its batches to be adopted by a running service.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.common.kafka import build_broker
from services.common.logging import configure_logging
from services.intake_scan.adapters.kafka_sink import SERVICE
from services.intake_scan.app import scan_runtime
from services.intake_scan.inbox import Candidate, Inbox
from services.intake_scan.settings import ScanSettings

__all__ = ["count_files", "run_import"]


def count_files(candidates: list[Candidate], index_name: str) -> int:
    """How many files (letters and strays) the batches hold: the progress bar's total."""
    total = 0
    for candidate in candidates:
        if candidate.kind == "folder":
            names = [entry.name for entry in candidate.path.iterdir()]
        else:
            try:
                with zipfile.ZipFile(candidate.path) as archive:
                    names = [
                        n.rsplit("/", 1)[-1] for n in archive.namelist() if not n.endswith("/")
                    ]
            except zipfile.BadZipFile:
                names = []
        total += sum(
            1 for name in names if name and not name.startswith(".") and name != index_name
        )
    return total


async def run_import(directory: Path, settings: ScanSettings | None = None) -> int:
    """Run every complete batch of ``directory`` once (4.3); 0 when none was interrupted."""
    settings = settings or ScanSettings()
    configure_logging("WARNING", settings.log_format)
    console = Console(stderr=True)
    inbox = Inbox(
        inbox=directory,
        work_root=settings.work_dir,
        archive=settings.archive_dir,
        quarantine=settings.quarantine_dir,
        instance_id=f"import-{settings.instance_id}"[:100],
        index_name=settings.index_name,
        settle_s=0.0,
        stale_zip_s=settings.stale_zip_s,
        copy_across_disks=True,
    )
    counts: dict[str, int] = {}
    total = count_files(inbox.ready_batches(), settings.index_name)
    broker = build_broker(settings, client_id=f"aiguillage-{SERVICE}-import")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    await broker.start()
    try:
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("letters", total=total or None)

            def on_entry(outcome: str) -> None:
                counts[outcome] = counts.get(outcome, 0) + 1
                if outcome != "dead_lettered":  # rows without a file are not in the total
                    bar.advance(task)

            async with scan_runtime(
                settings, broker, inbox=inbox, on_entry=on_entry, same_disk=False
            ) as service:
                report = await service.poll_once()
    finally:
        await broker.stop()
    table = Table(title=f"Import of {directory}")
    table.add_column("outcome")
    table.add_column("count", justify="right")
    for outcome, count in sorted(counts.items()):
        table.add_row(f"letters {outcome.replace('_', ' ')}", str(count))
    for status, count in sorted(report.statuses.items()):
        table.add_row(f"batches {status}", str(count))
    table.add_row("interrupted batches", str(report.interrupted))
    console.print(table)
    return 1 if report.interrupted else 0

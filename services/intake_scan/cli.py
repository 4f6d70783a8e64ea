"""``aiguillage scan …``: import a backlog of scan batches by hand, with a progress bar."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["cli"]

cli = typer.Typer(help="Scanned letters (intake_scan).", no_args_is_help=True)


@cli.command("import")
def import_batches(
    directory: Annotated[
        Path,
        typer.Argument(exists=True, file_okay=False, help="Folder holding batch folders or zips."),
    ],
) -> None:
    """Import every complete batch in DIRECTORY once, as the service would (4.3).

    Batches are claimed (moved out of DIRECTORY), letters published to
    intake.items.v1 and archived, bad input quarantined with its reason.
    Exit code 1 when a batch was interrupted: the next import, or the running
    service, resumes it.
    """
    from services.intake_scan.backlog import run_import

    raise typer.Exit(asyncio.run(run_import(directory)))

"""``aiguillage outbox parked|release``: outbox rows the broker refused for their size.

A row larger than the broker takes (``KAFKA_MAX_REQUEST_SIZE``, or Kafka's own
``message.max.bytes``) is parked instead of blocking every publication after
it, and dead-lettered (reason ``outbox_row_too_large``). Once the limits are
raised, ``release`` puts the rows back in the queue; the services' next sweep
publishes them. Payloads are never printed (they may hold personal data).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from services.common.logging import configure_logging
from services.common.settings import ServiceSettings
from services.common.store import Store, create_store
from services.ops.adapters.parked_rows import ParkedRow, parked_rows, release_parked

__all__ = ["outbox"]

outbox = typer.Typer(help="Outbox rows parked for their size: list, release.", no_args_is_help=True)
console = Console()


def _store() -> Store:
    settings = ServiceSettings()
    configure_logging(settings.log_level, settings.log_format)
    return create_store(settings.resolved_database_url())


async def _listing() -> list[ParkedRow]:
    store = _store()
    try:
        return await parked_rows(store)
    finally:
        await store.dispose()


async def _release(ids: list[int] | None) -> int:
    store = _store()
    try:
        return await release_parked(store, ids)
    finally:
        await store.dispose()


@outbox.command("parked")
def parked_command() -> None:
    """List the parked rows: id, topic, key, size, when, why."""
    rows = asyncio.run(_listing())
    table = Table(title=f"Parked outbox rows ({len(rows)})")
    for column in ("id", "topic", "key", "characters", "created", "parked", "reason"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            str(row.id),
            row.topic,
            row.key or "",
            str(row.characters),
            row.created_at.isoformat(timespec="seconds"),
            row.parked_at.isoformat(timespec="seconds"),
            row.reason,
        )
    console.print(table)


@outbox.command("release")
def release_command(
    ids: Annotated[list[int] | None, typer.Argument(help="Row ids (see `parked`).")] = None,
    all_rows: Annotated[bool, typer.Option("--all", help="Every parked row.")] = False,
) -> None:
    """Put parked rows back in the queue (after raising the broker's size limit)."""
    if not ids and not all_rows:
        raise typer.BadParameter("give row ids, or --all")
    released = asyncio.run(_release(None if all_rows else ids))
    console.print(f"{released} row(s) released: the services' next sweep publishes them")
    if ids and not all_rows and released < len(set(ids)):
        console.print("some ids were not parked rows", style="yellow")
        raise typer.Exit(1)

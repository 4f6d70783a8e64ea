"""``aiguillage``: run the pipeline, one service, or an ops task."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer

from services.cli.registry import SERVICES, cli_groups, load_app
from services.ops.cli import status as ops_status
from services.router.cli import run_classify, run_eval

__all__ = ["app"]

app = typer.Typer(help="aiguillage: omnichannel intake and routing pipeline.", no_args_is_help=True)
schemas_app = typer.Typer(help="Event contracts: JSON Schemas and AsyncAPI.", no_args_is_help=True)
db_app = typer.Typer(help="The dossier store.", no_args_is_help=True)
app.add_typer(schemas_app, name="schemas")
app.add_typer(db_app, name="db")
for _name, _group in cli_groups().items():
    app.add_typer(_group, name=_name)
app.command("classify")(run_classify)
app.command("eval")(run_eval)
app.command("status")(ops_status)


@app.command()
def up(
    demo: Annotated[
        bool, typer.Option(help="Feed sample contacts, print the result, exit.")
    ] = False,
    var: Annotated[Path, typer.Option(help="Working directory of the embedded default.")] = Path(
        "var"
    ),
    metrics_port: Annotated[
        int, typer.Option(help="First /metrics port (one per service, consecutive); 0: none.")
    ] = 9400,
) -> None:
    """Run the whole pipeline on the embedded default (tansu broker, SQLite store)."""
    from services.cli.up import run_up

    raise typer.Exit(run_up(var=var, demo=demo, metrics_base=metrics_port))


@app.command()
def run(service: Annotated[str, typer.Argument(help=f"One of: {', '.join(SERVICES)}")]) -> None:
    """Run one service against the configured Kafka and store (production shape)."""
    if service not in SERVICES:
        raise typer.BadParameter(f"unknown service {service!r}; known: {', '.join(SERVICES)}")
    from services.common.settings import ServiceSettings

    level = logging.getLevelName(ServiceSettings().log_level)
    asyncio.run(load_app(service)().run(log_level=level))


@schemas_app.command("export")
def schemas_export(directory: Path) -> None:
    """Write one JSON Schema per contract and the AsyncAPI document of every app."""
    from services.cli.export import export_all

    for path in export_all(directory):
        typer.echo(str(path))


@app.command()
def prepare() -> None:
    """Create the missing topics (with their partition counts) and migrate the store.

    Both steps run whatever ``KAFKA_CREATE_TOPICS`` and ``MIGRATE_ON_START``
    say: those turn off what the services do at start-up, and this command is
    how an operator (or a deployment job) does it once instead.
    """
    from schemas.topics import ALL_TOPICS
    from services.common.kafka import ensure_topics
    from services.common.settings import ServiceSettings
    from services.common.store import create_store, migrate

    async def _prepare() -> None:
        settings = ServiceSettings()
        store = create_store(settings.resolved_database_url())
        try:
            await ensure_topics(settings, ALL_TOPICS)
            await migrate(store)
        finally:
            await store.dispose()

    asyncio.run(_prepare())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the store's migrations (``DATABASE_URL``)."""
    from services.common.settings import ServiceSettings
    from services.common.store import create_store, migrate

    async def _upgrade() -> None:
        store = create_store(ServiceSettings().resolved_database_url())
        try:
            await migrate(store)
        finally:
            await store.dispose()

    asyncio.run(_upgrade())


if __name__ == "__main__":
    app()

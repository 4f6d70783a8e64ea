"""``aiguillage mail …``: check mailbox and relay, list acknowledgements, feed the demo's drop."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import typer

from services.common.store import create_store
from services.intake_mail.adapters.imap import ImapSource
from services.intake_mail.adapters.smtp import SmtpMailer
from services.intake_mail.adapters.tables import mail_acknowledgements
from services.intake_mail.errors import AcknowledgementNotSent, IntakeMailError
from services.intake_mail.settings import IntakeMailSettings

__all__ = ["cli", "drop_into_maildir"]

cli = typer.Typer(help="The web-form mailbox (intake_mail).", no_args_is_help=True)


def drop_into_maildir(files: list[Path], maildir: Path) -> list[Path]:
    """Deliver ``.eml`` files into a Maildir's ``new/`` (the embedded demo's drop folder)."""
    new = maildir / "new"
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    delivered = []
    for number, source in enumerate(files):
        target = new / f"{time.time_ns()}.M{number}.aiguillage"
        temporary = maildir / "tmp" / target.name
        shutil.copyfile(source, temporary)
        temporary.replace(target)
        delivered.append(target)
    return delivered


@cli.command("drop")
def drop(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False)],
    maildir: Annotated[Path, typer.Option(help="The drop folder (INTAKE_MAIL_MAILDIR).")],
) -> None:
    """Deliver mail files into the demo's Maildir drop folder."""
    for path in drop_into_maildir(files, maildir):
        typer.echo(path.name)


@cli.command("check")
def check() -> None:
    """Log in to the configured mailbox and relay; print the pending count (no mail data)."""
    settings = IntakeMailSettings()

    async def _check() -> int:
        failures = 0
        if settings.imap_host:
            source = ImapSource.from_settings(settings)
            try:
                state = await source.open()
                pending = await source.pending(100_000)
                typer.echo(
                    f"imap: {state.folder} UIDVALIDITY {state.uidvalidity}, {len(pending)} pending"
                )
            except IntakeMailError as error:
                failures += 1
                typer.echo(f"imap: {type(error).__name__}: {error}", err=True)
            finally:
                await source.close()
        if settings.acknowledgements_enabled:
            try:
                async with SmtpMailer.from_settings(settings).session():
                    typer.echo("smtp: session opened")
            except AcknowledgementNotSent as error:
                failures += 1
                typer.echo(f"smtp: {error.reason}", err=True)
        return failures

    raise typer.Exit(1 if asyncio.run(_check()) else 0)


@cli.command("acknowledgements")
def acknowledgements(
    status: Annotated[
        str, typer.Option(help="pending, sending, sent, failed or uncertain")
    ] = "uncertain",
    limit: Annotated[int, typer.Option(min=1)] = 50,
) -> None:
    """List acknowledgements by status (uncertain ones: look their Message-ID up at the relay)."""
    settings = IntakeMailSettings()
    table = mail_acknowledgements

    async def _list() -> list[Any]:
        store = create_store(settings.resolved_database_url())
        try:
            async with store.engine.connect() as connection:
                query = (
                    sa.select(
                        table.c.item_id, table.c.status, table.c.attempts, table.c.last_error,
                        table.c.message_id,
                    )
                    .where(table.c.status == status)
                    .order_by(table.c.created_at)
                    .limit(limit)
                )  # fmt: skip
                return list((await connection.execute(query)).all())
        finally:
            await store.dispose()

    for row in asyncio.run(_list()):
        error = row.last_error or ""
        typer.echo(f"{row.item_id}  {row.status}  {row.attempts}  {row.message_id}  {error}")

"""``aiguillage sla …``: answer "when is this due?" without touching Kafka or the store.

``aiguillage sla due --channel letter --received 2026-06-08T10:00`` prints the
response deadline and the planned holding-mail time under the SLA policy of
the settings (``SLA_WATCH_POLICY_FILE`` or ``SLA_WATCH_POLICY__…``). A received
time without an offset is read as Paris wall-clock time.
"""

from __future__ import annotations

import datetime as dt
import json
from enum import StrEnum
from typing import Annotated

import typer

from services.sla_watch.domain import (
    PARIS,
    HoldingMailPlan,
    UnknownRegion,
    format_paris,
    quote_deadline,
)
from services.sla_watch.settings import SlaWatchSettings

__all__ = ["cli", "due"]

cli = typer.Typer(help="SLA deadlines and holding mails (procedure 4.12).", no_args_is_help=True)


@cli.callback()
def sla() -> None:
    """SLA deadlines and holding mails (procedure 4.12)."""


class ChannelOption(StrEnum):
    """The contact channels a deadline depends on."""

    email = "email"
    letter = "letter"
    phone = "phone"


def _received(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as error:
        raise typer.BadParameter(f"not an ISO-8601 date-time: {text!r}") from error
    if value.tzinfo is None:
        value = value.replace(tzinfo=PARIS)
    return value.astimezone(dt.UTC)


@cli.command()
def due(
    channel: Annotated[ChannelOption, typer.Option(help="How the request came in.")],
    received: Annotated[
        str,
        typer.Option(help="Contact date (a letter's scan date), ISO-8601; no offset = Paris."),
    ],
    field_work: Annotated[
        bool, typer.Option("--field-work", help="Needs field work or another service.")
    ] = False,
    region: Annotated[
        str | None, typer.Option(help="French department code (working-day calendar).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the response deadline and the planned holding-mail time (4.12)."""
    policy = SlaWatchSettings().policy
    try:
        deadline, plan = quote_deadline(
            channel.value, _received(received), policy, field_work=field_work, region=region
        )
    except UnknownRegion as error:
        raise typer.BadParameter(str(error), param_hint="--region") from error
    mail_at = plan.send_at if isinstance(plan, HoldingMailPlan) else None
    if as_json:
        document = {
            "basis": deadline.basis,
            "received_at": deadline.started_at.isoformat(),
            "due_at": deadline.due_at.isoformat(),
            "due_at_paris": deadline.due_at.astimezone(PARIS).isoformat(),
            "holding_mail_at": mail_at.isoformat() if mail_at else None,
            "holding_mail_at_paris": mail_at.astimezone(PARIS).isoformat() if mail_at else None,
            "reason": deadline.reason,
            "holding_mail_reason": plan.reason,
        }
        typer.echo(json.dumps(document, ensure_ascii=False, indent=2))
        return
    planned = f"{format_paris(mail_at)} (Europe/Paris)" if mail_at else "aucun"
    rows = [
        ("échéance", f"{format_paris(deadline.due_at)} (Europe/Paris)  [{deadline.basis}]"),
        ("", deadline.reason),
        ("courrier d'attente", planned),
        ("", plan.reason),
    ]
    for label, text in rows:
        typer.echo(f"{label:<20}{text}")

"""Helpers for sla_watch's tests: dossier events, a movable clock, SMTP sinks, a fake mailer.

The event factories (``opened``, ``event_fields``, ``paris``…) are the only ones
the unit, component and integration tests and the benchmark use.

``ClockFile`` drives the service's ``SLA_WATCH_CLOCK_FILE`` (written atomically).
``GatedSmtpSink`` is an aiosmtpd server that can hold a transaction at RCPT
(before anything is handed over) or after DATA (the message is accepted but
the reply is withheld), which lets a test SIGKILL the service at a known
point of the SMTP dialogue.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa

from schemas.dossiers import (
    DossierClosed,
    DossierEvent,
    DossierOpened,
    Kind,
    ReplySent,
    ThirdPartyAwaited,
    ThirdPartyReceived,
)
from schemas.intake import Channel
from services.common.store import Store
from services.common.store.tables import processed_messages
from services.common.testing import ServiceProcess
from services.sla_watch.adapters.tables import sla_actions, sla_dossiers
from services.sla_watch.domain import PARIS
from services.sla_watch.errors import MailError, MailUncertain

__all__ = [
    "ClockFile",
    "GatedSmtpSink",
    "ScriptedMailer",
    "SlaRig",
    "closed",
    "encode",
    "event_fields",
    "opened",
    "paris",
    "replied",
    "third_party",
]


def paris(day: str, hour: int = 0, minute: int = 0) -> dt.datetime:
    """An aware Paris datetime from an ISO date and a wall-clock hour."""
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour, minute), tzinfo=PARIS)


def event_fields(dossier_id: str, at: dt.datetime, name: str) -> dict[str, Any]:
    """What every dossier event carries: an id made of the dossier, ``name`` and ``at``."""
    return {
        "event_id": f"{dossier_id}:{name}@{at.isoformat()}",
        "dossier_id": dossier_id,
        "occurred_at": at,
    }


def opened(
    dossier_id: str,
    at: dt.datetime,
    channel: Channel = "letter",
    *,
    email: str | None = "client@example.test",
    kind: Kind = "demande",
    dossier_type: str = "COMPTEUR",
    customer_ref: str | None = "200000001",
    field_work: bool = False,
    region: str | None = None,
) -> DossierOpened:
    """A ``DossierOpened`` as the router emits it (ids deterministic from the dossier id)."""
    return DossierOpened(
        event_id=f"{dossier_id}:opened",
        dossier_id=dossier_id,
        occurred_at=at,
        item_id=f"item-{dossier_id}",
        channel=channel,
        contact_date=at,
        dossier_type=dossier_type,
        kind=kind,
        urgency="normale",
        service="customer_service",
        needs_field_work=field_work,
        customer_ref=customer_ref,
        reply_email=email,
        region=region,
    )


def replied(dossier_id: str, at: dt.datetime) -> ReplySent:
    """The customer was answered by letter."""
    return ReplySent(
        event_id=f"{dossier_id}:reply", dossier_id=dossier_id, occurred_at=at, medium="letter"
    )


def closed(dossier_id: str, at: dt.datetime) -> DossierClosed:
    """The dossier was closed."""
    return DossierClosed(event_id=f"{dossier_id}:closed", dossier_id=dossier_id, occurred_at=at)


def third_party(
    dossier_id: str, at: dt.datetime, *, received: bool = False
) -> ThirdPartyAwaited | ThirdPartyReceived:
    """The dossier starts (or stops) waiting for a local authority's approval."""
    if received:
        return ThirdPartyReceived(
            event_id=f"{dossier_id}:tp-received", dossier_id=dossier_id, occurred_at=at
        )
    return ThirdPartyAwaited(
        event_id=f"{dossier_id}:tp-awaited",
        dossier_id=dossier_id,
        occurred_at=at,
        third_party="mairie",
    )


def encode(event: DossierEvent) -> tuple[bytes, bytes]:
    """(key, value) of a dossier event on ``dossier.events.v1``."""
    return event.dossier_id.encode(), event.model_dump_json().encode()


class ClockFile:
    """The instant the service believes it is; ``set`` rewrites the file atomically."""

    def __init__(self, path: Path, start: dt.datetime) -> None:
        self.path = path
        self.now = start
        self.set(start)

    def set(self, instant: dt.datetime) -> None:
        """Move the service's clock to ``instant``."""
        self.now = instant
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(instant.isoformat(), encoding="utf-8")
        os.replace(temporary, self.path)

    def advance(self, delta: dt.timedelta) -> None:
        """Move the service's clock forward."""
        self.set(self.now + delta)


class ScriptedMailer:
    """A ``Mailer`` fake: keeps what it sends, raises the error scripted for a recipient
    (a fresh one each time), and awaits ``during(recipient)`` in the middle of each send.

    ``MailUncertain`` is scripted as "the server has it, the client does not know": the
    message is kept. ``most_in_flight`` is the highest number of sends at once.
    """

    def __init__(
        self,
        failures: Mapping[str, MailError] | None = None,
        *,
        during: Callable[[str], Awaitable[None]] | None = None,
        pause_s: float = 0.01,
    ) -> None:
        self.failures = dict(failures or {})
        self.during = during
        self.pause_s = pause_s
        self.sent: list[bytes] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def send(self, message: bytes, *, sender: str, recipient: str) -> None:
        """Pretend to hand ``message`` over, or fail as scripted."""
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.pause_s)
            if self.during is not None:
                await self.during(recipient)
            error = self.failures.get(recipient)
            if error is None or isinstance(error, MailUncertain):
                self.sent.append(message)
            if error is not None:
                raise type(error)(error.code)
        finally:
            self.in_flight -= 1

    async def close(self) -> None:
        """Nothing to close."""

    def parsed(self) -> list[EmailMessage]:
        """The messages handed over, parsed."""
        parser = BytesParser(policy=policy.default)
        return [parser.parsebytes(content) for content in self.sent]


class GatedSmtpSink:
    """An aiosmtpd server on a free loopback port; can hold the N+1-th transaction.

    ``hold="rcpt"``: the transaction after ``accept`` messages waits at RCPT,
    nothing handed over. ``hold="reply"``: it is stored, then the 250 reply
    to DATA is withheld (the server has the message; the client does not know).
    """

    def __init__(
        self, *, accept: int | None = None, hold: Literal["rcpt", "reply"] = "rcpt"
    ) -> None:
        from aiosmtpd.controller import Controller

        from services.common.embedded import free_port

        self.messages: list[bytes] = []
        self.host, self.port = "127.0.0.1", free_port()
        self.accept, self.hold = accept, hold
        self.held = threading.Event()
        self.released = threading.Event()
        sink = self

        class _Handler:
            async def handle_RCPT(
                self, server: Any, session: Any, envelope: Any, address: str, options: Any
            ) -> str:
                if sink.hold == "rcpt":
                    await sink._maybe_hold()
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                sink.messages.append(envelope.original_content or envelope.content)
                if sink.hold == "reply":
                    await sink._maybe_hold()
                return "250 Message accepted for delivery"

        self._controller = Controller(_Handler(), hostname=self.host, port=self.port)

    async def _maybe_hold(self) -> None:
        if self.accept is None or len(self.messages) < self.accept + (self.hold == "reply"):
            return
        self.held.set()
        await asyncio.get_running_loop().run_in_executor(None, self.released.wait)

    def start(self) -> GatedSmtpSink:
        """Start serving (aiosmtpd runs in its own thread)."""
        self._controller.start()
        return self

    def stop(self) -> None:
        """Release any held transaction and stop serving."""
        self.released.set()
        time.sleep(0.1)
        self._controller.stop()

    def parsed(self) -> list[EmailMessage]:
        """The received messages, parsed."""
        parser = BytesParser(policy=policy.default)
        return [parser.parsebytes(content) for content in self.messages]


@dataclass
class SlaRig:
    """What a process test needs: the environment, the clock, the store, the processes."""

    env: dict[str, str]
    clock: ClockFile
    store: Store
    tmp_path: Path
    processes: list[ServiceProcess] = field(default_factory=list)

    def start(self, name: str, **extra: str) -> ServiceProcess:
        """Start one more ``aiguillage run sla-watch`` process, logging to its own file."""
        log_dir = self.tmp_path / name
        log_dir.mkdir(exist_ok=True)
        process = ServiceProcess("sla-watch", {**self.env, **extra}, log_dir).start()
        self.processes.append(process)
        return process

    async def count(self, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
        query = sa.select(sa.func.count()).select_from(table).where(*where)
        async with self.store.engine.connect() as connection:
            return int(await connection.scalar(query) or 0)

    async def dossiers(self) -> int:
        return await self.count(sla_dossiers)

    async def consumed(self) -> int:
        """Dossier events consumed (not counting sla_watch's own, recorded as it emits them)."""
        return await self.count(
            processed_messages,
            processed_messages.c.consumer == "sla_watch.events",
            processed_messages.c.outcome != "own_event",
        )

    async def ledger(self) -> list[sa.Row[tuple[object, ...]]]:
        query = sa.select(sla_actions).order_by(sla_actions.c.action_id)
        async with self.store.engine.connect() as connection:
            return list((await connection.execute(query)).all())

"""The sla_watch app: ``faststream run services.sla_watch.app:create_app --factory``."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from faststream import FastStream
from faststream.specification import AsyncAPI

from schemas import AccountAction, DeadLetter, OutboundContact, Task
from schemas.dossiers import DossierEvent
from schemas.topics import (
    ACCOUNT_ACTIONS,
    DEAD_LETTERS,
    DOSSIER_EVENTS,
    OUTBOUND_CONTACTS,
    task_topic,
)
from services.common.dlq import DeadLetterMiddleware, DeadLetterPublisher
from services.common.kafka import build_broker
from services.common.lifecycle import endpoints, prepare_infrastructure
from services.common.logging import configure_logging, get_logger
from services.common.outbox import OutboxRelay, document_outbox_topics, publish_pending
from services.common.store import Store, create_store
from services.common.version import SERVICE_VERSION
from services.sla_watch.adapters.clock import build_clock
from services.sla_watch.adapters.composer import MailComposer
from services.sla_watch.adapters.smtp import SmtpMailer
from services.sla_watch.handlers import SlaDeps, build_router
from services.sla_watch.runner import LoopCrashed, Loops, run_periodically
from services.sla_watch.sender import HoldingMailSender, SenderOptions
from services.sla_watch.service import SlaWatchService
from services.sla_watch.settings import SlaWatchSettings

__all__ = ["create_app"]

log = get_logger(__name__)


@dataclass
class _Running:
    store: Store
    relay: OutboxRelay
    service: SlaWatchService
    sender: HoldingMailSender
    mailer: SmtpMailer
    loops: Loops


def _sender_options(settings: SlaWatchSettings) -> SenderOptions:
    return SenderOptions(
        envelope_sender=settings.envelope_sender,
        apology_types=frozenset(settings.apology_dossier_types),
        batch_size=settings.mail_batch_size,
        concurrency=settings.smtp_connections,
        lease=dt.timedelta(seconds=settings.send_lease_s),
        smtp_timeout=dt.timedelta(seconds=settings.smtp_timeout_s),
        max_uncertain=settings.max_uncertain_sends,
        backoff_max=dt.timedelta(seconds=settings.retry_backoff_max_s),
        record_within=dt.timedelta(milliseconds=settings.record_within_ms),
    )


def create_app(settings: SlaWatchSettings | None = None) -> FastStream:
    """Wire sla_watch: broker, DLQ, store, clock, SMTP, scheduler and sender loops."""
    settings = settings or SlaWatchSettings()
    configure_logging(settings.log_level, settings.log_format)
    clock = build_clock(settings.clock_file, settings.clock_offset)  # fails fast on a bad file
    broker = build_broker(settings, client_id="aiguillage-sla-watch")
    dead_letters = DeadLetterPublisher(broker, "sla-watch")
    deps = SlaDeps(dead_letters=dead_letters)
    broker.add_middleware(DeadLetterMiddleware.bind(dead_letters))
    document_outbox_topics(
        broker,
        "sla-watch",
        {
            OUTBOUND_CONTACTS: (OutboundContact, "Holding mails sent (4.12, 5.1.6)."),
            DOSSIER_EVENTS: (
                DossierEvent,
                "Deadlines set, holding mails sent, deadlines missed, direct debits suspended.",
            ),
            task_topic("supervisor"): (Task, "A response deadline missed (4.12)."),
            ACCOUNT_ACTIONS: (
                AccountAction,
                "Direct debit suspended for an open complaint (4.13).",
            ),
            DEAD_LETTERS: (DeadLetter, "Records sla-watch could not read, with the reason."),
        },
    )
    broker.include_router(build_router(settings, deps))
    running: list[_Running] = []

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        store = create_store(settings.resolved_database_url())
        await prepare_infrastructure(settings, store)
        relay = OutboxRelay(store, broker, service=dead_letters.service)
        mailer = SmtpMailer(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_user,
            password=settings.smtp_password,
            timeout_s=settings.smtp_timeout_s,
            connections=settings.smtp_connections,
        )
        wake = asyncio.Event()
        service = SlaWatchService(
            store,
            relay,
            policy=settings.policy,
            clock=clock,
            mail_domain=settings.mail_domain,
            batch_size=settings.scheduler_batch_size,
            retry_max_s=settings.db_retry_max_s,
            on_mail_queued=wake.set,
        )
        composer = MailComposer(mail_from=settings.mail_from)
        options = _sender_options(settings)
        sender = HoldingMailSender(store, service, mailer, composer, options, wake=wake)
        deps.service = service
        running.append(_Running(store, relay, service, sender, mailer, Loops(app.exit)))
        try:
            async with endpoints(settings, "sla-watch", broker, store):
                yield
        finally:
            await mailer.close()
            await store.dispose()
        if running[0].loops.crashed:
            raise LoopCrashed("a background loop of sla_watch crashed (see service.task_crashed)")

    app = FastStream(
        broker,
        logger=logging.getLogger("aiguillage.app"),
        lifespan=lifespan,
        specification=AsyncAPI(title="aiguillage sla_watch", version=SERVICE_VERSION),
    )

    @app.after_startup
    async def start_loops() -> None:
        parts = running[0]
        stop = parts.loops.stop_event
        outbox = run_periodically(
            "outbox", parts.relay.flush, interval_s=settings.outbox_sweep_interval_s, stop=stop
        )
        parts.loops.start("outbox", outbox)
        scheduler = run_periodically(
            "scheduler",
            parts.service.tick,
            interval_s=settings.scheduler_interval_s,
            full_batch=settings.scheduler_batch_size,
            stop=stop,
        )
        parts.loops.start("scheduler", scheduler)
        for lane in range(settings.sender_lanes):  # batches claimed while others are sent
            sender = run_periodically(  # any mail taken: look again at once; idle: wait
                "sender",
                parts.sender.run_once,
                interval_s=settings.scheduler_interval_s,
                full_batch=1,
                stop=stop,
                wake=parts.sender.wake,
            )
            parts.loops.start(f"sender-{lane}", sender)
        log.info("service.started", service="sla-watch", version=SERVICE_VERSION)

    @app.on_shutdown
    async def stop_loops() -> None:
        if running:
            running[0].sender.stop()
            await running[0].loops.stop(grace_s=2 * settings.smtp_timeout_s + 5)
            # before the broker stops: what is pending is published now, not at next start
            await publish_pending(running[0].relay)

    return app

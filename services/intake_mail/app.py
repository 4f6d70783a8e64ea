"""The intake_mail app: ``aiguillage run intake-mail`` (or ``faststream run … --factory``).

No subscriber: the app publishes. Its lifespan builds the store, the mail
source (IMAP, or the demo's Maildir drop folder), the SMTP mailer and the
outbox relay, and runs the mailbox loop, the acknowledgement sweep and the
outbox sweep as background tasks. Without a configured mailbox it says so
and waits, so that ``aiguillage up`` can always start it. Should the mailbox
loop die of an unexpected error, the app stops and the process exits non-zero
(its supervisor restarts it); expected infrastructure errors never stop it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from schemas import DeadLetter, IntakeItem, OutboundContact
from schemas.topics import DEAD_LETTERS, INTAKE_ITEMS, OUTBOUND_CONTACTS
from services.common.dlq import DeadLetterPublisher
from services.common.kafka import build_broker
from services.common.lifecycle import CrashWatch, endpoints, prepare_infrastructure
from services.common.logging import configure_logging, get_logger
from services.common.metrics import metrics
from services.common.outbox import OutboxRelay, publish_pending
from services.common.store import Store, create_store
from services.common.version import SERVICE_VERSION
from services.intake_mail.acknowledgement_mail import AcknowledgementRenderer
from services.intake_mail.acknowledgements import Acknowledger
from services.intake_mail.adapters.attachments import FileAttachmentStore
from services.intake_mail.adapters.imap import ImapSource
from services.intake_mail.adapters.maildir import MaildirSource
from services.intake_mail.adapters.smtp import SmtpMailer
from services.intake_mail.batches import Folders
from services.intake_mail.mailbox import MailboxLoop
from services.intake_mail.metrics import MailMetrics
from services.intake_mail.ports import ItemPublisher, MailSource
from services.intake_mail.service import SERVICE, MailIntake
from services.intake_mail.settings import IntakeMailSettings

__all__ = ["create_app"]

log = get_logger(__name__)


def _quiet_protocol_loggers() -> None:
    # aioimaplib logs received bytes (mail content) at DEBUG: never let it through.
    for name in ("aioimaplib", "aioimaplib.aioimaplib", "aiosmtplib"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _source(settings: IntakeMailSettings, folders: Folders) -> MailSource:
    if settings.imap_host:
        return ImapSource.from_settings(settings)
    if settings.maildir is None:
        raise ValueError("no mailbox configured")
    return MaildirSource(
        settings.maildir,
        account=settings.account_label(),
        folders=(folders.processed, folders.quarantine, folders.automatic),
    )


def _acknowledger(
    settings: IntakeMailSettings, store: Store, relay: OutboxRelay, metrics: MailMetrics
) -> Acknowledger | None:
    if not settings.acknowledgements_enabled:
        log.warning(
            "acknowledgement.disabled", reason="INTAKE_MAIL_SMTP_HOST or FROM_ADDRESS unset"
        )
        return None
    return Acknowledger(
        store,
        SmtpMailer.from_settings(settings),
        AcknowledgementRenderer(settings.from_address),
        relay,
        envelope_from=settings.envelope_from,
        lease_s=settings.ack_lease_s,
        max_attempts=settings.ack_max_attempts,
        batch_size=settings.batch_size,
        concurrency=settings.ack_concurrency,
        metrics=metrics,
        retry_max_s=settings.db_retry_max_s,
    )


async def _sweep_outbox(relay: OutboxRelay, interval_s: float) -> None:
    """Sweep the outbox every interval; once more when cancelled at shutdown (bounded)."""
    try:
        await relay.run_forever(interval_s)
    finally:  # stopped before the broker: what is pending is published now, not at next start
        await publish_pending(relay)


def _jobs(
    settings: IntakeMailSettings,
    broker: KafkaBroker,
    items: ItemPublisher,
    store: Store,
    metrics: MailMetrics,
) -> list[Coroutine[Any, Any, None]]:
    """The background jobs of a configured mailbox: the loop and the two sweeps."""
    relay = OutboxRelay(store, broker, service=SERVICE)
    acknowledger = _acknowledger(settings, store, relay, metrics)
    folders = Folders(
        settings.processed_folder, settings.quarantine_folder, settings.automatic_folder
    )
    intake = MailIntake(
        store,
        items=items,
        dead_letters=DeadLetterPublisher(broker, SERVICE),
        attachments=FileAttachmentStore(settings.attachments_dir),
        acknowledger=acknowledger,
        own_addresses=settings.own_address_set(),
        from_address=settings.from_address,
        folders=folders,
        max_bytes=settings.max_message_bytes,
        metrics=metrics,
        retry_max_s=settings.db_retry_max_s,
        crash_at=settings.test_crash_at,
    )
    loop = MailboxLoop(
        _source(settings, folders),
        intake,
        batch_size=settings.batch_size,
        poll_interval_s=settings.poll_interval_s,
        reconnect_max_s=settings.reconnect_max_s,
        metrics=metrics,
    )
    jobs: list[Coroutine[Any, Any, None]] = [
        loop.run_forever(),
        _sweep_outbox(relay, settings.outbox_sweep_interval_s),
    ]
    if acknowledger is not None:
        jobs.append(acknowledger.run_forever(settings.ack_sweep_interval_s))
    return jobs


def create_app(settings: IntakeMailSettings | None = None) -> FastStream:
    """Wire intake_mail: broker and publishers; the lifespan builds and runs the rest."""
    settings = settings or IntakeMailSettings()
    configure_logging(settings.log_level, settings.log_format)
    _quiet_protocol_loggers()
    broker = build_broker(settings, client_id="aiguillage-intake-mail")
    items = broker.publisher(
        INTAKE_ITEMS,
        title="intake-mail/items",
        description="One IntakeItem per customer mail, keyed by customer (4.1, 5.1.1).",
        schema=IntakeItem,
    )
    broker.publisher(
        OUTBOUND_CONTACTS,
        title="intake-mail/acknowledgements",
        description="Each acknowledgement sent, as an outbound contact (4.12 NB, 5.1.4).",
        schema=OutboundContact,
    )
    broker.publisher(
        DEAD_LETTERS,
        title="intake-mail/quarantine",
        description="Mails moved to quarantine, with the reason (issue 4, bad input).",
        schema=DeadLetter,
    )

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        if not settings.mailbox_configured:
            log.warning("service.idle", service=SERVICE, reason="no mailbox configured")
            async with endpoints(settings, "intake-mail", broker, None):
                yield
            return
        store = create_store(settings.resolved_database_url())
        await prepare_infrastructure(settings, store)
        await broker.connect()
        mail_metrics = MailMetrics()
        metrics.include(mail_metrics.registry)
        background.start(_jobs(settings, broker, items, store, mail_metrics))
        log.info("service.started", service=SERVICE, version=SERVICE_VERSION)
        try:
            async with endpoints(settings, "intake-mail", broker, store):
                yield
        finally:
            await background.stop()
            await store.dispose()
        if background.failures:
            raise background.failures[0]

    app = FastStream(
        broker,
        logger=logging.getLogger("aiguillage.app"),
        lifespan=lifespan,
        specification=AsyncAPI(title="aiguillage intake-mail", version=SERVICE_VERSION),
    )
    background = BackgroundJobs(app)
    app.on_shutdown(background.stop)  # before the broker stops: no publish on a closed producer
    return app


class BackgroundJobs:
    """The app's background tasks: stopped before the broker (``on_shutdown``), failures kept.

    A job that dies of an unexpected error asks the app to exit; the lifespan
    then re-raises that error, so the process exits non-zero.
    """

    def __init__(self, app: FastStream) -> None:
        self._crashes = CrashWatch(app.exit)  # logs the traceback, asks the app to exit
        self._tasks: list[asyncio.Task[None]] = []
        self.failures: list[BaseException] = []

    def start(self, jobs: list[Coroutine[Any, Any, None]]) -> None:
        """Run each job as a task."""
        for job in jobs:
            self._tasks.append(self._crashes.watch(asyncio.create_task(job)))

    async def stop(self) -> None:
        """Cancel every task and wait for them (idempotent)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        self.failures += [r for r in results if isinstance(r, Exception)]


def broker_of(app: FastStream) -> KafkaBroker:
    """The app's Kafka broker (tests add subscribers to it)."""
    broker = app.broker
    if not isinstance(broker, KafkaBroker):
        raise TypeError("intake_mail runs on a KafkaBroker")
    return broker

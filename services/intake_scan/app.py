"""The intake_scan app: ``aiguillage run intake-scan`` (``create_app().run()``).

Wiring only: the broker is built here, the store, reader pool, inbox lock and
watcher in the lifespan. The watcher starts once the broker is connected and
is stopped (the letter in hand finished) before the broker is.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from faststream import FastStream
from faststream.exceptions import IncorrectState
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from schemas import DeadLetter, IntakeItem
from schemas.topics import DEAD_LETTERS, INTAKE_ITEMS
from services.common.kafka import build_broker
from services.common.lifecycle import endpoints, prepare_infrastructure
from services.common.logging import configure_logging, get_logger
from services.common.store import create_store
from services.common.version import SERVICE_VERSION
from services.intake_scan.adapters.kafka_sink import SERVICE, KafkaSink
from services.intake_scan.adapters.progress import ScanProgress
from services.intake_scan.adapters.reader import PoolReader, check_tesseract
from services.intake_scan.batches import BatchRunner, EntryHook
from services.intake_scan.inbox import Inbox
from services.intake_scan.letter_flow import LetterFlow
from services.intake_scan.ports import ItemSink, LetterReader
from services.intake_scan.service import ScanService
from services.intake_scan.settings import ScanSettings

__all__ = ["create_app", "inbox_for", "scan_runtime"]

log = get_logger(__name__)
_STOP_TIMEOUT_S = 60.0


def inbox_for(settings: ScanSettings) -> Inbox:
    """The service's inbox, working folder, archive and quarantine, from the settings."""
    return Inbox(
        inbox=settings.inbox_dir,
        work_root=settings.work_dir,
        archive=settings.archive_dir,
        quarantine=settings.quarantine_dir,
        instance_id=settings.instance_id,
        index_name=settings.index_name,
        settle_s=settings.settle_s,
        stale_zip_s=settings.stale_zip_s,
    )


@asynccontextmanager
async def scan_runtime(
    settings: ScanSettings,
    broker: KafkaBroker,
    *,
    inbox: Inbox,
    reader: LetterReader | None = None,
    on_entry: EntryHook | None = None,
    same_disk: bool = True,
    wrap_sink: Callable[[ItemSink], ItemSink] | None = None,
) -> AsyncIterator[ScanService]:
    """Store (migrated), topics, OCR check, reader pool and inbox lock around a ``ScanService``.

    ``reader`` replaces the process pool and ``wrap_sink`` wraps the Kafka sink
    (tests inject crashes with them).
    """
    store = create_store(settings.resolved_database_url())
    try:
        await prepare_infrastructure(settings, store)
        if reader is None:
            check_tesseract(settings.ocr_lang)
            reader = PoolReader(
                settings.read_options(),
                workers=settings.ocr_workers,
                timeout_s=settings.reader_timeout_s,
            )
        inbox.open(same_disk=same_disk)
        try:
            progress = ScanProgress(store, retry_max_s=settings.db_retry_max_s)
            sink: ItemSink = KafkaSink(broker)
            if wrap_sink is not None:
                sink = wrap_sink(sink)

            def clock() -> dt.datetime:
                return dt.datetime.now(dt.UTC)

            flow = LetterFlow(
                settings=settings, inbox=inbox, progress=progress, reader=reader, sink=sink,
                clock=clock,
            )  # fmt: skip
            runner = BatchRunner(
                settings=settings, inbox=inbox, progress=progress, flow=flow, sink=sink,
                clock=clock, on_entry=on_entry,
            )  # fmt: skip
            yield ScanService(
                inbox=inbox, runner=runner, poll_interval_s=settings.poll_interval_s, store=store
            )
        finally:
            await asyncio.to_thread(reader.close)
            inbox.close()
    finally:
        await store.dispose()


def _document(broker: KafkaBroker) -> None:
    broker.publisher(
        INTAKE_ITEMS,
        title="intake-scan/items",
        description="One item per scanned letter (4.3, 5.1.1), keyed by IntakeItem.partition_key.",
        schema=IntakeItem,
    )
    broker.publisher(
        DEAD_LETTERS,
        title="intake-scan/dead-letters",
        description="Bad scan input, kept in quarantine, with its reason.",
        schema=DeadLetter,
    )


def create_app(settings: ScanSettings | None = None) -> FastStream:
    """Wire intake_scan: broker, then (in the lifespan) store, reader pool, inbox and watcher."""
    settings = settings or ScanSettings()
    configure_logging(settings.log_level, settings.log_format)
    broker = build_broker(settings, client_id=f"aiguillage-{SERVICE}")
    _document(broker)
    started = asyncio.Event()
    stop = asyncio.Event()
    shutting_down = asyncio.Event()  # set by on_shutdown only: stop is also set on a crash
    tasks: list[asyncio.Task[None]] = []

    async def watch(service: ScanService) -> None:
        await started.wait()
        if not stop.is_set():
            log.info("service.started", service=SERVICE, version=SERVICE_VERSION)
            await service.run_forever(stop)

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with scan_runtime(settings, broker, inbox=inbox_for(settings)) as service:
            task = asyncio.create_task(watch(service))
            task.add_done_callback(exit_on_crash)
            tasks.append(task)
            try:
                async with endpoints(settings, "intake-scan", broker, service.store):
                    yield
            finally:
                stop.set()
                started.set()
                if not task.done():  # did not stop in time: the batch is resumed on restart
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                elif not stopped_mid_publish(task):
                    task.result()  # re-raises a watcher crash: the process exits with an error

    def stopped_mid_publish(task: asyncio.Task[None]) -> bool:
        # Still publishing when the stop grace ran out (a broker or store outage at
        # shutdown): the broker is gone, the batch resumes on restart. A stop, not a crash.
        return shutting_down.is_set() and isinstance(task.exception(), IncorrectState)

    def exit_on_crash(task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        if stopped_mid_publish(task):
            log.info("service.stopped_mid_batch", service=SERVICE)
            return
        error = task.exception()
        log.error("service.crashed", service=SERVICE, error=type(error).__name__, exc_info=error)
        app.exit()

    async def on_started() -> None:
        started.set()

    async def on_stopping() -> None:
        shutting_down.set()
        stop.set()
        started.set()
        if tasks:
            await asyncio.wait(tasks, timeout=_STOP_TIMEOUT_S)

    app = FastStream(
        broker,
        logger=logging.getLogger("aiguillage.app"),
        lifespan=lifespan,
        after_startup=[on_started],
        on_shutdown=[on_stopping],
        specification=AsyncAPI(title="aiguillage intake-scan", version=SERVICE_VERSION),
    )
    return app

"""The router app: ``faststream run services.router.app:create_app --factory``."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from faststream import FastStream
from faststream.specification import AsyncAPI

from schemas import AccountAction, DeadLetter, Task
from schemas.dossiers import DossierEvent
from schemas.topics import ACCOUNT_ACTIONS, DEAD_LETTERS, DOSSIER_EVENTS, SERVICE_QUEUES, task_topic
from services.common.dlq import DeadLetterMiddleware, DeadLetterPublisher
from services.common.kafka import build_broker
from services.common.lifecycle import (
    CrashWatch,
    background,
    endpoints,
    prepare_infrastructure,
)
from services.common.logging import configure_logging, get_logger
from services.common.outbox import OutboxRelay, document_outbox_topics
from services.common.store import create_store
from services.common.version import SERVICE_VERSION
from services.router.classifier import Classifier, ProcessClassifier, ThreadClassifier
from services.router.domain.dossiers import FollowUpPolicy
from services.router.domain.identification import MatchPolicy
from services.router.handlers import RouterDeps, build_router
from services.router.rules_loader import load_rules
from services.router.service import RouterService
from services.router.settings import RouterSettings

__all__ = ["create_app"]

log = get_logger(__name__)


def create_app(settings: RouterSettings | None = None) -> FastStream:
    """Wire the router: broker, DLQ, store, rules, outbox relay and subscribers."""
    settings = settings or RouterSettings()
    configure_logging(settings.log_level, settings.log_format)
    rules = load_rules(settings.rules_dir)  # fails fast on a bad rule file
    deps = RouterDeps()
    broker = build_broker(settings, client_id="aiguillage-router")
    dead_letters = DeadLetterPublisher(broker, "router")
    deps.dead_letters = dead_letters
    broker.add_middleware(DeadLetterMiddleware.bind(dead_letters))
    broker.include_router(build_router(settings, deps))
    document_outbox_topics(
        broker,
        "router",
        {
            **{
                task_topic(queue): (Task, f"Tasks for the {queue} queue (4.6, 4.8, 5.1.4).")
                for queue in SERVICE_QUEUES
            },
            DOSSIER_EVENTS: (DossierEvent, "Each dossier's life: opened, attached, closed..."),
            ACCOUNT_ACTIONS: (AccountAction, "Dunning blocked and unblocked (4.13, 5.1.7.1)."),
            DEAD_LETTERS: (DeadLetter, "Records the router could not read, with the reason."),
        },
    )

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        store = create_store(settings.resolved_database_url())
        await prepare_infrastructure(settings, store)
        relay = OutboxRelay(store, broker, service=dead_letters.service)
        classifier: Classifier = ThreadClassifier(rules)
        if settings.classify_processes:
            classifier = ProcessClassifier(rules, settings.rules_dir, settings.classify_processes)
            await classifier.start()
        deps.service = RouterService(
            store,
            rules,
            relay,
            retry_max_s=settings.db_retry_max_s,
            match_policy=MatchPolicy(settings.name_threshold, settings.address_threshold),
            follow_up=FollowUpPolicy.of(rules, dt.timedelta(days=settings.follow_up_days)),
            classifier=classifier,
        )
        crashes = CrashWatch(lambda: app.exit())
        await broker.connect()  # the sweep publishes from its first round (rows of a crash)
        async with (
            background(relay.run_forever(settings.outbox_sweep_interval_s), crashes=crashes),
            endpoints(settings, "router", broker, store),
        ):
            log.info("service.started", service="router", version=SERVICE_VERSION)
            yield
        await deps.require().stop_publishing()
        classifier.close()
        await store.dispose()
        crashes.raise_if_crashed()

    app = FastStream(
        broker,
        logger=logging.getLogger("aiguillage.app"),
        lifespan=lifespan,
        specification=AsyncAPI(title="aiguillage router", version=SERVICE_VERSION),
    )

    @app.on_shutdown
    async def publish_pending() -> None:
        # before the broker stops: what was routed so far is published now, not at next start
        if deps.service is not None:
            await deps.service.drain()

    return app

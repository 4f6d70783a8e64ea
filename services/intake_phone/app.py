"""The intake_phone app: ``aiguillage run intake-phone`` (webhook server + raw topic)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from faststream import FastStream
from faststream.specification import AsyncAPI

from schemas import DeadLetter, IntakeItem
from schemas.topics import DEAD_LETTERS, INTAKE_ITEMS
from services.common.dlq import DeadLetterMiddleware, DeadLetterPublisher
from services.common.kafka import build_broker
from services.common.lifecycle import endpoints
from services.common.logging import configure_logging
from services.common.metrics import metrics
from services.common.outbox import document_outbox_topics
from services.common.version import SERVICE_VERSION
from services.intake_phone.dead_letters import SERVICE
from services.intake_phone.handlers import PhoneDeps, build_router
from services.intake_phone.metrics import PhoneMetrics
from services.intake_phone.runtime import PhoneRuntime
from services.intake_phone.settings import IntakePhoneSettings

__all__ = ["create_app"]


def create_app(settings: IntakePhoneSettings | None = None) -> FastStream:
    """Wire intake_phone: broker, DLQ, raw-topic subscriber, store, webhook server, sweeper."""
    settings = settings or IntakePhoneSettings()
    configure_logging(settings.log_level, settings.log_format)
    deps = PhoneDeps()
    broker = build_broker(settings, client_id="aiguillage-intake-phone")
    dead_letters = DeadLetterPublisher(broker, SERVICE)
    broker.add_middleware(DeadLetterMiddleware.bind(dead_letters))
    document_outbox_topics(
        broker,
        SERVICE,
        {
            INTAKE_ITEMS: (IntakeItem, "One IntakeItem per handled call, keyed by call (4.1)."),
            DEAD_LETTERS: (DeadLetter, "Payloads refused, webhook or raw topic, with the reason."),
        },
    )
    broker.include_router(build_router(settings, deps, dead_letters))
    phone_metrics = PhoneMetrics()
    runtime = PhoneRuntime(settings, broker, phone_metrics, on_crash=lambda: app.exit())
    metrics.include(phone_metrics.registry)

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        try:
            deps.service = await runtime.open()
            async with endpoints(settings, "intake-phone", broker, None):
                yield
        finally:
            await runtime.close()
        runtime.crashes.raise_if_crashed()

    app = FastStream(
        broker,
        logger=logging.getLogger("aiguillage.app"),
        lifespan=lifespan,
        specification=AsyncAPI(title="aiguillage intake-phone", version=SERVICE_VERSION),
    )
    app.after_startup(runtime.start_background)
    app.on_shutdown(runtime.stop_background)
    return app

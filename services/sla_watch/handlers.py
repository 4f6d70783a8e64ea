"""sla_watch's subscriber: the dossier events, consumed by batches of records.

Most of what this consumer reads back is sla_watch's own events (one per
holding mail sent), skipped from memory; reading them one per call cost a
handler round and an offset commit each. Records are read by batches, each
event still folded in its own transaction (idempotent by event id), so a
redelivered batch changes nothing. A record that does not validate, or an
event the deadline rules cannot fold, is dead-lettered with its reason on its
own, and the rest of the batch goes on.
"""

from __future__ import annotations

from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError

from schemas.dossiers import DossierEventAdapter
from schemas.topics import DOSSIER_EVENTS
from services.common.dlq import DeadLetterPublisher, describe_validation_error
from services.common.kafka import consumer_options
from services.common.logging import get_logger
from services.common.slot import ServiceSlot
from services.sla_watch.errors import UnprocessableDossier
from services.sla_watch.service import SlaWatchService
from services.sla_watch.settings import SlaWatchSettings

__all__ = ["SlaDeps", "build_router"]

log = get_logger(__name__)


class SlaDeps(ServiceSlot[SlaWatchService]):
    """Long-lived resources, built in the app's lifespan and used by the handlers."""

    def __init__(
        self,
        service: SlaWatchService | None = None,
        dead_letters: DeadLetterPublisher | None = None,
    ) -> None:
        super().__init__("sla_watch", service)
        self.dead_letters = dead_letters

    async def record_all(self, message: KafkaMessage) -> None:
        """Fold each record of a batch in order; dead-letter the bad ones (4.12, DLQ rule)."""
        raw = message.raw_message
        for record in raw if isinstance(raw, tuple | list) else (raw,):
            try:
                event = DossierEventAdapter.validate_json(record.value or b"")
                outcome = await self.require().record(event)
            except ValidationError as error:
                await self._dead_letter(record, *describe_validation_error(error))
                continue
            except UnprocessableDossier as error:
                await self._dead_letter(record, error.reason_code, error.reason)
                continue
            log.info(
                "dossier_event.recorded",
                event_id=event.event_id,
                event_type=event.type,
                dossier_id=outcome.dossier_id,
                outcome=outcome.outcome,
                actions=list(outcome.actions),
            )

    async def _dead_letter(self, record: object, code: str, reason: str) -> None:
        if self.dead_letters is None:
            raise RuntimeError("sla_watch dead letters used before the app started")
        await self.dead_letters.publish_record(record, code, reason)


def build_router(settings: SlaWatchSettings, deps: SlaDeps) -> KafkaRouter:
    """Subscribers of sla_watch: the dossier events (4.8, 4.12, 4.13)."""
    router = KafkaRouter()

    @router.subscriber(
        DOSSIER_EVENTS,
        batch=True,
        max_records=settings.events_batch_size,
        batch_timeout_ms=settings.events_batch_timeout_ms,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="sla-watch/dossier-events",
        description="Fold dossier events into response deadlines; act on what is due (4.12). "
        "Batches of records, one transaction per event; bad records go to the DLQ one by one.",
        **consumer_options(settings, settings.group_id),
    )
    async def on_dossier_events(message: KafkaMessage) -> None:
        await deps.record_all(message)

    return router

"""sla_watch's subscriber: one small ``on_<event>`` function for the dossier events."""

from __future__ import annotations

from faststream import AckPolicy
from faststream.kafka import KafkaRouter

from schemas.dossiers import DossierEvent
from schemas.topics import DOSSIER_EVENTS
from services.common.kafka import consumer_options
from services.common.logging import get_logger
from services.common.slot import ServiceSlot
from services.sla_watch.service import SlaWatchService
from services.sla_watch.settings import SlaWatchSettings

__all__ = ["SlaDeps", "build_router"]

log = get_logger(__name__)


class SlaDeps(ServiceSlot[SlaWatchService]):
    """Long-lived resources, built in the app's lifespan and used by the handlers."""

    def __init__(self, service: SlaWatchService | None = None) -> None:
        super().__init__("sla_watch", service)


def build_router(settings: SlaWatchSettings, deps: SlaDeps) -> KafkaRouter:
    """Subscribers of sla_watch: the dossier events (4.8, 4.12, 4.13)."""
    router = KafkaRouter()

    @router.subscriber(
        DOSSIER_EVENTS,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="sla-watch/dossier-events",
        description="Fold dossier events into response deadlines; act on what is due (4.12).",
        **consumer_options(settings, settings.group_id),
    )
    async def on_dossier_event(event: DossierEvent) -> None:
        outcome = await deps.require().record(event)
        log.info(
            "dossier_event.recorded",
            event_id=event.event_id,
            event_type=event.type,
            dossier_id=outcome.dossier_id,
            outcome=outcome.outcome,
            actions=list(outcome.actions),
        )

    return router

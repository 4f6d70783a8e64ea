"""The router's subscribers: one small ``on_<event>`` function per topic."""

from __future__ import annotations

from dataclasses import dataclass, field

from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from schemas import CustomerRecord, IntakeItem
from schemas.dossiers import DossierCommand
from schemas.topics import CUSTOMERS_DIRECTORY, DOSSIER_COMMANDS, INTAKE_ITEMS
from services.common.kafka import consumer_options
from services.common.logging import get_logger
from services.router.service import RouterService
from services.router.settings import RouterSettings

__all__ = ["RouterDeps", "build_router"]

log = get_logger(__name__)


@dataclass
class RouterDeps:
    """Long-lived resources, built in the app's lifespan and used by the handlers."""

    service: RouterService | None = field(default=None)

    def require(self) -> RouterService:
        """The service, or a clear error when a message arrives before start-up finished."""
        if self.service is None:
            raise RuntimeError("router service used before the app started")
        return self.service


def build_router(settings: RouterSettings, deps: RouterDeps) -> KafkaRouter:
    """Subscribers of the router: intake items and dossier commands."""
    router = KafkaRouter()

    @router.subscriber(
        INTAKE_ITEMS,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="router/intake-items",
        description="Qualify, identify, attach to a dossier and dispatch tasks (4.6, 4.8).",
        **consumer_options(settings, settings.group_id),
    )
    async def on_intake_item(item: IntakeItem) -> None:
        for outcome in await deps.require().route([item]):
            log.info(
                "item.routed",
                item_id=outcome.item_id,
                outcome=outcome.outcome,
                dossier_id=outcome.dossier_id,
                reasons=list(outcome.reasons),
            )

    @router.subscriber(
        DOSSIER_COMMANDS,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="router/dossier-commands",
        description="Close, cancel, reply sent, field work, third party, requalify.",
        **consumer_options(settings, settings.commands_group_id),
    )
    async def on_dossier_command(command: DossierCommand) -> None:
        effects = await deps.require().apply(command)
        log.info(
            "command.applied",
            command_id=command.command_id,
            dossier_id=command.dossier_id,
            outcome=effects.outcome,
        )

    @router.subscriber(
        CUSTOMERS_DIRECTORY,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="router/customer-directory",
        description="CustomerRecord upserts from the customer-information system; "
        "a null value (tombstone) forgets the key's account.",
        **consumer_options(settings, settings.directory_group_id),
    )
    async def on_customer_record(message: KafkaMessage) -> None:
        record = CustomerRecord.model_validate_json(message.body) if message.body else None
        key = message.raw_message.key  # type: ignore[union-attr]
        outcome = await deps.require().update_directory(
            record, key.decode() if isinstance(key, bytes) else None
        )
        log.debug("directory.updated", outcome=outcome)

    return router

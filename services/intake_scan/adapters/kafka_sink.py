"""Items and dead letters to Kafka, each publish awaited until the broker acknowledged it.

Nothing is lost: the batch runner archives a letter only after this returns
(``acks="all"``, set by ``build_broker``).
"""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from schemas import IntakeItem
from schemas.topics import INTAKE_ITEMS
from services.common.dlq import DeadLetterPublisher

__all__ = ["SERVICE", "KafkaSink"]

SERVICE = "intake-scan"


class KafkaSink:
    """Publishes intake items keyed by ``IntakeItem.partition_key()`` and dead letters."""

    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker
        self._dead_letters = DeadLetterPublisher(broker, SERVICE)

    async def publish_item(self, item: IntakeItem) -> None:
        """Publish one item and wait for the acknowledgement (4.1: every request recorded)."""
        await self._broker.publish(
            item.model_dump_json().encode(),
            topic=INTAKE_ITEMS,
            key=item.partition_key().encode(),
        )

    async def dead_letter(
        self, *, reason_code: str, reason: str, original_ref: str, payload: bytes | None = None
    ) -> None:
        """Publish one dead letter and wait for the acknowledgement."""
        await self._dead_letters.publish(
            reason_code=reason_code, reason=reason, original_ref=original_ref, payload=payload
        )

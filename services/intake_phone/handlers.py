"""The raw telephony topic: platforms that already publish to Kafka feed the same normaliser.

A ``telephony.raw.v1`` message is one raw payload, byte for byte what the
platform would POST to its webhook. Its platform (``generic``, ``ringover``,
``twilio``, ``asterisk``) is named by the ``platform`` header; without that
header, by the message key, ``<platform>`` or ``<platform>:<anything>``
(``ringover:8461026573912345678``). The record's timestamp stands in for an
event time the payload lacks. A payload no adapter can read, or with no
known platform, is dead-lettered with its reason and acked; a store outage
that outlasts the retry leaves the message unacked (redelivered, harmless).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from schemas.topics import TELEPHONY_RAW
from services.common.kafka import consumer_options
from services.common.logging import get_logger
from services.common.slot import ServiceSlot
from services.intake_phone.domain import PayloadRejected
from services.intake_phone.errors import RejectedTelephonyPayload
from services.intake_phone.service import PhoneService
from services.intake_phone.settings import IntakePhoneSettings

__all__ = ["PLATFORM_HEADER", "PhoneDeps", "build_router", "platform_of"]

PLATFORM_HEADER = "platform"
log = get_logger(__name__)


class PhoneDeps(ServiceSlot[PhoneService]):
    """Long-lived resources, built in the app's lifespan and used by the handlers."""

    def __init__(self, service: PhoneService | None = None) -> None:
        super().__init__("intake_phone", service)


def platform_of(headers: Mapping[str, object], key: bytes | None) -> str:
    """The platform of a raw message: its ``platform`` header, else its key's first part."""
    value = headers.get(PLATFORM_HEADER)
    if isinstance(value, str) and value.strip():
        return value.strip().lower()
    if key:
        return key.decode("utf-8", "replace").split(":", 1)[0].strip().lower()
    raise RejectedTelephonyPayload("unknown_platform", "no platform header and no message key")


def record_time(timestamp_ms: int | None) -> dt.datetime:
    """The Kafka record timestamp as an aware UTC datetime (now when the record has none)."""
    if timestamp_ms is None or timestamp_ms <= 0:
        return dt.datetime.now(dt.UTC)
    return dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC)


def build_router(settings: IntakePhoneSettings, deps: PhoneDeps) -> KafkaRouter:
    """The subscriber of ``telephony.raw.v1``."""
    router = KafkaRouter()

    @router.subscriber(
        TELEPHONY_RAW,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="intake-phone/telephony-raw",
        description="Raw CTI payloads (platform header or key) folded into calls (5.1.1).",
        **consumer_options(settings, settings.group_id),
    )
    async def on_telephony_raw(message: KafkaMessage) -> None:
        record: ConsumerRecord = message.raw_message
        platform = platform_of(message.headers, record.key)
        try:
            outcome = await deps.require().ingest_payload(
                platform, message.body, received_at=record_time(record.timestamp)
            )
        except PayloadRejected as rejected:
            raise RejectedTelephonyPayload.from_rejection(rejected) from rejected
        log.info(
            "telephony.recorded",
            platform=platform,
            topic=TELEPHONY_RAW,
            calls=outcome.calls,
            events=outcome.folded,
            emitted=len(outcome.emitted),
        )

    return router

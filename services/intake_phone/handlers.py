"""The raw telephony topic: platforms that already publish to Kafka feed the same normaliser.

A ``telephony.raw.v1`` message is one raw payload, byte for byte what the
platform would POST to its webhook. Its platform (``generic``, ``ringover``,
``twilio``, ``asterisk``) is named by the ``platform`` header; without that
header, by the message key, ``<platform>`` or ``<platform>:<anything>``
(``ringover:8461026573912345678``). The record's timestamp stands in for an
event time the payload lacks. A payload no adapter can read, or with no
known platform, is dead-lettered with its reason (and its topic, partition,
offset) and acked; a store outage that outlasts the retry leaves the
message unacked (redelivered, harmless).

The subscriber takes the records in batches (up to ``raw_batch_max``): every
readable payload of a batch is submitted at once, so they are folded in one
group-commit transaction (:mod:`.group_commit`) instead of one each. The
batch is acked when all of them are committed; a failure redelivers the
whole batch, which is harmless (events fold once by their dedupe key).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping

from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from schemas.topics import TELEPHONY_RAW
from services.common.dlq import DeadLetterPublisher
from services.common.kafka import consumer_options
from services.common.logging import get_logger
from services.common.slot import ServiceSlot
from services.intake_phone.domain import CallEvent, PayloadRejected, normalise
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


def _headers(record: ConsumerRecord) -> dict[str, object]:
    return {name: value.decode("utf-8", "replace") for name, value in record.headers or ()}


def build_router(
    settings: IntakePhoneSettings, deps: PhoneDeps, dead_letters: DeadLetterPublisher
) -> KafkaRouter:
    """The subscriber of ``telephony.raw.v1`` (batches of records, dead letters per record)."""
    router = KafkaRouter()

    @router.subscriber(
        TELEPHONY_RAW,
        batch=True,
        max_records=settings.raw_batch_max,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="intake-phone/telephony-raw",
        description="Raw CTI payloads (platform header or key) folded into calls (5.1.1).",
        **consumer_options(settings, settings.group_id),
    )
    async def on_telephony_raw(message: KafkaMessage) -> None:
        service = deps.require()
        raw = message.raw_message
        # A tuple of records from aiokafka (a list from FastStream's test broker).
        records: list[ConsumerRecord] = list(raw) if isinstance(raw, tuple | list) else [raw]
        readable = await _readable(service, records, dead_letters)
        outcomes = await asyncio.gather(*(service.ingest(events) for _, events in readable))
        log.info(
            "telephony.recorded",
            topic=TELEPHONY_RAW,
            records=len(records),
            rejected=len(records) - len(readable),
            calls=sum(o.calls for o in outcomes),
            events=sum(o.folded for o in outcomes),
            emitted=sum(len(o.emitted) for o in outcomes),
        )

    return router


async def _readable(
    service: PhoneService, records: list[ConsumerRecord], dead_letters: DeadLetterPublisher
) -> list[tuple[str, tuple[CallEvent, ...]]]:
    """(platform, events) of each readable record; the others are dead-lettered."""
    readable: list[tuple[str, tuple[CallEvent, ...]]] = []
    for record in records:
        try:
            platform = platform_of(_headers(record), record.key)
            readable.append((platform, normalise_record(service, platform, record)))
        except RejectedTelephonyPayload as rejected:
            await dead_letters.publish_record(record, rejected.reason_code, rejected.reason)
    return readable


def normalise_record(
    service: PhoneService, platform: str, record: ConsumerRecord
) -> tuple[CallEvent, ...]:
    """The call events of one raw record; ``RejectedTelephonyPayload`` when unreadable."""
    try:
        received_at = record_time(record.timestamp)
        normalised = normalise(platform, record.value or b"", received_at=received_at)
    except PayloadRejected as rejected:
        raise RejectedTelephonyPayload.from_rejection(rejected) from rejected
    service.count_ignored(platform, normalised)
    return normalised.events

"""Dead letters: bad input is published to the DLQ with its reason, never retried forever.

``DeadLetterMiddleware`` wraps every subscriber of a service: a message that
fails contract validation (including an unknown schema major version) or that a
handler rejects with a ``PoisonMessage`` is published as a ``DeadLetter`` and
acknowledged, so the partition never stalls. Any other exception propagates and
the ack policy redelivers the message.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from typing import Any

from faststream import BaseMiddleware
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from pydantic import ValidationError

from schemas import DeadLetter
from schemas.topics import DEAD_LETTERS
from services.common.logging import get_logger
from services.common.metrics import metrics
from services.common.version import SERVICE_VERSION

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "DeadLetterMiddleware",
    "DeadLetterPublisher",
    "PoisonMessage",
    "build_dead_letter",
    "describe_validation_error",
    "printable",
]

MAX_PAYLOAD_BYTES = 512 * 1024
log = get_logger(__name__)


class PoisonMessage(Exception):
    """A message no retry can fix; it goes to the DLQ with ``reason_code`` and ``reason``."""

    def __init__(self, reason_code: str, reason: str) -> None:
        super().__init__(f"{reason_code}: {reason}")
        self.reason_code = reason_code
        self.reason = reason


def describe_validation_error(error: ValidationError) -> tuple[str, str]:
    """A stable reason code and a readable reason (field paths, no input values)."""
    problems = [
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in error.errors()
    ]
    text = "; ".join(problems)[:2000]
    code = "unsupported_schema_version" if "schema major version" in text else "invalid_contract"
    return code, text


def printable(text: str) -> str:
    """``text`` as valid Unicode: undecodable bytes (lone surrogates) shown as ``\\udcXX``."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def build_dead_letter(
    service: str,
    *,
    reason_code: str,
    reason: str,
    original_ref: str,
    payload: bytes | None = None,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    original_topic: str | None = None,
    original_partition: int | None = None,
    original_offset: int | None = None,
    original_key: str | None = None,
    now: dt.datetime | None = None,
) -> DeadLetter:
    """A dead letter with a deterministic id (a retried publication is a duplicate).

    Texts are made valid Unicode first: a reason or a reference may quote what bad
    input is made of (a file name in Latin-1 from a Windows uploader reaches Python
    with lone surrogates), and a dead letter that cannot be built would stop the
    service on the very input it must set aside.
    """
    reason, original_ref = printable(reason), printable(original_ref)
    original_key = printable(original_key) if original_key is not None else None
    return DeadLetter(
        dead_letter_id=f"{service}:{original_ref}",
        reason_code=reason_code,
        reason=reason,
        original_topic=original_topic,
        original_partition=original_partition,
        original_offset=original_offset,
        original_key=original_key,
        original_ref=original_ref,
        payload_b64=base64.b64encode(payload[:max_payload_bytes]).decode() if payload else None,
        payload_truncated=payload is not None and len(payload) > max_payload_bytes,
        service=service,
        service_version=SERVICE_VERSION,
        occurred_at=now or dt.datetime.now(dt.UTC),
    )


class DeadLetterPublisher:
    """Publishes ``DeadLetter`` records on the DLQ topic for one service."""

    def __init__(self, broker: KafkaBroker, service: str, topic: str = DEAD_LETTERS) -> None:
        self._broker = broker
        self.service = service
        self.topic = topic

    async def publish(
        self,
        *,
        reason_code: str,
        reason: str,
        original_ref: str,
        payload: bytes | None = None,
        original_topic: str | None = None,
        original_partition: int | None = None,
        original_offset: int | None = None,
        original_key: str | None = None,
        now: dt.datetime | None = None,
    ) -> DeadLetter:
        """Publish one dead letter (deterministic id: a retried publish is a duplicate)."""
        letter = build_dead_letter(
            self.service,
            reason_code=reason_code,
            reason=reason,
            original_ref=original_ref,
            payload=payload,
            original_topic=original_topic,
            original_partition=original_partition,
            original_offset=original_offset,
            original_key=original_key,
            now=now,
        )
        await self._broker.publish(
            letter.model_dump_json().encode(), topic=self.topic, key=original_ref.encode()
        )
        metrics.dead_letters.labels(service=self.service, reason_code=reason_code).inc()
        log.warning(
            "message.dead_lettered",
            reason_code=reason_code,
            original_ref=original_ref,
            service=self.service,
        )
        return letter

    async def publish_from_message(
        self, message: StreamMessage[Any], reason_code: str, reason: str
    ) -> DeadLetter:
        """Dead-letter a consumed Kafka message, keeping its coordinates and bytes."""
        return await self.publish_record(message.raw_message, reason_code, reason)

    async def publish_record(self, record: Any, reason_code: str, reason: str) -> DeadLetter:
        """Dead-letter one consumed record (``ConsumerRecord``): coordinates, key and bytes."""
        topic = getattr(record, "topic", None)
        partition = getattr(record, "partition", None)
        offset = getattr(record, "offset", None)
        raw_key = getattr(record, "key", None)
        key = raw_key.decode("utf-8", "replace") if isinstance(raw_key, bytes) else None
        return await self.publish(
            reason_code=reason_code,
            reason=reason,
            original_ref=f"{topic}/{partition}@{offset}",
            payload=record.value if isinstance(getattr(record, "value", None), bytes) else None,
            original_topic=topic,
            original_partition=partition,
            original_offset=offset,
            original_key=key,
        )


class DeadLetterMiddleware(BaseMiddleware):
    """Subscriber middleware: contract violations and poison messages go to the DLQ."""

    publisher: DeadLetterPublisher | None = None

    async def consume_scope(
        self, call_next: Callable[[StreamMessage[Any]], Any], msg: StreamMessage[Any]
    ) -> Any:
        """Run the handler; dead-letter the message when it is bad input, then ack it."""
        try:
            return await call_next(msg)
        except ValidationError as error:
            code, reason = describe_validation_error(error)
        except PoisonMessage as error:
            code, reason = error.reason_code, error.reason
        if self.publisher is None:
            raise RuntimeError("DeadLetterMiddleware used before bind()")
        await self.publisher.publish_from_message(msg, code, reason)
        return None

    @classmethod
    def bind(cls, publisher: DeadLetterPublisher) -> type[DeadLetterMiddleware]:
        """A middleware class bound to one service's DLQ publisher."""
        return type("BoundDeadLetterMiddleware", (cls,), {"publisher": publisher})

"""Kafka wiring shared by every service: the broker factory and topic creation.

Topics are created with their partition counts before the first publish: a
broker that auto-creates topics (tansu does, with 4 partitions) would
otherwise pick the count for us.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import ConsumerStoppedError, KafkaError, TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from schemas.topics import ALL_TOPICS
from services.common.logging import get_logger
from services.common.settings import ServiceSettings

__all__ = ["build_broker", "consumer_options", "ensure_topics", "security_for", "top_up_batch"]

log = get_logger(__name__)


MAX_BATCH_BYTES = 512 * 1024


def security_for(settings: ServiceSettings) -> BaseSecurity | None:
    """FastStream security object for the configured protocol (TLS and/or SASL)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    import ssl

    use_ssl = protocol in {"SSL", "SASL_SSL"}
    context = ssl.create_default_context() if use_ssl else None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    username = settings.kafka_sasl_username or ""
    secret = settings.kafka_sasl_password
    password = secret.get_secret_value() if secret else ""
    sasl: dict[str, type[BaseSecurity]] = {
        "PLAIN": SASLPlaintext,
        "SCRAM-SHA-256": SASLScram256,
        "SCRAM-SHA-512": SASLScram512,
    }
    factory: Any = sasl[settings.kafka_sasl_mechanism]
    security: BaseSecurity = factory(
        username=username, password=password, ssl_context=context, use_ssl=use_ssl
    )
    return security


def build_broker(
    settings: ServiceSettings, *, client_id: str, middlewares: Sequence[Any] = ()
) -> KafkaBroker:
    """Build (never at import time) the FastStream Kafka broker of a service."""
    if not settings.kafka_bootstrap_servers:
        raise ValueError("KAFKA_BOOTSTRAP_SERVERS is not set (use `aiguillage up` for embedded)")
    return KafkaBroker(
        settings.kafka_bootstrap_servers.split(","),
        client_id=client_id,
        allow_auto_create_topics=False,
        acks="all",
        max_request_size=settings.kafka_max_request_size,
        # A record batch of many small records stays well under any broker's limit (a
        # default Kafka takes 1 MiB): a broker refusing a whole batch sends the outbox
        # relay row by row. A single larger record still goes, alone in its batch.
        max_batch_size=min(settings.kafka_max_request_size, MAX_BATCH_BYTES),
        linger_ms=2,
        security=security_for(settings),
        middlewares=tuple(middlewares),
        logger=logging.getLogger("aiguillage.kafka"),
        log_level=logging.DEBUG,
        graceful_timeout=15.0,
    )


def consumer_options(settings: ServiceSettings, group_id: str) -> dict[str, Any]:
    """Subscriber keyword arguments every consumer group of the pipeline uses."""
    return {
        "group_id": group_id,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": settings.kafka_heartbeat_interval_ms,
        "max_partition_fetch_bytes": settings.kafka_max_request_size,
        "fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms,
    }


async def top_up_batch(
    message: KafkaMessage, *, max_records: int, wait_ms: int
) -> tuple[ConsumerRecord[Any, Any], ...]:
    """A batch's records, plus those fetched meanwhile (waiting at most ``wait_ms`` for them).

    aiokafka sends the next fetch as soon as a batch is taken and keeps what it
    brings until the next ``getmany``: on a busy topic a record produced while
    a batch is handled waits for that batch, then in the buffer for the whole
    next one. Taking what the fetch in flight brings (a few ms) bounds the wait
    to about one batch. The records taken become part of the message: its ack
    commits them, and a failed batch rewinds them too (FastStream's nack seeks
    each partition back to the message's earliest record). A full batch, a
    consumer FastStream's test broker does not have, or a stopping consumer
    leave the batch as it is.
    """
    raw = message.raw_message
    records = tuple(raw) if isinstance(raw, tuple | list) else (raw,)
    consumer = getattr(message, "consumer", None)
    room = max_records - len(records)
    if wait_ms <= 0 or room <= 0 or not isinstance(consumer, AIOKafkaConsumer):
        return records
    try:
        fetched = await consumer.getmany(timeout_ms=wait_ms, max_records=room)
    except (KafkaError, ConsumerStoppedError) as error:
        log.warning("kafka.top_up_skipped", error=type(error).__name__)
        return records
    if fetched:
        records = (*records, *chain.from_iterable(fetched.values()))
        message.raw_message = records
    return records


async def ensure_topics(settings: ServiceSettings, topics: Iterable[str] = ALL_TOPICS) -> list[str]:
    """Create the missing topics with their configured partition counts; return those created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
        client_id="aiguillage-admin",
        **_admin_security(settings),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=topic,
                num_partitions=settings.partitions_for(topic),
                replication_factor=settings.kafka_replication_factor,
            )
            for topic in dict.fromkeys(topics)
            if topic not in existing
        ]
        created: list[str] = []
        for new_topic in missing:
            try:
                await admin.create_topics([new_topic])
                created.append(new_topic.name)
            except TopicAlreadyExistsError:
                continue
        if created:
            log.info("kafka.topics_created", topics=created)
        return created
    finally:
        await admin.close()


def _admin_security(settings: ServiceSettings) -> dict[str, Any]:
    security = security_for(settings)
    if security is None:
        return {}
    from faststream.kafka.security import parse_security

    options: dict[str, Any] = parse_security(security)
    return options

"""The ``telephony.raw.v1`` subscriber on FastStream's in-memory broker + the real store."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import pytest
import sqlalchemy as sa
from faststream.kafka import KafkaBroker, TestKafkaBroker

from schemas import DeadLetter, IntakeItem
from schemas.topics import DEAD_LETTERS, INTAKE_ITEMS, TELEPHONY_RAW
from services.common.dlq import DeadLetterMiddleware, DeadLetterPublisher
from services.common.kafka import build_broker
from services.common.store import Store
from services.intake_phone.handlers import PhoneDeps, build_router, platform_of
from services.intake_phone.service import PhoneService
from services.intake_phone.settings import IntakePhoneSettings
from services.intake_phone.testing import outbox_payloads, sample


@pytest.fixture
async def raw_broker(
    store: Store, make_service: Callable[..., PhoneService]
) -> AsyncIterator[tuple[KafkaBroker, list[DeadLetter]]]:
    settings = IntakePhoneSettings(kafka_bootstrap_servers="unused:9092")
    broker = build_broker(settings, client_id="test-intake-phone")
    dead_letters = DeadLetterPublisher(broker, "intake-phone")
    broker.add_middleware(DeadLetterMiddleware.bind(dead_letters))
    broker.include_router(build_router(settings, PhoneDeps(service=make_service()), dead_letters))
    letters: list[DeadLetter] = []

    @broker.subscriber(DEAD_LETTERS, group_id="test-dlq")
    async def on_dead_letter(letter: DeadLetter) -> None:
        letters.append(letter)

    async with TestKafkaBroker(broker) as test_broker:
        yield test_broker, letters


async def test_phone_raw_payloads_by_header_or_key_become_items(
    raw_broker: tuple[KafkaBroker, list[DeadLetter]], store: Store
) -> None:
    broker, letters = raw_broker
    await broker.publish(
        sample("asterisk_answered_call.txt"), TELEPHONY_RAW, headers={"platform": "asterisk"}
    )
    await broker.publish(sample("generic_call.json"), TELEPHONY_RAW, key=b"generic:3f6c2a9e")
    items = [IntakeItem.model_validate_json(p) for p in await outbox_payloads(store, INTAKE_ITEMS)]
    assert sorted(i.item_id for i in items) == [
        "phone:asterisk:1736870400.84",
        "phone:generic:3f6c2a9e-1b7d-4c05-8e2f-9a4d6b1c7e30",
    ]
    assert letters == []


@pytest.mark.parametrize(
    ("body", "headers", "key", "reason_code"),
    [
        pytest.param(b"not json", {"platform": "generic"}, None, "invalid_json", id="bad-json"),
        pytest.param(b"{}", {}, None, "unknown_platform", id="no-platform"),
        pytest.param(b"{}", {"platform": "skype"}, None, "unknown_platform", id="unknown-platform"),
        pytest.param(b"CallStatus=ringing", {}, b"twilio", "missing_call_id", id="by-key"),
    ],
)
async def test_phone_unreadable_raw_payloads_are_dead_lettered(
    raw_broker: tuple[KafkaBroker, list[DeadLetter]],
    store: Store,
    body: bytes,
    headers: dict[str, str],
    key: bytes | None,
    reason_code: str,
) -> None:
    broker, letters = raw_broker
    await broker.publish(body, TELEPHONY_RAW, headers=headers, key=key)
    assert [(letter.reason_code, letter.original_topic) for letter in letters] == [
        (reason_code, TELEPHONY_RAW)
    ]
    assert await outbox_payloads(store, INTAKE_ITEMS) == []


def test_phone_platform_header_wins_over_key() -> None:
    assert platform_of({"platform": " Ringover "}, b"generic:1") == "ringover"
    assert platform_of({}, b"twilio:CA1") == "twilio"


async def test_phone_a_batch_of_raw_records_is_folded_together_and_bad_ones_dead_lettered(
    raw_broker: tuple[KafkaBroker, list[DeadLetter]], store: Store
) -> None:
    broker, letters = raw_broker
    events = json.loads(sample("generic_call.json"))
    bodies = [json.dumps(event).encode() for event in events]
    begun: list[object] = []

    def count(connection: object) -> None:
        begun.append(connection)

    sa.event.listen(store.engine.sync_engine, "begin", count)
    try:
        await broker.publish_batch(
            *bodies[:2],
            b"not json",
            *bodies[2:],
            topic=TELEPHONY_RAW,
            headers={"platform": "generic"},
        )
    finally:
        sa.event.remove(store.engine.sync_engine, "begin", count)
    assert len(begun) == 1  # the readable records of the batch: one transaction
    items = [IntakeItem.model_validate_json(p) for p in await outbox_payloads(store, INTAKE_ITEMS)]
    assert [i.item_id for i in items] == ["phone:generic:3f6c2a9e-1b7d-4c05-8e2f-9a4d6b1c7e30"]
    assert [(letter.reason_code, letter.original_topic) for letter in letters] == [
        ("invalid_json", TELEPHONY_RAW)
    ]

"""intake_phone as an OS process: uvicorn on a loopback port, real HTTP, tansu, SQLite."""

from __future__ import annotations

import json

import pytest
from aiokafka import AIOKafkaProducer

from schemas import DeadLetter, IntakeItem
from schemas.topics import DEAD_LETTERS, INTAKE_ITEMS, TELEPHONY_RAW
from services.common.testing import eventually, read_topic
from services.intake_phone.testing import (
    PhoneProcess,
    sample,
    sample_calls,
    shuffled_generic_call,
    signed_headers,
)

pytestmark = [pytest.mark.kafka]


async def _items(kafka: str, expect: int) -> list[IntakeItem]:
    values = await read_topic(kafka, INTAKE_ITEMS, expect=expect, max_s=20)
    return [IntakeItem.model_validate_json(v) for v in values]


async def test_phone_shuffled_duplicated_events_yield_one_item_and_refused_requests_nothing(
    phone: PhoneProcess, kafka: str
) -> None:
    for body in shuffled_generic_call("call-accepted", seed=1):
        assert (await phone.post("generic", body)).status_code == 200
    for body in shuffled_generic_call("call-bad-signature", seed=2):
        forged = signed_headers("not-the-secret", body)
        response = await phone.client.post("/webhooks/generic", content=body, headers=forged)
        assert (response.status_code, response.content) == (401, b"")
    whole = json.loads(sample("generic_call.json"))
    for event in whole:
        event["call_id"] = "call-oversized"
    whole[-1]["wrap_up"]["note"] = "Relevé illisible. " * 1000  # a valid call, too big
    oversized = json.dumps(whole).encode()
    assert len(oversized) > 16384
    assert (await phone.post("generic", oversized)).status_code == 413

    values = await read_topic(kafka, INTAKE_ITEMS, quiet_s=4, max_s=20)
    assert [IntakeItem.model_validate_json(v).item_id for v in values] == [
        "phone:generic:call-accepted"
    ]
    item = IntakeItem.model_validate_json(values[0])
    assert item.call is not None
    assert item.call.ivr_path == ("1", "3")
    assert (
        await phone.metric(
            'aiguillage_phone_webhook_requests_total{platform="generic",status="401"}'
        )
        == 9
    )


async def test_phone_every_adapter_sample_end_to_end(phone: PhoneProcess, kafka: str) -> None:
    calls = sample_calls()
    for call in calls:
        for name in call.payloads:
            response = await phone.post(call.platform, sample(name))
            assert response.status_code == 200, (name, response.text)
    routed = [call for call in calls if call.routed]
    items = {i.item_id: i for i in await _items(kafka, len(routed))}
    assert sorted(items) == sorted(call.item_id for call in routed)

    ringover = items["phone:ringover:8461026573912345678"]  # a call id above 2**53, exact
    assert ringover.call is not None
    assert (ringover.call.wrap_up_code, ringover.sender.mobile) == (
        "FACTURE_CONTESTATION",
        "+33612345678",
    )
    assert items["phone:ringover:8461026573912400777"].subject == "Message vocal"
    twilio = items["phone:twilio:CA7d3e9b1f2a4c6e8d0b5f7a9c1e3d5b7f"].call
    assert twilio is not None
    assert (twilio.agent, twilio.ivr_path, twilio.duration_s) == ("agent-0427", ("2",), 318)
    asterisk = items["phone:asterisk:1736870400.84"].call
    assert asterisk is not None
    assert (asterisk.wrap_up_code, asterisk.agent) == ("COUPURE_EAU", "agent-1001")

    async def all_counted() -> bool:
        counted = await phone.metric('aiguillage_phone_calls_total{platform="')
        return counted == len(calls)

    await eventually(all_counted, timeout=10)
    not_routed = await phone.metric(
        'aiguillage_phone_calls_total{platform="asterisk",reason="abandoned_in_ivr",routed="false"}'
    )
    assert not_routed == 1
    ignored = await phone.metric("aiguillage_phone_ignored_total{")
    assert ignored == 6  # generic unknown type, ringover record + sms, twilio status, AMI x2


async def test_phone_raw_topic_and_malformed_webhook_feed_the_same_pipeline(
    phone: PhoneProcess, kafka: str
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            TELEPHONY_RAW,
            sample("asterisk_answered_call.txt"),
            headers=[("platform", b"asterisk")],
        )
        for name in (
            "twilio_ringing.txt",
            "twilio_agent_leg_in_progress.txt",
            "twilio_completed.txt",
        ):
            await producer.send_and_wait(TELEPHONY_RAW, sample(name), key=b"twilio:CA7d3e9b")
        await producer.send_and_wait(TELEPHONY_RAW, b"not json", key=b"generic")
    finally:
        await producer.stop()
    malformed = await phone.post("ringover", b'{"resource": "call"}')
    assert (malformed.status_code, malformed.json()["error"]) == (400, "missing_field")

    items = await _items(kafka, 2)
    assert sorted(i.item_id for i in items) == [
        "phone:asterisk:1736870400.84",
        "phone:twilio:CA7d3e9b1f2a4c6e8d0b5f7a9c1e3d5b7f",
    ]
    letters = [
        DeadLetter.model_validate_json(v) for v in await read_topic(kafka, DEAD_LETTERS, expect=2)
    ]
    assert sorted((d.reason_code, d.original_topic or "webhook") for d in letters) == [
        ("invalid_json", TELEPHONY_RAW),
        ("missing_field", "webhook"),
    ]

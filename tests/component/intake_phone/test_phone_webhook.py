"""The webhook app over a real SQLite store (httpx in-process): auth, limits, DLQ, 503."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from schemas import DeadLetter
from schemas.topics import DEAD_LETTERS
from services.common.store import Store, create_store, migrate
from services.intake_phone.adapters.tables import phone_open_calls
from services.intake_phone.metrics import PhoneMetrics
from services.intake_phone.service import CallPolicy, PhoneService
from services.intake_phone.settings import IntakePhoneSettings
from services.intake_phone.testing import outbox_payloads, post_webhook, sample, signed_headers
from services.intake_phone.webhook import Webhooks

SECRET = "hmac-secret-for-tests"
TOKEN = "bearer-token-for-tests"
Client = Callable[..., AsyncIterator[httpx.AsyncClient]]


@pytest.fixture
async def sqlite_store(sqlite_url: str) -> AsyncIterator[Store]:
    store = create_store(sqlite_url)
    await migrate(store)
    yield store
    await store.dispose()


@pytest.fixture
async def webhooks(sqlite_store: Store) -> AsyncIterator[Webhooks]:
    settings = IntakePhoneSettings(
        kafka_bootstrap_servers="unused:9092",
        generic_hmac_secret=SecretStr(SECRET),
        ringover_bearer_token=SecretStr(TOKEN),
        max_body_bytes=4096,
        publish_timeout_s=0.5,
        max_inflight=2,
        settle_s=0,
    )
    metrics = PhoneMetrics()
    service = PhoneService(sqlite_store, CallPolicy.from_settings(settings), metrics, retry_max_s=5)
    hooks = Webhooks(settings, service, metrics)
    yield hooks
    await hooks.gate.drain(30)


@pytest.fixture
async def client(webhooks: Webhooks) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=webhooks.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://phone.test") as client:
        yield client


async def _open_calls(store: Store) -> int:
    async with store.engine.connect() as connection:
        count = await connection.scalar(sa.select(sa.func.count()).select_from(phone_open_calls))
    return int(count or 0)


BODY = sample("generic_hidden_caller_ended.json")


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-credentials"),
        pytest.param({"X-Aiguillage-Signature": "sha256=" + "0" * 64}, id="wrong-signature"),
        pytest.param(signed_headers(SECRET, BODY + b" "), id="signature-of-another-body"),
        pytest.param(signed_headers("other-secret", BODY), id="signature-with-another-secret"),
        pytest.param({b"X-Aiguillage-Signature": "sha256=é".encode("latin-1")}, id="latin-1"),
        pytest.param({"Authorization": f"Bearer {SECRET}"}, id="bearer-on-hmac-platform"),
    ],
)
async def test_phone_bad_credentials_get_401_without_detail(
    client: httpx.AsyncClient, sqlite_store: Store, headers: dict[str, str] | dict[bytes, bytes]
) -> None:
    response = await client.post("/webhooks/generic", content=BODY, headers=headers)
    assert (response.status_code, response.content) == (401, b"")
    assert await _open_calls(sqlite_store) == 0


async def test_phone_signed_and_bearer_requests_are_recorded(
    client: httpx.AsyncClient, sqlite_store: Store
) -> None:
    signed = await post_webhook(client, "generic", BODY, SECRET)
    assert signed.status_code == 200
    assert signed.json() == {"calls": 1, "events": 1, "duplicates": 0, "late": 0, "ignored": 0}
    again = await post_webhook(client, "generic", BODY, SECRET)
    assert again.json()["duplicates"] == 1
    ringover = sample("ringover_ringing.json")
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert (await client.post("/webhooks/ringover", content=ringover, headers=bearer)).is_success
    wrong = {"Authorization": "Bearer nope"}
    assert (
        await client.post("/webhooks/ringover", content=ringover, headers=wrong)
    ).status_code == 401
    twilio = sample("twilio_ringing.txt")  # no credentials configured for twilio: refused
    assert (await post_webhook(client, "twilio", twilio, SECRET)).status_code == 401
    assert await _open_calls(sqlite_store) == 2


async def test_phone_oversized_bodies_get_413_and_nothing_is_recorded(
    client: httpx.AsyncClient, sqlite_store: Store
) -> None:
    big = b"[" + b" " * 5000 + BODY + b"]"
    declared = await post_webhook(client, "generic", big, SECRET)
    assert (declared.status_code, declared.json()["error"]) == (413, "payload_too_large")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    streamed = await client.post(
        "/webhooks/generic", content=chunks(), headers=signed_headers(SECRET, b"")
    )
    assert streamed.status_code == 413
    assert await _open_calls(sqlite_store) == 0


async def test_phone_malformed_payload_gets_400_and_one_dead_letter(
    client: httpx.AsyncClient, sqlite_store: Store
) -> None:
    bad = b'{"version": 1, "type": "call.ended", "call_id": 1.5}'
    for _ in range(2):  # a platform retrying the same bad body
        response = await post_webhook(client, "generic", bad, SECRET)
        assert response.status_code == 400
        assert response.json()["error"] == "missing_field"
    [letter] = [
        DeadLetter.model_validate_json(p) for p in await outbox_payloads(sqlite_store, DEAD_LETTERS)
    ]
    assert (letter.reason_code, letter.service, letter.original_topic) == (
        "missing_field",
        "intake-phone",
        None,
    )


async def test_phone_unknown_event_types_are_counted_and_acknowledged(
    client: httpx.AsyncClient,
) -> None:
    response = await post_webhook(client, "generic", sample("generic_unknown_type.json"), SECRET)
    assert (response.status_code, response.json()["ignored"]) == (200, 1)
    assert (await client.post("/webhooks/skype", content=BODY)).status_code == 404
    metrics = (await client.get("/metrics")).text
    assert (
        'aiguillage_phone_ignored_total{platform="generic",reason="unsupported_event"} 1.0'
        in metrics
    )
    assert 'aiguillage_phone_webhook_requests_total{platform="unknown",status="404"}' in metrics
    assert (await client.get("/healthz")).json() == {"status": "ok", "inflight": 0}


async def test_phone_store_held_by_another_writer_gives_503_then_the_retry_is_a_duplicate(
    client: httpx.AsyncClient, sqlite_store: Store, sqlite_url: str, webhooks: Webhooks
) -> None:
    holder = sqlite3.connect(Path(sqlite_url.split("///", 1)[1]), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds SQLite's write lock
    try:
        started = time.monotonic()
        first = await post_webhook(client, "generic", BODY, SECRET)
        assert first.status_code == 503
        assert first.headers["Retry-After"] == "5"
        assert 0.4 < time.monotonic() - started < 2
        second = await post_webhook(client, "generic", sample("generic_call.json"), SECRET)
        assert second.status_code == 503
        started = time.monotonic()
        third = await post_webhook(client, "generic", BODY, SECRET)  # gate full: at once
        assert third.status_code == 503
        assert time.monotonic() - started < 0.3
    finally:
        holder.rollback()
        holder.close()
    await webhooks.gate.drain(30)  # the first two recordings go on and commit
    assert await _open_calls(sqlite_store) == 1  # the whole generic call was emitted
    retry = await post_webhook(client, "generic", BODY, SECRET)
    assert retry.json()["duplicates"] == 1
    await asyncio.sleep(0)

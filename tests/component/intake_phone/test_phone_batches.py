"""Group commit on the real store (SQLite and PostgreSQL): one transaction, same outcomes."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from schemas import IntakeItem
from schemas.topics import INTAKE_ITEMS
from services.common.store import Store
from services.common.store.tables import outbox
from services.intake_phone.adapters.tables import phone_emitted_calls, phone_open_calls
from services.intake_phone.domain import CallEvent, normalise
from services.intake_phone.metrics import PhoneMetrics
from services.intake_phone.service import CallPolicy, IngestOutcome, PhoneService
from services.intake_phone.settings import IntakePhoneSettings
from services.intake_phone.testing import Clock, outbox_payloads, post_webhook, sample
from services.intake_phone.webhook import Webhooks

Factory = Callable[..., PhoneService]
SECRET = "hmac-secret-for-tests"


def _events(call_id: str) -> list[CallEvent]:
    at = dt.datetime(2025, 1, 14, 13, 30, tzinfo=dt.UTC)
    events = normalise("generic", sample("generic_call.json"), received_at=at).events
    return [e.model_copy(update={"call_id": call_id}) for e in events]


def _payloads(call_id: str, seed: int) -> list[list[CallEvent]]:
    """The call's events one per payload, some repeated, shuffled."""
    events = _events(call_id)
    rng = random.Random(seed)
    payloads = [[e] for e in events] + [[rng.choice(events)] for _ in range(5)]
    rng.shuffle(payloads)
    return payloads


@contextmanager
def _transactions(store: Store) -> Iterator[list[int]]:
    """Count the transactions begun on the store while the block runs."""
    begun: list[int] = []

    def count(connection: Any) -> None:
        begun.append(1)

    sa.event.listen(store.engine.sync_engine, "begin", count)
    try:
        yield begun
    finally:
        sa.event.remove(store.engine.sync_engine, "begin", count)


@contextmanager
def _failing_writes(store: Store, table: str) -> Iterator[None]:
    """Every statement writing ``table`` fails (a non-transient store error) after it ran."""

    def fail(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO " + table.upper()):
            raise sa.exc.ProgrammingError(statement, None, Exception("refused"))

    sa.event.listen(store.engine.sync_engine, "after_cursor_execute", fail)
    try:
        yield
    finally:
        sa.event.remove(store.engine.sync_engine, "after_cursor_execute", fail)


async def _count(store: Store, table: sa.Table) -> int:
    async with store.engine.connect() as connection:
        return int(await connection.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


def _counts(outcome: IngestOutcome) -> tuple[int, int, int, int, int]:
    return (outcome.calls, outcome.folded, outcome.duplicates, outcome.late, len(outcome.emitted))


async def test_concurrent_payloads_of_one_call_fold_in_one_transaction_into_one_item(
    store: Store, make_service: Factory
) -> None:
    service = make_service()
    payloads = _payloads("5d1e6f2a-0b3c-4d5e-8f70-1a2b3c4d5e6f", seed=3)
    with _transactions(store) as begun:
        outcomes = await asyncio.gather(*(service.ingest(p) for p in payloads))
    assert len(begun) == 1  # every payload was queued before the writer ran: one batch
    [item] = [IntakeItem.model_validate_json(p) for p in await outbox_payloads(store, INTAKE_ITEMS)]
    assert item.item_id == "phone:generic:5d1e6f2a-0b3c-4d5e-8f70-1a2b3c4d5e6f"
    assert sum(len(o.emitted) for o in outcomes) == 1
    assert sum(o.folded + o.duplicates + o.late for o in outcomes) == len(payloads)
    assert await _count(store, phone_open_calls) == 0
    assert await _count(store, phone_emitted_calls) == 1


async def test_a_batch_answers_each_payload_as_if_recorded_alone_in_turn(
    store: Store, make_service: Factory
) -> None:
    service = make_service(settle_s=5)
    alone = _payloads("0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d", seed=11)
    together = _payloads("9f8e7d6c-5b4a-4c3d-9e1f-0a9b8c7d6e5f", seed=11)
    one_by_one = [_counts(await service.ingest(p)) for p in alone]
    batched = [_counts(o) for o in await asyncio.gather(*(service.ingest(p) for p in together))]
    assert batched == one_by_one
    async with store.engine.connect() as connection:
        states = (await connection.execute(sa.select(phone_open_calls.c.event_count))).all()
    assert [row.event_count for row in states] == [len(_events("x"))] * 2


async def test_a_payload_the_store_refuses_fails_alone_and_stores_nothing(
    store: Store, make_service: Factory
) -> None:
    service = make_service()
    payloads = _payloads("6c5b4a39-2817-4f06-9e5d-4c3b2a190817", seed=5)
    with _failing_writes(store, "outbox"):  # fails after the call rows were written
        results = await asyncio.gather(
            *(service.ingest(p) for p in payloads), return_exceptions=True
        )
    failed = [r for r in results if isinstance(r, BaseException)]
    # The batch failed; each payload was then written alone: only those completing the
    # call (whose item goes to the outbox) are refused, and what they wrote is rolled back.
    assert failed
    assert all(isinstance(r, sa.exc.ProgrammingError) for r in failed)
    assert len(failed) < len(payloads)
    assert await _count(store, outbox) == 0
    assert await _count(store, phone_emitted_calls) == 0
    await asyncio.gather(*(service.ingest(p) for p in payloads))  # the platform retries
    assert len(await outbox_payloads(store, INTAKE_ITEMS)) == 1


async def test_the_sweeper_emits_every_due_call_in_one_transaction(
    store: Store, make_service: Factory, clock: Clock
) -> None:
    service = make_service()
    call_ids = [f"0000000{n}-1b7d-4c05-8e2f-9a4d6b1c7e30" for n in range(5)]
    for call_id in call_ids:  # ended, never wrapped up: emitted after the 60 s grace
        await service.ingest([e for e in _events(call_id) if e.kind != "wrap_up"])
    clock.advance(61)
    with _transactions(store) as begun:
        emissions = await service.sweep()
    assert len(begun) == 1
    assert sorted(e.call_id for e in emissions) == call_ids
    assert await _count(store, phone_open_calls) == 0
    assert len(await outbox_payloads(store, INTAKE_ITEMS)) == 5
    assert await service.sweep() == []


@pytest.fixture
def webhooks(store: Store) -> Webhooks:
    settings = IntakePhoneSettings(
        kafka_bootstrap_servers="unused:9092", generic_hmac_secret=SecretStr(SECRET), settle_s=0
    )
    metrics = PhoneMetrics()
    service = PhoneService(store, CallPolicy.from_settings(settings), metrics, retry_max_s=5)
    return Webhooks(settings, service, metrics)


async def test_webhook_requests_the_store_refuses_get_503_then_their_retries_land(
    store: Store, webhooks: Webhooks
) -> None:
    whole = sample("generic_call.json")  # a whole call: emitted at once, no open-call row
    ended = sample("generic_hidden_caller_ended.json")  # ended, no wrap-up: an open call
    transport = httpx.ASGITransport(app=webhooks.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://phone.test") as client:
        with _failing_writes(store, "phone_open_calls"):
            answers = await asyncio.gather(
                *(post_webhook(client, "generic", b, SECRET) for b in [whole, ended] * 4)
            )
        statuses = [(r.status_code, r.headers.get("Retry-After")) for r in answers]
        # The batches failed; written again one by one, only the open call is refused.
        assert statuses[1::2] == [(503, "5")] * 4
        assert set(statuses[::2]) == {(200, None)}
        assert await _count(store, phone_open_calls) == 0
        assert await _count(store, phone_emitted_calls) == 1
        bodies = [whole, ended]
        retried = await asyncio.gather(
            *(post_webhook(client, "generic", b, SECRET) for b in bodies * 2)
        )
    assert {r.status_code for r in retried} == {200}
    assert await _count(store, phone_emitted_calls) == 1  # the whole call, emitted once
    assert await _count(store, phone_open_calls) == 1  # ended, no wrap-up: in its grace

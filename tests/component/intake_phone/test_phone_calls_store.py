"""PhoneService on the real store (SQLite and PostgreSQL): fold, persist, emit once."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import Callable

import sqlalchemy as sa

from schemas import DeadLetter, IntakeItem
from schemas.topics import DEAD_LETTERS, INTAKE_ITEMS
from services.common.store import Store
from services.intake_phone.adapters.tables import phone_emitted_calls, phone_open_calls
from services.intake_phone.domain import CallEvent, PayloadRejected, normalise
from services.intake_phone.service import PhoneService
from services.intake_phone.testing import Clock, outbox_payloads, sample

GENERIC_CALL = "3f6c2a9e-1b7d-4c05-8e2f-9a4d6b1c7e30"
Factory = Callable[..., PhoneService]


def _events(platform: str, name: str) -> list[CallEvent]:
    at = dt.datetime(2025, 1, 14, 13, 30, tzinfo=dt.UTC)
    return list(normalise(platform, sample(name), received_at=at).events)


async def _items(store: Store) -> list[IntakeItem]:
    return [IntakeItem.model_validate_json(p) for p in await outbox_payloads(store, INTAKE_ITEMS)]


async def _rows(store: Store, table: sa.Table) -> list[sa.Row[tuple[object, ...]]]:
    async with store.engine.connect() as connection:
        return list((await connection.execute(sa.select(table))).all())


async def test_shuffled_duplicated_events_in_many_payloads_emit_one_item(
    store: Store, make_service: Factory, clock: Clock
) -> None:
    service = make_service(settle_s=5)
    events = _events("generic", "generic_call.json")
    rng = random.Random(7)
    stream = events + [rng.choice(events) for _ in range(6)]
    rng.shuffle(stream)
    for event in stream:
        await service.ingest([event])
    assert await service.sweep() == []  # ended and wrapped up, but still settling
    clock.advance(5)
    assert len(await service.sweep()) == 1
    late = await service.ingest(events)  # a full redelivery after emission: late, ignored
    assert (late.late, late.folded, late.emitted) == (len(events), 0, ())

    items = await _items(store)
    assert [i.item_id for i in items] == [f"phone:generic:{GENERIC_CALL}"]
    call = items[0].call
    assert call is not None
    assert (call.ivr_path, call.agent, call.wrap_up_code) == (
        ("1", "3"),
        "agent-0427",
        "FUITE_COMPTEUR",
    )
    assert await _rows(store, phone_open_calls) == []
    emitted = await _rows(store, phone_emitted_calls)
    assert [(r.routed, r.completion) for r in emitted] == [(True, "ended_and_wrapped_up")]


async def test_ended_call_waits_for_grace_then_is_swept(
    store: Store, make_service: Factory, clock: Clock
) -> None:
    service = make_service()
    outcome = await service.ingest(_events("twilio", "twilio_ringing.txt"))
    await service.ingest(_events("twilio", "twilio_agent_leg_in_progress.txt"))
    await service.ingest(_events("twilio", "twilio_completed.txt"))
    assert (outcome.calls, outcome.folded, outcome.emitted) == (1, 1, ())
    clock.advance(59)
    assert await service.sweep() == []
    clock.advance(2)
    [emission] = await service.sweep()
    assert (emission.routed, emission.reason, emission.completion) == (
        True,
        "answered",
        "ended_grace_elapsed",
    )
    assert len(await _items(store)) == 1
    assert await service.sweep() == []


async def test_call_with_no_end_is_closed_by_timeout_after_a_restart(
    store: Store, make_service: Factory, clock: Clock
) -> None:
    await make_service().ingest(_events("ringover", "ringover_answered.json"))
    clock.advance(3599)
    restarted = make_service()  # a new process over the same store
    assert await restarted.sweep() == []
    clock.advance(1)
    [emission] = await restarted.sweep()
    assert emission.completion == "no_end_timeout"
    [item] = await _items(store)
    assert item.call is not None
    assert item.call.closed_by_timeout
    assert item.call.answered


async def test_out_of_perimeter_calls_are_counted_not_routed(
    store: Store, make_service: Factory, clock: Clock
) -> None:
    service = make_service(own_numbers=("09 72 10 80 80",))
    await service.ingest(_events("asterisk", "asterisk_abandoned_in_ivr.txt"))
    wrong = [e for e in _events("generic", "generic_call.json") if e.kind != "wrap_up"]
    await service.ingest(wrong)
    await service.ingest(
        [
            CallEvent(
                platform="generic",
                call_id=GENERIC_CALL,
                kind="wrap_up",
                at=wrong[-1].at,
                dedupe_key="generic:wrong-number",
                wrap_up_code="hors_perimetre",
            )
        ]
    )
    clock.advance(61)
    await service.sweep()
    assert await _items(store) == []
    reasons = sorted(
        (r.call_id, r.perimeter_reason) for r in await _rows(store, phone_emitted_calls)
    )
    assert reasons == [("1736874005.97", "abandoned_in_ivr"), (GENERIC_CALL, "wrong_number")]
    assert await service.counts() == {"open": 0, "abandoned_in_ivr": 1, "wrong_number": 1}


async def test_concurrent_payloads_about_one_call_emit_it_once(
    store: Store, make_service: Factory
) -> None:
    events = _events("generic", "generic_call.json")
    services = [make_service() for _ in range(4)]
    payloads = [events[i : i + 2] for i in range(0, len(events), 2)] * 3
    await asyncio.gather(*(services[n % 4].ingest(p) for n, p in enumerate(payloads)))
    assert [i.item_id for i in await _items(store)] == [f"phone:generic:{GENERIC_CALL}"]


async def test_an_unreadable_stored_call_is_dead_lettered_and_restarted(
    store: Store, make_service: Factory
) -> None:
    service = make_service()
    first = _events("twilio", "twilio_ringing.txt")
    await service.ingest(first)
    async with store.transaction() as connection:
        await connection.execute(phone_open_calls.update().values(state="{not json"))
    await service.ingest(_events("twilio", "twilio_completed.txt"))
    [letter] = [
        DeadLetter.model_validate_json(p) for p in await outbox_payloads(store, DEAD_LETTERS)
    ]
    assert letter.reason_code == "corrupted_call_state"
    [row] = await _rows(store, phone_open_calls)
    assert row.event_count == 1


async def test_a_rejected_body_is_dead_lettered_once(store: Store, make_service: Factory) -> None:
    service = make_service()
    rejected = PayloadRejected("invalid_json", "payload is not valid JSON")
    for _ in range(3):
        await service.dead_letter("generic", b"{oops", rejected, source="webhook")
    [letter] = [
        DeadLetter.model_validate_json(p) for p in await outbox_payloads(store, DEAD_LETTERS)
    ]
    assert (letter.reason_code, letter.service) == ("invalid_json", "intake-phone")
    assert letter.original_ref.startswith("webhook/generic/sha256:")

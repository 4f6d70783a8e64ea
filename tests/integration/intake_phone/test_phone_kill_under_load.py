"""SIGKILL intake_phone while concurrent requests are group-committed, restart, resend the rest.

An event answered 200 must be stored (it is never sent again here); events
whose request failed or never got an answer are resent to the restarted
service, like a platform retrying. Every call must then come out once and
complete: a lost 200 would show as a missing IVR choice, agent or wrap-up,
or as a call closed by timeout.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from schemas import IntakeItem
from schemas.topics import INTAKE_ITEMS
from services.common.testing import read_topic
from services.intake_phone.testing import PhoneProcess, sample

pytestmark = [pytest.mark.kafka]

CALLS = 24
CLIENTS = 8
EVENTS = len(json.loads(sample("generic_call.json")))


def _event(call_id: str, index: int) -> bytes:
    event = json.loads(sample("generic_call.json"))[index]
    event["call_id"] = call_id
    return json.dumps(event).encode()


@pytest.fixture(params=["sqlite", "postgres"])
def load_env(request: pytest.FixtureRequest, phone_env: dict[str, str]) -> dict[str, str]:
    """The service's environment on each store backend."""
    if request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
        return {**phone_env, "DATABASE_URL": str(request.getfixturevalue("pg_url"))}
    return phone_env


async def _send(
    phone: PhoneProcess,
    calls: list[str],
    todo: set[tuple[str, int]],
    stop: asyncio.Event,
    halfway: asyncio.Event | None = None,
) -> None:
    """Post each call's events still to do, in order; forget those answered 200."""
    for call_id in calls:
        for index in range(EVENTS):
            if stop.is_set():
                return
            if (call_id, index) not in todo:
                continue
            try:
                response = await phone.post("generic", _event(call_id, index))
            except httpx.TransportError:
                return  # killed under our feet: this one is resent after the restart
            if response.status_code == 200:
                todo.discard((call_id, index))
            if halfway is not None and len(todo) <= CALLS * EVENTS // 2:
                halfway.set()


async def test_phone_sigkill_under_concurrent_load_loses_no_acknowledged_event(
    load_env: dict[str, str], kafka: str, tmp_path: Path
) -> None:
    call_ids = [f"load-{n:02d}" for n in range(CALLS)]
    todo = {(call_id, index) for call_id in call_ids for index in range(EVENTS)}
    shares = [call_ids[n::CLIENTS] for n in range(CLIENTS)]
    first = await PhoneProcess(load_env, tmp_path).start()
    stop, halfway = asyncio.Event(), asyncio.Event()
    senders = [asyncio.create_task(_send(first, share, todo, stop, halfway)) for share in shares]
    try:
        await asyncio.wait_for(halfway.wait(), 60)
    finally:
        first.kill()  # requests are in flight: some answered, some not
        stop.set()
        await asyncio.gather(*senders)
        await first.client.aclose()
    assert 0 < len(todo) < CALLS * EVENTS

    second = await PhoneProcess(load_env, tmp_path).start()
    try:
        await asyncio.gather(*(_send(second, share, todo, asyncio.Event()) for share in shares))
        assert not todo
        values = await read_topic(kafka, INTAKE_ITEMS, expect=CALLS, max_s=30)
        values += await read_topic(kafka, INTAKE_ITEMS, quiet_s=1.5, max_s=10)
    finally:
        assert await second.stop() == 0, second.process.output()
    items: dict[str, IntakeItem] = {}
    for value in values:  # the outbox publishes at least once: copies are identical
        item = IntakeItem.model_validate_json(value)
        assert items.setdefault(item.item_id, item) == item
    assert sorted(items) == sorted(f"phone:generic:{call_id}" for call_id in call_ids)
    for item in items.values():
        call = item.call
        assert call is not None
        assert (call.ivr_path, call.agent, call.wrap_up_code, call.closed_by_timeout) == (
            ("1", "3"),
            "agent-0427",
            "FUITE_COMPTEUR",
            False,
        )

"""SIGKILL intake_phone with open calls, restart it: every call still yields exactly one item."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas import IntakeItem
from schemas.topics import INTAKE_ITEMS
from services.common.testing import read_topic
from services.intake_phone.testing import PhoneProcess, sample

pytestmark = [pytest.mark.kafka]

STARTED, IVR, _, ANSWERED, ENDED, WRAP_UP = range(6)


def _event(call_id: str, index: int) -> bytes:
    event = json.loads(sample("generic_call.json"))[index]
    event["call_id"] = call_id
    return json.dumps(event).encode()


@pytest.fixture(params=["sqlite", "postgres"])
def restart_env(request: pytest.FixtureRequest, phone_env: dict[str, str]) -> dict[str, str]:
    """The service's environment on each store backend, with a 6 s max-open timeout."""
    env = {**phone_env, "INTAKE_PHONE_GRACE_S": "4", "INTAKE_PHONE_MAX_OPEN_S": "6"}
    if request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
        env["DATABASE_URL"] = str(request.getfixturevalue("pg_url"))
    return env


async def test_phone_sigkill_with_open_calls_then_restart_emits_each_call_once(
    restart_env: dict[str, str], kafka: str, tmp_path: Path
) -> None:
    first = await PhoneProcess(restart_env, tmp_path).start()
    try:
        for index in range(6):  # call-done completes before the crash
            assert (await first.post("generic", _event("call-done", index))).status_code == 200
        assert len(await read_topic(kafka, INTAKE_ITEMS, expect=1, max_s=15)) == 1
        open_calls = {
            "call-wraps-up-later": (STARTED, IVR, ANSWERED),
            "call-ended-no-wrap-up": (STARTED, ANSWERED, ENDED),
            "call-never-ends": (STARTED, ANSWERED),
        }
        for call_id, indexes in open_calls.items():
            for index in indexes:
                response = await first.post("generic", _event(call_id, index))
                assert response.status_code == 200
    finally:
        first.kill()  # 200 means recorded: nothing may be lost from here
        await first.client.aclose()

    second = await PhoneProcess(restart_env, tmp_path).start()
    try:
        for call_id, index in [
            ("call-wraps-up-later", ENDED),
            ("call-wraps-up-later", WRAP_UP),
            ("call-wraps-up-later", STARTED),  # a retried event: a duplicate
            ("call-done", WRAP_UP),  # after emission: late, ignored
        ]:
            assert (await second.post("generic", _event(call_id, index))).status_code == 200
        values = await read_topic(kafka, INTAKE_ITEMS, expect=4, max_s=20)
        values = await read_topic(kafka, INTAKE_ITEMS, quiet_s=1.5, max_s=10)
    finally:
        assert await second.stop() == 0, second.process.output()

    items = {
        IntakeItem.model_validate_json(v).item_id: IntakeItem.model_validate_json(v) for v in values
    }
    assert len(values) == 4
    assert sorted(items) == [
        "phone:generic:call-done",
        "phone:generic:call-ended-no-wrap-up",
        "phone:generic:call-never-ends",
        "phone:generic:call-wraps-up-later",
    ]
    timed_out = items["phone:generic:call-never-ends"].call
    assert timed_out is not None
    assert timed_out.closed_by_timeout
    wrapped = items["phone:generic:call-wraps-up-later"].call
    assert wrapped is not None
    assert (wrapped.wrap_up_code, wrapped.ivr_path) == ("FUITE_COMPTEUR", ("1",))

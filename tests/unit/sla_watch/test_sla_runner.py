"""The background loops: busy → again at once, idle → wait for the interval or a wake-up."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError

from services.sla_watch.runner import run_periodically


async def test_sla_loop_goes_again_at_once_while_there_is_work_and_waits_when_idle() -> None:
    stop, wake = asyncio.Event(), asyncio.Event()
    counts = [3, 1, 0, 2, 0]  # taken per round
    rounds: list[int] = []

    async def step() -> int:
        rounds.append(counts[len(rounds)])
        if len(rounds) == len(counts):
            stop.set()
        return rounds[-1]

    loop = asyncio.create_task(
        run_periodically("sender", step, interval_s=3600, stop=stop, full_batch=1, wake=wake)
    )
    await asyncio.sleep(0.05)
    assert rounds == [3, 1, 0]  # a partial batch is not idle: no sleep after it
    wake.set()  # e.g. the scheduler queued a mail
    await asyncio.wait_for(loop, timeout=5)
    assert rounds == counts


async def test_sla_loop_stops_while_waiting() -> None:
    stop = asyncio.Event()

    async def idle() -> int:
        return 0

    loop = asyncio.create_task(run_periodically("sender", idle, interval_s=3600, stop=stop))
    await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(loop, timeout=5)


@pytest.mark.parametrize("error", [KafkaConnectionError(), ConnectionRefusedError()])
async def test_sla_loop_outlives_a_broker_or_store_outage(error: Exception) -> None:
    stop = asyncio.Event()
    rounds = 0

    async def outbox_sweep() -> int:
        nonlocal rounds
        rounds += 1
        if rounds == 1:
            raise error  # the broker (or the store) is restarting
        stop.set()
        return 0

    await asyncio.wait_for(
        run_periodically("outbox", outbox_sweep, interval_s=0.01, stop=stop), timeout=5
    )
    assert rounds == 2

"""The last outbox sweep at shutdown: what is pending goes out, within a bound."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from typing import cast

import pytest
from aiokafka.errors import KafkaConnectionError
from faststream.kafka import KafkaBroker

from services.common.outbox import OutboxRelay, publish_pending
from services.common.store import Store
from services.intake_mail.app import _sweep_outbox


class _Relay(OutboxRelay):
    """Counts full sweeps; ``hang`` never answers, ``errors`` fail the first sweeps."""

    def __init__(self, *, hang: bool = False, errors: Sequence[Exception] = ()) -> None:
        super().__init__(cast(Store, None), cast(KafkaBroker, None))
        self.sweeps = 0
        self.hang = hang
        self.errors = list(errors)

    async def flush(self, ids: Collection[int] | None = None) -> int:
        assert ids is None  # the sweep: every pending row, whoever wrote it
        self.sweeps += 1
        if self.hang:
            await asyncio.Event().wait()
        if self.errors:
            raise self.errors.pop(0)
        return 3


async def test_the_final_sweep_publishes_what_is_pending() -> None:
    assert await publish_pending(_Relay()) == 3


@pytest.mark.parametrize(
    "relay",
    [_Relay(hang=True), _Relay(errors=[KafkaConnectionError()])],
    ids=["broker-silent", "broker-gone"],
)
async def test_the_final_sweep_gives_up_within_its_bound_and_never_raises(relay: _Relay) -> None:
    # The rows stay in the outbox for the next start's sweep; shutdown goes on.
    assert await publish_pending(relay, timeout_s=0.05) == 0
    assert relay.sweeps == 1


async def test_intake_mail_sweeps_once_more_when_stopped() -> None:
    relay = _Relay()
    sweeping = asyncio.create_task(_sweep_outbox(relay, interval_s=3600))
    await asyncio.sleep(0.01)
    assert relay.sweeps == 1  # the periodic sweep, then an hour's wait
    sweeping.cancel()  # the app stops its background jobs before the broker
    await asyncio.gather(sweeping, return_exceptions=True)
    assert relay.sweeps == 2


async def test_the_periodic_sweep_outlives_a_broker_outage() -> None:
    relay = _Relay(errors=[KafkaConnectionError()])  # the broker restarts during a sweep
    sweeping = asyncio.create_task(relay.run_forever(interval_s=0.01))
    for _ in range(500):
        if relay.sweeps >= 2:
            break
        await asyncio.sleep(0.01)
    sweeping.cancel()
    await asyncio.gather(sweeping, return_exceptions=True)
    assert relay.sweeps >= 2  # the loop went on after the failed sweep

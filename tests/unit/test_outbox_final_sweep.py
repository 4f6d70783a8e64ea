"""The last outbox sweep at shutdown: what is pending goes out, within a bound."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

import pytest
from aiokafka.errors import KafkaConnectionError

from services.common.outbox import OutboxRelay, publish_pending
from services.intake_mail.app import _sweep_outbox


class _Relay:
    """Counts full sweeps; ``hang`` never answers, ``error`` fails each sweep."""

    def __init__(self, *, hang: bool = False, error: Exception | None = None) -> None:
        self.sweeps = 0
        self.hang = hang
        self.error = error

    async def flush(self, ids: Sequence[int] | None = None) -> int:
        assert ids is None  # the sweep: every pending row, whoever wrote it
        self.sweeps += 1
        if self.hang:
            await asyncio.Event().wait()
        if self.error is not None:
            raise self.error
        return 3


async def test_the_final_sweep_publishes_what_is_pending() -> None:
    assert await publish_pending(cast(OutboxRelay, _Relay())) == 3


@pytest.mark.parametrize(
    "relay",
    [_Relay(hang=True), _Relay(error=KafkaConnectionError())],
    ids=["broker-silent", "broker-gone"],
)
async def test_the_final_sweep_gives_up_within_its_bound_and_never_raises(relay: _Relay) -> None:
    # The rows stay in the outbox for the next start's sweep; shutdown goes on.
    assert await publish_pending(cast(OutboxRelay, relay), timeout_s=0.05) == 0
    assert relay.sweeps == 1


async def test_intake_mail_sweeps_once_more_when_stopped() -> None:
    relay = _Relay()
    sweeping = asyncio.create_task(_sweep_outbox(cast(OutboxRelay, relay), interval_s=3600))
    await asyncio.sleep(0.01)
    assert relay.sweeps == 1  # the periodic sweep, then an hour's wait
    sweeping.cancel()  # the app stops its background jobs before the broker
    await asyncio.gather(sweeping, return_exceptions=True)
    assert relay.sweeps == 2

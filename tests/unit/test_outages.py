"""A pool with no free connection under load is an outage to wait out, not a bug."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from faststream.kafka import KafkaBroker

from services.common.outbox import OutboxRelay
from services.common.retry import OUTAGE, STORE_OUTAGE, is_transient_store_error, retry_store
from services.intake_mail.errors import TRANSIENT_ERRORS
from services.intake_scan.service import RETRYABLE


async def test_a_pool_timeout_is_retried_by_retry_store() -> None:
    calls = 0

    async def checkout() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise sa.exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached")
        return "done"

    assert is_transient_store_error(sa.exc.TimeoutError())
    assert await retry_store(checkout, max_seconds=5) == "done"
    assert calls == 3


class _Starved(OutboxRelay):
    def __init__(self) -> None:
        super().__init__(None, KafkaBroker())  # type: ignore[arg-type]
        self.rounds = 0

    async def flush(self, ids: object = None) -> int:
        self.rounds += 1
        raise sa.exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached")


async def test_the_outbox_sweep_outlives_a_starved_pool() -> None:
    relay = _Starved()
    sweeping = asyncio.create_task(relay.run_forever(interval_s=0.01))
    for _ in range(500):  # however slow the machine: until a second round began
        if relay.rounds >= 2 or sweeping.done():
            break
        await asyncio.sleep(0.01)
    assert not sweeping.done()  # still sweeping: the round failed, the loop did not
    assert relay.rounds >= 2
    sweeping.cancel()


@pytest.mark.parametrize(
    "errors",
    [
        pytest.param(OUTAGE, id="loops"),
        pytest.param(STORE_OUTAGE, id="store-views-and-webhook"),
        pytest.param(TRANSIENT_ERRORS, id="intake-mail"),
        pytest.param(RETRYABLE, id="intake-scan"),
    ],
)
def test_every_service_waits_out_a_starved_pool(errors: tuple[type[BaseException], ...]) -> None:
    caught = False
    try:
        raise sa.exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached")
    except errors:
        caught = True
    assert caught

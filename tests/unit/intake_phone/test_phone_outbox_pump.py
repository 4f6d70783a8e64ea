"""The phone's outbox pump: committed rows published by id at once, the sweep kept on time."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import cast

from faststream.kafka import KafkaBroker

from services.common.outbox import OutboxRelay
from services.common.store import Store
from services.intake_phone.runtime import OutboxPump


class _Relay(OutboxRelay):
    """Records what each flush was asked to publish (None: the sweep of every pending row)."""

    def __init__(self) -> None:
        super().__init__(cast(Store, None), KafkaBroker())
        self.flushes: list[list[int] | None] = []

    async def flush(self, ids: Collection[int] | None = None) -> int:
        self.flushes.append(None if ids is None else list(ids))
        return len(ids or ())


async def test_committed_rows_are_published_by_id_and_the_sweep_keeps_its_interval() -> None:
    relay = _Relay()
    pump = OutboxPump(cast(OutboxRelay, relay), interval_s=0.1)
    running = asyncio.create_task(pump.run_forever())
    try:
        pump.wake([1, 2])
        pump.wake([3])
        for _ in range(500):  # the pump runs as soon as the loop lets it
            if relay.flushes:
                break
            await asyncio.sleep(0.01)
        assert relay.flushes[0] == [1, 2, 3]  # together, by id, not the sweep
        for n in range(30):  # commits keep waking the pump for ~0.3 s...
            pump.wake([10 + n])
            await asyncio.sleep(0.01)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    by_id = [ids for ids in relay.flushes if ids is not None]
    assert sorted(i for ids in by_id for i in ids) == [1, 2, 3, *range(10, 40)]
    assert relay.flushes.count(None) >= 2  # ...and the sweep still ran (every 0.1 s)

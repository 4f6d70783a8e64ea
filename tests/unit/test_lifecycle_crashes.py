"""A background task that must run as long as the service ends the service when it crashes."""

from __future__ import annotations

import asyncio

import pytest

from services.common.lifecycle import CrashWatch, background


async def _forever() -> None:
    await asyncio.Event().wait()


async def _bug() -> None:
    await asyncio.sleep(0)
    raise KeyError("a bug")


async def test_a_crash_asks_the_app_to_exit_once_and_is_raised_at_the_end() -> None:
    exits: list[str] = []
    crashes = CrashWatch(lambda: exits.append("exit"))
    async with background(_forever(), _bug(), _bug(), crashes=crashes):
        for _ in range(20):
            await asyncio.sleep(0)
        assert exits == ["exit"]  # asked once, however many tasks die
    with pytest.raises(RuntimeError, match="background task") as raised:
        crashes.raise_if_crashed()
    assert isinstance(raised.value.__cause__, KeyError)


async def test_tasks_cancelled_at_shutdown_are_not_crashes() -> None:
    exits: list[str] = []
    crashes = CrashWatch(lambda: exits.append("exit"))
    async with background(_forever(), _forever(), crashes=crashes):
        await asyncio.sleep(0)
    await asyncio.sleep(0)  # the done callbacks run
    assert exits == []
    crashes.raise_if_crashed()  # nothing to raise

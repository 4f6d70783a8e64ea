"""GroupCommit: concurrent submissions share one write, each gets its own result or the error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import pytest

from services.intake_phone.group_commit import GroupCommit


class Recorder:
    """A ``write`` that records each batch, in sessions it also records."""

    def __init__(
        self,
        *,
        fail_on: str | None = None,
        hold: asyncio.Event | None = None,
        error: Exception | None = None,
    ) -> None:
        self.batches: list[list[str]] = []
        self._error = error or RuntimeError("the batch failed")
        self.sessions = 0
        self.open_sessions = 0
        self._fail_on = fail_on
        self._hold = hold

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Recorder]:
        self.sessions += 1
        self.open_sessions += 1
        try:
            yield self
        finally:
            self.open_sessions -= 1

    async def write(self, session: Recorder, items: Sequence[str]) -> list[str]:
        assert session is self
        self.batches.append(list(items))
        if self._hold is not None:
            await self._hold.wait()
        if self._fail_on in items:
            raise self._error
        return [item.upper() for item in items]


def _commits(recorder: Recorder, **options: int) -> GroupCommit[Recorder, str, str]:
    return GroupCommit(recorder.write, recorder.session, **options)


async def _behind_a_held_write(
    commits: GroupCommit[Recorder, str, str], first: str, later: Sequence[str]
) -> tuple[asyncio.Task[str], list[asyncio.Task[str]]]:
    """Submit ``first``; once the writer is inside its (held) write, submit ``later``."""
    head = asyncio.create_task(commits.submit(first))
    await asyncio.sleep(0.01)  # the writer is now inside write([first])
    queued = [asyncio.create_task(commits.submit(item)) for item in later]
    await asyncio.sleep(0.01)
    return head, queued


async def test_concurrent_submissions_share_one_write_and_get_their_own_result() -> None:
    recorder = Recorder()
    commits = _commits(recorder)
    items = [f"call-{n}" for n in range(20)]
    results = await asyncio.gather(*(commits.submit(item) for item in items))
    assert results == [item.upper() for item in items]
    assert recorder.batches == [items]
    assert (recorder.sessions, recorder.open_sessions) == (1, 0)


async def test_what_arrives_during_a_write_goes_in_the_next_batch() -> None:
    hold = asyncio.Event()
    recorder = Recorder(hold=hold)
    commits = _commits(recorder)
    first, later = await _behind_a_held_write(commits, "a", ("b", "c", "d"))
    assert commits.queued == 3
    hold.set()
    assert await asyncio.gather(first, *later) == ["A", "B", "C", "D"]
    assert recorder.batches == [["a"], ["b", "c", "d"]]
    assert recorder.sessions == 1  # one session for the writes made in a row


async def test_a_batch_is_split_at_max_items() -> None:
    recorder = Recorder()
    commits = _commits(recorder, max_items=4)
    await asyncio.gather(*(commits.submit(str(n)) for n in range(10)))
    assert [len(batch) for batch in recorder.batches] == [4, 4, 2]


async def test_a_store_outage_fails_every_submitter_of_its_batch_only() -> None:
    hold = asyncio.Event()
    recorder = Recorder(fail_on="poison", hold=hold, error=ConnectionRefusedError("store down"))
    commits = _commits(recorder)
    first, doomed = await _behind_a_held_write(commits, "first", ("x", "poison", "y"))
    hold.set()
    assert await first == "FIRST"
    for task in doomed:
        with pytest.raises(ConnectionRefusedError):
            await task
    assert recorder.batches == [["first"], ["x", "poison", "y"]]  # no retry one by one
    assert await commits.submit("after") == "AFTER"  # the next batch is written as usual


async def test_a_payload_the_store_refuses_fails_only_its_own_request() -> None:
    hold = asyncio.Event()
    recorder = Recorder(fail_on="poison", hold=hold)
    commits = _commits(recorder)
    first, others = await _behind_a_held_write(commits, "first", ("x", "poison", "y"))
    hold.set()
    assert await first == "FIRST"
    assert await others[0] == "X"
    assert await others[2] == "Y"
    with pytest.raises(RuntimeError, match="the batch failed"):
        await others[1]
    # The failed batch, then each of its submissions written alone.
    assert recorder.batches == [["first"], ["x", "poison", "y"], ["x"], ["poison"], ["y"]]


async def test_a_submitter_that_stops_waiting_does_not_cancel_the_batch() -> None:
    hold = asyncio.Event()
    recorder = Recorder(hold=hold)
    commits = _commits(recorder)
    impatient = asyncio.create_task(commits.submit("a"))
    patient = asyncio.create_task(commits.submit("b"))
    await asyncio.sleep(0.01)
    impatient.cancel()
    hold.set()
    assert await patient == "B"
    assert recorder.batches == [["a", "b"]]  # "a" was still written


async def test_a_second_writer_starts_only_when_every_writer_is_busy() -> None:
    hold = asyncio.Event()
    recorder = Recorder(hold=hold)
    commits = _commits(recorder, max_writers=2)
    tasks = [asyncio.create_task(commits.submit("a"))]
    await asyncio.sleep(0.01)  # writer 1 busy with ["a"]
    tasks += [asyncio.create_task(commits.submit(item)) for item in ("b", "c")]
    await asyncio.sleep(0.01)  # writer 2 busy with ["b", "c"]
    tasks += [asyncio.create_task(commits.submit("d"))]  # both busy, at the cap: queued
    await asyncio.sleep(0.01)
    assert recorder.open_sessions == 2
    assert commits.queued == 1
    hold.set()
    assert await asyncio.gather(*tasks) == ["A", "B", "C", "D"]
    assert sorted(map(tuple, recorder.batches)) == [("a",), ("b", "c"), ("d",)]
    assert recorder.open_sessions == 0

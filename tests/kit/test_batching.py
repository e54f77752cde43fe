"""`kit.batching.Batcher`: when a batch leaves, and who gets which outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from pixwave.kit.batching import Batcher, Settle

#: A window no test waits out: a batch that leaves did so for another reason.
NEVER = 60.0


class Recorder:
    """Runs batches, noting each; a batch waits for ``release`` when one is set."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release: asyncio.Event | None = None
        self.started = asyncio.Event()

    async def run(self, items: list[int], settle: Settle[int]) -> Sequence[int | BaseException]:
        self.batches.append(items)
        self.started.set()
        if self.release is not None:
            await self.release.wait()
        return [ValueError(f"no {i}") if i < 0 else i * 10 for i in items]


async def one_in_flight(
    max_size: int = 10,
) -> tuple[Recorder, Batcher[int, int], asyncio.Task[int], asyncio.Event]:
    """A batcher whose first batch (item 1) is in flight until the event is set."""
    recorder = Recorder()
    release = recorder.release = asyncio.Event()
    batcher = Batcher("test", recorder.run, window_seconds=NEVER, max_size=max_size)
    first = asyncio.create_task(batcher.submit(1))
    await recorder.started.wait()
    return recorder, batcher, first, release


async def test_a_call_alone_goes_at_once() -> None:
    """Nothing in flight: the call does not wait for the window."""
    recorder = Recorder()
    batcher = Batcher("test", recorder.run, window_seconds=NEVER, max_size=10)
    assert await asyncio.wait_for(batcher.submit(1), timeout=5) == 10
    assert recorder.batches == [[1]]


async def test_calls_made_while_one_is_in_flight_leave_together_when_it_is_done() -> None:
    recorder, batcher, first, release = await one_in_flight()
    rest = [asyncio.create_task(batcher.submit(i)) for i in (2, 3, 4)]
    await asyncio.sleep(0)
    assert recorder.batches == [[1]]  # the others wait for the one in flight
    release.set()
    assert await asyncio.wait_for(asyncio.gather(first, *rest), timeout=5) == [10, 20, 30, 40]
    assert recorder.batches == [[1], [2, 3, 4]]


async def test_a_full_batch_goes_without_waiting() -> None:
    recorder, batcher, first, release = await one_in_flight(max_size=2)
    full = [asyncio.create_task(batcher.submit(i)) for i in (2, 3)]
    for _ in range(3):  # the callers, then the batch's task
        await asyncio.sleep(0)
    assert recorder.batches == [[1], [2, 3]]  # full: it left while the first was in flight
    release.set()
    await asyncio.wait_for(asyncio.gather(first, *full), timeout=5)


async def test_the_window_bounds_the_wait_behind_a_batch_that_hangs() -> None:
    """The batch in flight never finishes (a gateway read that hangs): the next one still
    leaves once the window is over."""
    recorder = Recorder()
    hung = asyncio.Event()
    recorder.release = hung
    batcher = Batcher("test", recorder.run, window_seconds=0.01, max_size=10)
    first = asyncio.create_task(batcher.submit(1))
    await recorder.started.wait()
    recorder.release = None  # the next batch answers at once
    assert await asyncio.wait_for(batcher.submit(2), timeout=5) == 20
    assert not first.done()
    hung.set()
    assert await first == 10


async def test_each_caller_gets_its_own_outcome() -> None:
    """One item's error is raised to its caller only; the others get their results."""
    _recorder, batcher, first, release = await one_in_flight()
    good, bad = asyncio.create_task(batcher.submit(2)), asyncio.create_task(batcher.submit(-1))
    release.set()
    assert await first == 10
    assert await good == 20
    with pytest.raises(ValueError, match="no -1"):
        await bad


async def test_a_batch_that_raises_fails_every_caller_and_the_next_one_works() -> None:
    calls = 0

    async def broken(items: list[int], settle: Settle[int]) -> Sequence[int | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the batch itself failed")
        return items

    batcher = Batcher("test", broken, window_seconds=NEVER, max_size=10)
    with pytest.raises(RuntimeError, match="itself"):
        await batcher.submit(1)
    assert await batcher.submit(2) == 2


async def test_a_caller_cancelled_while_waiting_is_left_out() -> None:
    recorder, batcher, first, release = await one_in_flight()
    gone, kept = asyncio.create_task(batcher.submit(2)), asyncio.create_task(batcher.submit(3))
    await asyncio.sleep(0)
    gone.cancel()
    release.set()
    assert await asyncio.wait_for(kept, timeout=5) == 30
    await first
    assert recorder.batches == [[1], [3]]


async def test_a_caller_settled_early_does_not_wait_for_the_rest() -> None:
    """The batch answers one item as soon as it is done; the slow one's caller waits on."""
    slow = asyncio.Event()

    async def run(items: list[int], settle: Settle[int]) -> Sequence[int | BaseException]:
        if items == [0]:
            return [0]
        settle(0, items[0])
        await slow.wait()
        return [999, items[1]]  # the settled item's outcome here is ignored

    batcher = Batcher("test", run, window_seconds=NEVER, max_size=2)
    first = asyncio.create_task(batcher.submit(0))  # in flight: the next two gather
    fast, late = asyncio.create_task(batcher.submit(1)), asyncio.create_task(batcher.submit(2))
    assert await asyncio.wait_for(first, timeout=5) == 0
    assert await asyncio.wait_for(fast, timeout=5) == 1
    assert not late.done()
    slow.set()
    assert await late == 2

"""`kit.singleflight`: concurrent identical calls share one; nothing outlives the call."""

from __future__ import annotations

import asyncio

import pytest

from pixwave.kit.singleflight import SingleFlight


class Counted:
    """A slow call that counts how often it really ran."""

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail
        self.release = asyncio.Event()

    async def __call__(self) -> list[int]:
        self.calls += 1
        await self.release.wait()
        if self.fail:
            raise RuntimeError(f"read {self.calls} failed")
        return [self.calls]


async def test_concurrent_callers_of_one_key_share_one_call() -> None:
    flights: SingleFlight[list[int]] = SingleFlight()
    call = Counted()
    waiting = [asyncio.ensure_future(flights.run("view", call)) for _ in range(5)]
    await asyncio.sleep(0)
    call.release.set()
    assert await asyncio.gather(*waiting) == [[1]] * 5
    assert call.calls == 1


async def test_other_keys_and_later_callers_make_their_own_call() -> None:
    flights: SingleFlight[list[int]] = SingleFlight()
    call = Counted()
    call.release.set()
    first, other = await asyncio.gather(flights.run("a", call), flights.run("b", call))
    later = await flights.run("a", call)  # the first flight has landed: nothing is kept
    assert (first, other, later) == ([1], [2], [3])


async def test_a_failure_reaches_every_waiter_and_the_next_call_tries_again() -> None:
    flights: SingleFlight[list[int]] = SingleFlight()
    call = Counted(fail=True)
    waiting = [asyncio.ensure_future(flights.run("view", call)) for _ in range(3)]
    await asyncio.sleep(0)
    call.release.set()
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert [str(o) for o in outcomes] == ["read 1 failed"] * 3
    call.fail = False
    assert await flights.run("view", call) == [2]


async def test_a_cancelled_caller_does_not_cancel_the_others() -> None:
    flights: SingleFlight[list[int]] = SingleFlight()
    call = Counted()
    first = asyncio.ensure_future(flights.run("view", call))
    second = asyncio.ensure_future(flights.run("view", call))
    await asyncio.sleep(0)
    first.cancel()
    call.release.set()
    assert await second == [1]
    with pytest.raises(asyncio.CancelledError):
        await first
    assert call.calls == 1

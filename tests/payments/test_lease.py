"""The payment lease and its "look again" note, on Redis and in memory alike.

Time passes for real on Redis (its TTLs are its own); the in-memory leases run on a clock the
test moves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from pixwave.kit.locks import RedisLocks
from pixwave.payments.lease import Leases, MemoryLeases, RedisLeases
from pixwave.resources import Resources
from tests.support import FakeTime


@dataclass
class Kind:
    leases: Leases
    #: Let ``seconds`` pass for these leases.
    wait: Callable[[float], Awaitable[None]]


@pytest.fixture(params=["redis", "memory"])
async def kind(request: pytest.FixtureRequest, resources: Resources) -> Kind:
    if request.param == "memory":
        time = FakeTime()
        return Kind(MemoryLeases(time.seconds), time.sleep)
    assert resources.redis is not None
    return Kind(RedisLeases(resources.redis, RedisLocks(resources.redis)), asyncio.sleep)


@pytest.fixture
def leases(kind: Kind) -> Leases:
    return kind.leases


async def test_one_owner_at_a_time(leases: Leases) -> None:
    """A second runner is turned away while the first owns the payment; then it may enter."""
    first = await leases.enter("txn_a", 5, note=False)
    assert first is not None
    assert await leases.enter("txn_a", 5, note=False) is None
    assert await leases.enter("txn_b", 5, note=False) is not None  # other payments are free
    assert await leases.leave("txn_a", first) is False  # nobody asked for another look
    assert await leases.enter("txn_a", 5, note=False) is not None


async def test_a_runner_turned_away_leaves_a_note_the_owner_reads_once(leases: Leases) -> None:
    """News that arrives mid-step (a webhook) makes the owner look again, exactly once."""
    owner = await leases.enter("txn_a", 5, note=False)
    assert owner is not None
    assert await leases.enter("txn_a", 5, note=True) is None
    assert await leases.leave("txn_a", owner) is True
    again = await leases.enter("txn_a", 5, note=False)
    assert again is not None
    assert await leases.leave("txn_a", again) is False


async def test_entering_clears_an_old_note(leases: Leases, kind: Kind) -> None:
    """A note left for an owner that then crashed is read by whoever enters next."""
    owner = await leases.enter("txn_a", 0.2, note=False)
    assert owner is not None
    assert await leases.enter("txn_a", 5, note=True) is None
    await kind.wait(0.3)  # the owner's lease runs out: it never let go
    successor = await leases.enter("txn_a", 5, note=False)
    assert successor is not None
    assert await leases.leave("txn_a", successor) is False


async def test_a_lost_lease_is_neither_extended_nor_released_by_its_old_owner(
    leases: Leases, kind: Kind
) -> None:
    """An owner too slow to renew has lost the payment for good: its token no longer works."""
    old = await leases.enter("txn_a", 0.2, note=False)
    assert old is not None
    assert await leases.extend("txn_a", old, 0.2)
    await kind.wait(0.3)
    new = await leases.enter("txn_a", 5, note=False)
    assert new is not None
    assert not await leases.extend("txn_a", old, 5)
    await leases.leave("txn_a", old)
    assert await leases.enter("txn_a", 5, note=False) is None  # still the new owner's
    assert await leases.extend("txn_a", new, 5)


async def test_many_at_once_follow_the_same_rules(leases: Leases) -> None:
    """A batch of the engine takes and lets go of many leases in one round trip: a payment
    owned by another runner is turned away (and noted), the others are taken."""
    owner = await leases.enter("txn_b", 5, note=False)
    assert owner is not None
    tokens = await leases.enter_many(["txn_a", "txn_b", "txn_c"], 5, note=True)
    assert tokens[0] is not None
    assert tokens[1] is None
    assert tokens[2] is not None
    assert await leases.enter("txn_a", 5, note=False) is None  # really taken
    held = [("txn_a", tokens[0]), ("txn_c", tokens[2])]
    assert await leases.enter("txn_c", 5, note=True) is None  # news for txn_c meanwhile
    assert await leases.leave_many(held) == [False, True]
    assert await leases.leave("txn_b", owner) is True  # the batch's note for the owner
    assert await leases.enter_many(["txn_a", "txn_c"], 5, note=False) != [None, None]
    assert await leases.leave_many([]) == []

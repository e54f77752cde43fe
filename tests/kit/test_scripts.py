"""Several Lua scripts in one round trip, on a real Redis: no `SCRIPT EXISTS` per send, and a
flushed script cache costs a reload, never a second run of a call that ran."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from pixwave.kit.scripts import Call, run_scripts

INCR = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
FAIL = "return redis.error_reply('refused')"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


async def script_exists_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_script|exists", {}).get("calls", 0))


async def test_scripts_go_in_one_send_without_asking_whether_they_exist(redis: Redis) -> None:
    """redis-py's own pipeline would ask `SCRIPT EXISTS` before each send holding a script."""
    incr = redis.register_script(INCR)
    await incr(keys=["a"], args=[0])  # loaded
    before = await script_exists_calls(redis)
    for _ in range(3):
        answers = await run_scripts(redis, [Call(incr, ["a"], [1]), Call(incr, ["b"], [2])])
    assert answers == [3, 6]
    assert await script_exists_calls(redis) == before


async def test_a_flushed_cache_reloads_and_sends_only_the_calls_that_missed(redis: Redis) -> None:
    """After `SCRIPT FLUSH` one script is loaded again and one is not: the calls of the loaded
    one run once, the others are sent again after their script is loaded."""
    await redis.script_flush()
    loaded = redis.register_script(INCR)
    await loaded(keys=["a"], args=[1])
    missing = redis.register_script(INCR + " -- another script")
    answers = await run_scripts(
        redis,
        [Call(loaded, ["a"], [1]), Call(missing, ["b"], [5]), Call(loaded, ["a"], [1])],
    )
    assert answers == [2, 5, 3]
    assert int(await redis.get("a") or 0) == 3  # not run twice
    assert int(await redis.get("b") or 0) == 5


async def test_an_error_is_raised_once_every_call_ran(redis: Redis) -> None:
    incr, fail = redis.register_script(INCR), redis.register_script(FAIL)
    with pytest.raises(ResponseError, match="refused"):
        await run_scripts(
            redis, [Call(incr, ["a"], [1]), Call(fail, [], []), Call(incr, ["b"], [1])]
        )
    assert await redis.mget("a", "b") == [b"1", b"1"]


async def test_no_calls_send_nothing(redis: Redis) -> None:
    assert await run_scripts(redis, []) == []

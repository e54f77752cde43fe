"""Is the job broker reachable? The readiness probe asks, so a pod without its queue gets no
traffic: with jobs sent after commit, an API that cannot enqueue leaves payments to the sweep."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from taskiq import AsyncBroker
from taskiq_redis import RedisStreamBroker


def broker_ready(broker: AsyncBroker | None) -> Callable[[], Awaitable[object]] | None:
    """A check that raises when the broker's server does not answer; None for in-process."""
    if isinstance(broker, RedisStreamBroker):
        pool = broker.connection_pool

        async def ping_redis() -> None:
            client = Redis(connection_pool=pool)
            try:
                await client.ping()
            finally:
                await client.aclose(close_connection_pool=False)

        return ping_redis
    ping = getattr(broker, "ping", None)
    return ping if callable(ping) else None

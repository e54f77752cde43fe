"""Concurrent identical reads share one round trip.

A worker moves a batch of payments at once, and each asks the router for the gateways' health
within the same millisecond: the same Redis script with the same keys, once per payment. A
caller that arrives while an identical read is in flight waits for that read instead of
sending its own; the answer it gets was read at most one round trip before it asked, which is
as fresh as the read it would have sent (health moves in buckets of seconds). Nothing is kept
after the read completes: this is de-duplication of concurrent calls, not a cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class SingleFlight(Generic[V]):
    """Per key, at most one call in flight; the callers that join it share its outcome."""

    def __init__(self) -> None:
        self._flights: dict[Hashable, asyncio.Future[V]] = {}

    async def run(self, key: Hashable, call: Callable[[], Awaitable[V]]) -> V:
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(call())
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        # One caller cancelled (its job timed out) must not cancel the others' read.
        return await asyncio.shield(flight)

    def _landed(self, key: Hashable, done: asyncio.Future[V]) -> None:
        if self._flights.get(key) is done:
            del self._flights[key]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have gone

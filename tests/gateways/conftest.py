"""Fixtures of the gateway tests: health stores of both kinds, and the router's small world."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.gateways.support import Backend, FakeClock, World, new_redis_backend


@pytest.fixture
async def redis_backend(redis_url: str) -> AsyncIterator[Backend]:
    backend = new_redis_backend()
    yield backend
    await backend.close()


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "memory":
        yield Backend("memory", FakeClock(), "")
        return
    request.getfixturevalue("redis_url")  # skips, or fails under CI, without a Redis
    backend = new_redis_backend()
    yield backend
    await backend.close()


@pytest.fixture
def world() -> World:
    """Two fake gateways (Mercado Pago first) behind a memory store on a fake clock."""
    return World()

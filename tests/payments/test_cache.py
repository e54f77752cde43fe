"""The versioned transaction cache, against the real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from pixwave.payments.cache import TransactionCache


@pytest.fixture
async def cache(redis_url: str) -> AsyncIterator[TransactionCache]:
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    yield TransactionCache(redis, ttl_seconds=30)
    await redis.flushdb()
    await redis.aclose()


class TestVersionedCache:
    async def test_miss_then_hit(self, cache: TransactionCache) -> None:
        """A body put under the current version is served until the next change."""
        version, body = await cache.get("txn_1")
        assert body is None
        await cache.put("txn_1", version, b'{"status":"pending"}')
        assert await cache.get("txn_1") == (version, b'{"status":"pending"}')

    async def test_a_change_makes_the_old_body_unreachable(self, cache: TransactionCache) -> None:
        """After invalidate (a committed change) readers miss and go to the database."""
        version, _ = await cache.get("txn_2")
        await cache.put("txn_2", version, b"old")
        await cache.invalidate("txn_2")
        new_version, body = await cache.get("txn_2")
        assert body is None
        assert new_version != version

    async def test_a_racing_reader_cannot_cache_a_stale_status(
        self, cache: TransactionCache
    ) -> None:
        """Reader reads the version, the writer commits and bumps it, the reader then caches the
        old row: it lands under the old version, and the next reader still misses."""
        stale_version, _ = await cache.get("txn_3")
        await cache.invalidate("txn_3")  # the change commits here
        await cache.put("txn_3", stale_version, b"stale")
        _, body = await cache.get("txn_3")
        assert body is None

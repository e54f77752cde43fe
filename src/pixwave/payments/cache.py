"""`GET /v1/transactions/{id}` from Redis, never stale after a status change commits.

Versioned keys: every change bumps ``…:{id}:v`` after its commit, and readers look up the data
under the current version. A reader that read the database just before a commit can only fill
the *old* version's slot, which nobody asks for any more — so there is no window in which a
stale status is cached under the live key. One Redis round trip per hit (a Lua script).
"""

from __future__ import annotations

from redis.asyncio import Redis

_LOOKUP = """
local version = redis.call('GET', KEYS[1]) or '0'
return {version, redis.call('GET', KEYS[2] .. version)}
"""


class TransactionCache:
    def __init__(self, redis: Redis, ttl_seconds: float, prefix: str = "pixwave:txn:") -> None:
        self.redis = redis
        self.ttl = max(1, int(ttl_seconds))
        self.prefix = prefix
        self._lookup = redis.register_script(_LOOKUP)

    def _keys(self, transaction_id: str) -> tuple[str, str]:
        # One hash tag per transaction: the lookup script reads both keys, so on Redis Cluster
        # they must live in one slot.
        tagged = f"{self.prefix}{{{transaction_id}}}"
        return f"{tagged}:v", f"{tagged}:d:"

    async def get(self, transaction_id: str) -> tuple[str, bytes | None]:
        """(version, cached body or None)."""
        version_key, data_key = self._keys(transaction_id)
        version, body = await self._lookup(keys=[version_key, data_key])
        return (version.decode() if isinstance(version, bytes) else str(version)), body

    async def put(self, transaction_id: str, version: str, body: bytes) -> None:
        _, data_key = self._keys(transaction_id)
        await self.redis.set(data_key + version, body, ex=self.ttl)

    async def invalidate(self, transaction_id: str) -> None:
        """Called after a change commits: later readers miss the old version."""
        version_key, _ = self._keys(transaction_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(version_key)
            pipe.expire(version_key, 7 * 86400)
            await pipe.execute()

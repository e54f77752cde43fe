"""Short-lived named locks: Redis when configured (shared by every process), memory otherwise.

Used to detect a request that is still running under the same idempotency key. The lock is a
fast path, not the guarantee: exactly-once rests on the database's unique key.
"""

from __future__ import annotations

import secrets
import time
from typing import Protocol

from redis.asyncio import Redis

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


class LockManager(Protocol):
    async def acquire(self, name: str, ttl_seconds: float) -> str | None:
        """Return a token if the lock was free, None if someone holds it."""

    async def release(self, name: str, token: str) -> None:
        """Release only if `token` still owns the lock."""

    async def extend(self, name: str, token: str, ttl_seconds: float) -> bool:
        """Push the expiry to now + ttl if `token` still owns the lock; False if it lost it."""


class MemoryLocks:
    """For the embedded default, where one process is the whole deployment."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[str, float]] = {}

    async def acquire(self, name: str, ttl_seconds: float) -> str | None:
        now = time.monotonic()
        current = self._held.get(name)
        if current is not None and current[1] > now:
            return None
        token = secrets.token_hex(8)
        self._held[name] = (token, now + ttl_seconds)
        return token

    async def release(self, name: str, token: str) -> None:
        current = self._held.get(name)
        if current is not None and current[0] == token:
            del self._held[name]

    async def extend(self, name: str, token: str, ttl_seconds: float) -> bool:
        current = self._held.get(name)
        now = time.monotonic()
        if current is None or current[0] != token or current[1] <= now:
            return False
        self._held[name] = (token, now + ttl_seconds)
        return True


class RedisLocks:
    def __init__(self, redis: Redis, prefix: str = "pixwave:lock:") -> None:
        self.redis = redis
        self.prefix = prefix
        self._release = redis.register_script(_RELEASE)
        self._extend = redis.register_script(_EXTEND)

    async def acquire(self, name: str, ttl_seconds: float) -> str | None:
        token = secrets.token_hex(8)
        ok = await self.redis.set(self.prefix + name, token, nx=True, px=int(ttl_seconds * 1000))
        return token if ok else None

    async def release(self, name: str, token: str) -> None:
        await self._release(keys=[self.prefix + name], args=[token])

    async def extend(self, name: str, token: str, ttl_seconds: float) -> bool:
        extended = await self._extend(
            keys=[self.prefix + name], args=[token, int(ttl_seconds * 1000)]
        )
        return bool(extended)

"""Revocations take effect at once in every process.

Each API process caches token lookups (see :mod:`pixwave.accounts.auth`). A revocation or a
deactivation commits in the database, then :meth:`TokenEvictions.announce` evicts the tokens
from this process's cache and publishes their hashes on a Redis channel; every API process runs
a :class:`EvictionListener` that evicts what it hears. Pub/sub delivers only to connected
subscribers, so a listener that lost its connection clears its whole cache when it subscribes
again: whatever it missed meanwhile cannot outlive the reconnection. With no Redis (the
embedded default) the API is one process and the local eviction is the whole story.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Final

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from pixwave.accounts.auth import TokenCache

log = structlog.get_logger("pixwave.auth")

CHANNEL: Final = "pixwave:auth:evict"


class TokenEvictions:
    """Evict token hashes here and, through Redis, in every other process."""

    def __init__(self, cache: TokenCache | None, redis: Redis | None) -> None:
        """``cache``: this process's, or None for a process that serves no requests (the CLI)."""
        self.cache = cache
        self.redis = redis

    async def announce(self, token_hashes: Sequence[str]) -> bool:
        """Evict now; False when other processes could not be told (they catch up within
        TOKEN_CACHE_SECONDS, the cache's lifetime)."""
        if self.cache is not None:
            self.cache.evict(token_hashes)
        if self.redis is None or not token_hashes:
            return True
        try:
            await self.redis.publish(CHANNEL, ",".join(token_hashes))
        except (RedisError, OSError) as exc:
            log.error(
                "auth.eviction_not_published",
                tokens=len(token_hashes),
                error=repr(exc),
                detail="other API processes keep cached lookups up to TOKEN_CACHE_SECONDS",
            )
            return False
        return True


class EvictionListener:
    """One per API process: applies the evictions other processes publish."""

    def __init__(self, redis: Redis, cache: TokenCache, *, retry_seconds: float = 1.0) -> None:
        self.redis = redis
        self.cache = cache
        self.retry_seconds = retry_seconds
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="pixwave.auth.evictions")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except (RedisError, OSError) as exc:
                self.subscribed.clear()
                log.warning("auth.eviction_listener_lost", error=repr(exc))
                await asyncio.sleep(self.retry_seconds)

    async def _listen(self) -> None:
        async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(CHANNEL)
            # Anything published while this process was not subscribed is lost to it.
            self.cache.clear()
            self.subscribed.set()
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is None or message.get("type") != "message":
                    continue
                data = message["data"]
                text = data.decode() if isinstance(data, bytes) else str(data)
                self.cache.evict(h for h in text.split(",") if h)

"""Long-lived things one process shares: engine, sessions, Redis, locks, caches.

Built once by the app's lifespan (or a CLI command) and handed to dependencies through
`app.state.resources`, so tests can build their own against other databases.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pixwave.accounts.auth import TokenCache
from pixwave.config import Settings
from pixwave.db import create_engine, create_sessionmaker
from pixwave.gateways.base import PixGateway
from pixwave.gateways.registry import build_gateways
from pixwave.kit.idempotency import Idempotency
from pixwave.kit.locks import LockManager, MemoryLocks, RedisLocks


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis | None
    locks: LockManager
    idempotency: Idempotency
    token_cache: TokenCache
    #: Connectors by gateway name; the simulators' base URL decides which run sandboxed.
    gateways: dict[str, PixGateway] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        database_url: str | None = None,
        sandbox_base_url: str | None = None,
        clocks: Mapping[str, Callable[[], datetime]] | None = None,
    ) -> Resources:
        engine = create_engine(settings, database_url)
        sessionmaker = create_sessionmaker(engine)
        redis: Redis | None = None
        locks: LockManager
        if settings.redis_dsn:
            redis = Redis.from_url(
                settings.redis_dsn,
                socket_timeout=settings.redis_timeout,
                socket_connect_timeout=settings.redis_timeout,
            )
            locks = RedisLocks(redis)
        else:
            locks = MemoryLocks()
        return cls(
            settings=settings,
            engine=engine,
            sessionmaker=sessionmaker,
            redis=redis,
            locks=locks,
            idempotency=Idempotency(
                sessionmaker,
                locks,
                ttl_seconds=settings.idempotency_ttl_seconds,
                lock_seconds=settings.idempotency_lock_seconds,
            ),
            token_cache=TokenCache(settings.token_cache_seconds),
            gateways=build_gateways(settings, sandbox_base_url=sandbox_base_url, clocks=clocks),
        )

    async def close(self) -> None:
        for gateway in self.gateways.values():
            await gateway.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()


async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for reads; it never commits (writes go through the idempotency runner)."""
    resources: Resources = request.app.state.resources
    async with resources.sessionmaker() as session:
        yield session


ReadSession = Annotated[AsyncSession, Depends(read_session)]

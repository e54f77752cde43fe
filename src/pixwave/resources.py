"""Long-lived things one process shares: engine, sessions, Redis, locks, caches.

Built once by the app's lifespan (or a CLI command) and handed to dependencies through
`app.state.resources`, so tests can build their own against other databases.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pixwave.accounts.auth import TokenCache
from pixwave.accounts.revocation import EvictionListener, TokenEvictions
from pixwave.config import Settings
from pixwave.db import create_engine, create_sessionmaker
from pixwave.gateways.base import PixGateway
from pixwave.gateways.health import HealthConfig, HealthStore, build_health_store
from pixwave.gateways.registry import build_gateways, configured, simulated_gateways
from pixwave.gateways.router import Router
from pixwave.gateways.spec import GatewaySpec
from pixwave.kit.idempotency import Idempotency
from pixwave.kit.locks import LockManager, MemoryLocks, RedisLocks
from pixwave.notifications.sns import SnsPublisher
from pixwave.payments.cache import TransactionCache

if TYPE_CHECKING:
    from taskiq import AsyncBroker

    from pixwave.payments.engine import Engine
    from pixwave.worker.jobs import JobQueue


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
    health: HealthStore = field(default=None)  # type: ignore[assignment]
    router: Router = field(default=None)  # type: ignore[assignment]
    broker: AsyncBroker = field(default=None)  # type: ignore[assignment]
    jobs: JobQueue = field(default=None)  # type: ignore[assignment]
    payments: Engine = field(default=None)  # type: ignore[assignment]
    transaction_cache: TransactionCache | None = None
    #: Where gateways post notifications: the public URL, or loopback for mounted simulators.
    webhook_base_urls: dict[str, str] = field(default_factory=dict)
    #: Gateways served by a built-in simulator (never beside a real one: see the registry).
    simulated: frozenset[str] = frozenset()
    #: Revocations evict cached token lookups here and in every other process.
    token_evictions: TokenEvictions = field(default=None)  # type: ignore[assignment]
    #: Applies other processes' evictions; started by the API (see ``app.py``).
    eviction_listener: EvictionListener | None = None
    #: Where the outbox relay publishes, when AWS_SNS_TOPIC_ARN is set.
    sns: SnsPublisher | None = None
    #: Each gateway's family spec (webhook paths, id rules); absent for test doubles.
    specs: dict[str, GatewaySpec[Any]] = field(default_factory=dict)

    def webhook_url(self, gateway: str) -> str | None:
        base = self.webhook_base_urls.get(gateway)
        return None if base is None else f"{base}/webhooks/{gateway}"

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        database_url: str | None = None,
        sandbox_base_url: str | None = None,
        clocks: Mapping[str, Callable[[], datetime]] | None = None,
        gateways: dict[str, PixGateway] | None = None,
    ) -> Resources:
        """Everything one process needs. ``gateways`` replaces the connectors built from
        settings (tests point them at simulators running elsewhere)."""
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
        token_cache = TokenCache(settings.token_cache_seconds)
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
            token_cache=token_cache,
            token_evictions=TokenEvictions(token_cache, redis),
            eviction_listener=None if redis is None else EvictionListener(redis, token_cache),
            gateways=(
                gateways
                if gateways is not None
                else build_gateways(settings, sandbox_base_url=sandbox_base_url, clocks=clocks)
            ),
        ).wire(sandbox_base_url)

    def wire(self, sandbox_base_url: str | None) -> Resources:
        """Build what depends on the rest: health, router, jobs, the engine, the cache."""
        from pixwave.payments.engine import Engine
        from pixwave.worker.broker import build_broker, register_jobs

        settings = self.settings
        self.simulated = frozenset(simulated_gateways(settings)) & set(self.gateways)
        entries = [entry for entry in configured() if entry.name in self.gateways]
        self.specs = {entry.name: entry.spec for entry in entries}
        self.health = build_health_store(
            self.redis,
            HealthConfig(
                window_seconds=settings.health_window_seconds,
                failure_threshold=settings.circuit_failure_threshold,
                failure_rate=settings.circuit_failure_rate,
                consecutive_failures=settings.circuit_consecutive_failures,
                open_seconds=settings.circuit_open_seconds,
                probe_seconds=max(settings.gateway_read_timeout * 2, 1.0),
                min_samples=settings.routing_min_samples,
            ),
            gateways=list(self.gateways),
        )
        self.router = Router(
            self.gateways,
            self.health,
            simulated=self.simulated,
            fees={entry.name: entry.instance.settings.fee_schedule for entry in entries},
        )
        self.sns = SnsPublisher.from_settings(settings)
        self.broker = build_broker(settings)
        self.jobs = register_jobs(self.broker, self)
        self.payments = Engine.from_resources(self)
        if self.redis is not None and settings.transaction_cache_seconds > 0:
            self.transaction_cache = TransactionCache(
                self.redis, settings.transaction_cache_seconds
            )
        loopback = sandbox_base_url.rsplit("/sandbox", 1)[0] if sandbox_base_url else None
        for name in self.gateways:
            base = loopback if name in self.simulated and loopback else settings.public_url
            self.webhook_base_urls[name] = base.rstrip("/")
        return self

    async def close(self) -> None:
        if self.eviction_listener is not None:
            await self.eviction_listener.stop()
        if self.broker is not None:
            await self.broker.shutdown()
        if self.sns is not None:
            await self.sns.close()
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

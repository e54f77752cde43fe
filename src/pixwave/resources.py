"""Long-lived things one process shares: engine, sessions, Redis, locks, caches.

Built once by the composition root (`bootstrap.build_resources`, from the app's lifespan or a
CLI command) and handed to dependencies through `app.state.resources`, so tests can build their
own against other databases.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pixwave.accounts.auth import TokenCache
from pixwave.accounts.revocation import EvictionListener, TokenEvictions
from pixwave.config import Settings
from pixwave.gateways.base import PixGateway
from pixwave.gateways.health import HealthStore
from pixwave.gateways.router import Router
from pixwave.gateways.spec import GatewaySpec
from pixwave.kit.idempotency import Idempotency
from pixwave.kit.locks import LockManager
from pixwave.notifications.sns import SnsPublisher
from pixwave.payments.cache import TransactionCache

if TYPE_CHECKING:
    from taskiq import AsyncBroker

    from pixwave.kit.batching import Batcher
    from pixwave.kit.groupcommit import GroupCommit
    from pixwave.limits.group import PayerGroup
    from pixwave.limits.service import MoneyLimits
    from pixwave.payments.engine import Engine
    from pixwave.worker.jobs import JobQueue


@dataclass
class Resources:
    """Built once per process by :func:`pixwave.bootstrap.build_resources`; every field is
    there from the start. Tests may swap one (``resources.jobs = …``) for a double."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis | None
    locks: LockManager
    idempotency: Idempotency
    token_cache: TokenCache
    #: Revocations evict cached token lookups here and in every other process.
    token_evictions: TokenEvictions
    #: Applies other processes' evictions; started by the API (see ``app.py``).
    eviction_listener: EvictionListener | None
    #: Connectors by gateway name.
    gateways: dict[str, PixGateway]
    #: Each gateway's family spec (webhook paths, id rules); absent for test doubles.
    specs: dict[str, GatewaySpec[Any]]
    #: Gateways served by a built-in simulator (never beside a real one: see the registry).
    simulated: frozenset[str]
    health: HealthStore
    router: Router
    broker: AsyncBroker
    jobs: JobQueue
    payments: Engine
    transaction_cache: TransactionCache | None
    #: Where gateways post notifications: the public URL, or loopback for mounted simulators.
    webhook_base_urls: dict[str, str]
    #: Where the outbox relay publishes, when AWS_SNS_TOPIC_ARN is set.
    sns: SnsPublisher | None
    #: Operator webhook URLs may resolve to private addresses (``private_urls_allowed``,
    #: decided once at start: it reads every gateway family's settings).
    private_webhook_urls: bool
    #: Judges withdrawals and transfers against the users' money limits (its clock is
    #: swapped in tests).
    limits: MoneyLimits
    #: Groups concurrent transfers into one commit (`GROUP_COMMIT`); None runs each alone.
    transfers: GroupCommit[PayerGroup] | None
    #: Groups concurrent withdrawals' acceptance (their holds) the same way.
    withdrawals: GroupCommit[PayerGroup] | None
    #: Inbox events handled together, payment looks taken together, the credits of each
    #: batch in one commit (`ENGINE_BATCH`); None moves each alone. Set right after
    #: construction (they run jobs on these resources).
    inbox_batch: Batcher[str, None] | None = None
    advance_batch: Batcher[str, None] | None = None

    def webhook_url(self, gateway: str) -> str | None:
        base = self.webhook_base_urls.get(gateway)
        return None if base is None else f"{base}/webhooks/{gateway}"

    async def close(self) -> None:
        if self.eviction_listener is not None:
            await self.eviction_listener.stop()
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

"""The composition root: everything one process uses, built once, in one pass, in order.

Each component is built from the ones before it and declares what it takes (the payments
engine its sessions, gateways, router, leases and cache; the router its gateways and health
store), so nothing starts half-built and nothing is filled in later. The last step binds the
job handlers to the finished :class:`~pixwave.resources.Resources` (their context).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from redis.asyncio import Redis

from pixwave.accounts.auth import TokenCache
from pixwave.accounts.revocation import EvictionListener, TokenEvictions
from pixwave.config import Settings
from pixwave.db import create_engine, create_sessionmaker
from pixwave.gateways.base import PixGateway
from pixwave.gateways.health import HealthConfig, build_health_store
from pixwave.gateways.registry import build_gateways, configured, simulated_gateways
from pixwave.gateways.router import Router
from pixwave.inbox.tasks import inbox_batcher
from pixwave.kit.groupcommit import GroupCommit, Prepare, S
from pixwave.kit.idempotency import Idempotency
from pixwave.kit.locks import LockManager, MemoryLocks, RedisLocks
from pixwave.limits.group import prepare_payers
from pixwave.limits.service import MoneyLimits
from pixwave.notifications.sns import SnsPublisher
from pixwave.notifications.webhooks.urls import private_urls_allowed
from pixwave.payments.cache import TransactionCache
from pixwave.payments.engine import Engine
from pixwave.payments.engine.settings import EngineSettings
from pixwave.payments.lease import build_leases
from pixwave.payments.tasks import advance_batcher
from pixwave.resources import Resources
from pixwave.worker.broker import build_broker, job_queue, register_jobs


def build_resources(
    settings: Settings,
    *,
    database_url: str | None = None,
    sandbox_base_url: str | None = None,
    clocks: Mapping[str, Callable[[], datetime]] | None = None,
    gateways: dict[str, PixGateway] | None = None,
) -> Resources:
    """Everything one process needs. ``sandbox_base_url`` is where this process mounts the
    built-in simulators (``…/sandbox``), ``clocks`` their clocks; ``gateways`` replaces the
    connectors built from the environment (tests point them at simulators elsewhere)."""
    database = create_engine(settings, database_url)
    sessionmaker = create_sessionmaker(database)
    redis: Redis | None = None
    locks: LockManager = MemoryLocks()
    if settings.redis_dsn:
        redis = Redis.from_url(
            settings.redis_dsn,
            socket_timeout=settings.redis_timeout,
            socket_connect_timeout=settings.redis_timeout,
        )
        locks = RedisLocks(redis)
    token_cache = TokenCache(settings.token_cache_seconds)

    if gateways is None:
        gateways = build_gateways(settings, sandbox_base_url=sandbox_base_url, clocks=clocks)
    simulated = frozenset(simulated_gateways(settings)) & set(gateways)
    entries = [entry for entry in configured() if entry.name in gateways]
    health = build_health_store(redis, health_config(settings), gateways=list(gateways))
    router = Router(
        gateways,
        health,
        simulated=simulated,
        fees={entry.name: entry.instance.settings.fee_schedule for entry in entries},
    )
    webhook_base_urls = _webhook_base_urls(settings, gateways, simulated, sandbox_base_url)
    cache = (
        TransactionCache(redis, settings.transaction_cache_seconds)
        if redis is not None and settings.transaction_cache_seconds > 0
        else None
    )
    broker = build_broker(settings)
    idempotency = Idempotency(
        sessionmaker,
        locks,
        ttl_seconds=settings.idempotency_ttl_seconds,
        lock_seconds=settings.idempotency_lock_seconds,
    )

    def group(name: str, prepare: Prepare[S]) -> GroupCommit[S] | None:
        if not settings.group_commit:
            return None
        return GroupCommit(
            name,
            sessionmaker,
            idempotency.store,
            prepare=prepare,
            window_seconds=settings.group_commit_window_ms / 1000,
            max_size=settings.group_commit_max_size,
        )

    resources = Resources(
        settings=settings,
        engine=database,
        sessionmaker=sessionmaker,
        redis=redis,
        locks=locks,
        idempotency=idempotency,
        token_cache=token_cache,
        token_evictions=TokenEvictions(token_cache, redis),
        eviction_listener=None if redis is None else EvictionListener(redis, token_cache),
        gateways=gateways,
        specs={entry.name: entry.spec for entry in entries},
        simulated=simulated,
        health=health,
        router=router,
        broker=broker,
        jobs=job_queue(broker),
        payments=Engine(
            sessionmaker=sessionmaker,
            gateways=gateways,
            router=router,
            leases=build_leases(locks, redis),
            settings=EngineSettings.from_settings(settings),
            webhook_url=lambda gateway: _webhook_url(webhook_base_urls, gateway),
            invalidate=None if cache is None else cache.invalidate,
        ),
        transaction_cache=cache,
        webhook_base_urls=webhook_base_urls,
        sns=SnsPublisher.from_settings(settings),
        private_webhook_urls=private_urls_allowed(settings),
        limits=MoneyLimits(settings),
        transfers=group("transfers", prepare_payers),
        withdrawals=group("withdrawals", prepare_payers),
    )
    resources.inbox_batch = inbox_batcher(resources)
    resources.advance_batch = advance_batcher(resources)
    register_jobs(broker, resources)
    return resources


def health_config(settings: Settings) -> HealthConfig:
    return HealthConfig(
        window_seconds=settings.health_window_seconds,
        failure_threshold=settings.circuit_failure_threshold,
        failure_rate=settings.circuit_failure_rate,
        consecutive_failures=settings.circuit_consecutive_failures,
        open_seconds=settings.circuit_open_seconds,
        probe_seconds=max(settings.gateway_read_timeout * 2, 1.0),
        min_samples=settings.routing_min_samples,
    )


def _webhook_base_urls(
    settings: Settings,
    gateways: Mapping[str, PixGateway],
    simulated: frozenset[str],
    sandbox_base_url: str | None,
) -> dict[str, str]:
    """Where each gateway posts notifications: this process over loopback for a mounted
    simulator, the public URL otherwise."""
    loopback = sandbox_base_url.rsplit("/sandbox", 1)[0] if sandbox_base_url else None
    return {
        name: (loopback if name in simulated and loopback else settings.public_url).rstrip("/")
        for name in gateways
    }


def _webhook_url(base_urls: Mapping[str, str], gateway: str) -> str | None:
    base = base_urls.get(gateway)
    return None if base is None else f"{base}/webhooks/{gateway}"

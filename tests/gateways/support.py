"""Helpers shared by the gateway health, router and state tests: a fake clock, stores of
both kinds that share state the way each kind does, fake connectors and a small world."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from redis.asyncio import Redis

from pixwave.gateways.base import (
    Capability,
    Charge,
    ChargeRequest,
    InboundWebhook,
    PixGateway,
    Refund,
    RefundRequest,
    Send,
    SendRequest,
    WebhookEvent,
)
from pixwave.gateways.errors import GatewayError, GatewayNotFound, GatewayUnavailable, Outcome
from pixwave.gateways.health import (
    HealthConfig,
    HealthStore,
    MemoryHealthStore,
    Operation,
    RedisHealthStore,
)
from pixwave.gateways.router import Router
from tests.conftest import REDIS_URL

#: A multiple of 6 s, so the default buckets start exactly here.
T0 = 1_800_000_000.0
GATEWAYS = ("mercadopago", "efi")
CONFIG = HealthConfig()


class FakeClock:
    def __init__(self, start: float = T0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass
class Backend:
    """Builds stores of one kind that share state the way that kind shares it."""

    kind: str
    clock: FakeClock
    prefix: str
    clients: list[Redis] = field(default_factory=list)

    def _client(self) -> Redis:
        client = Redis.from_url(REDIS_URL, socket_timeout=3, socket_connect_timeout=3)
        self.clients.append(client)
        return client

    def store(self, config: HealthConfig = CONFIG) -> HealthStore:
        if self.kind == "memory":
            return MemoryHealthStore(config, gateways=GATEWAYS, now=self.clock)
        return RedisHealthStore(
            self._client(), config, gateways=GATEWAYS, now=self.clock, prefix=self.prefix
        )

    def peer(self, store: HealthStore) -> HealthStore:
        """Another process's view: a second Redis connection, or the same memory store."""
        if isinstance(store, RedisHealthStore):
            return RedisHealthStore(
                self._client(), store.config, gateways=GATEWAYS, now=self.clock, prefix=self.prefix
            )
        return store

    async def close(self) -> None:
        for client in self.clients:
            async for key in client.scan_iter(match=f"{self.prefix}*"):
                await client.delete(key)
            await client.aclose()


def new_redis_backend() -> Backend:
    return Backend("redis", FakeClock(), f"test:health:{uuid.uuid4().hex[:8]}:")


ALL = frozenset({Capability.CHARGE, Capability.SEND, Capability.REFUND, Capability.WEBHOOK})


class FakeGateway:
    """A connector whose reads answer "not found" (it is up) or raise ``error`` (it is down)."""

    def __init__(
        self,
        name: str,
        capabilities: Iterable[Capability] = ALL,
        *,
        error: GatewayError | None = None,
    ) -> None:
        self.name = name
        self.capabilities = frozenset(capabilities)
        self.error = error
        self.reads: list[str] = []

    def _answer(self, method: str, reference: str) -> GatewayError:
        self.reads.append(method)
        if self.error is not None:
            return self.error
        return GatewayNotFound(
            f"no {reference}", gateway=self.name, operation=method, code="not_found"
        )

    async def get_send(self, reference: str, send_id: str | None = None) -> Send:
        raise self._answer("get_send", reference)

    async def get_charge(self, charge_id: str) -> Charge:
        raise self._answer("get_charge", charge_id)

    async def get_refund(
        self, *, reference: str, charge_id: str, end_to_end_id: str | None, refund_id: str | None
    ) -> Refund:
        raise self._answer("get_refund", reference)

    async def create_charge(self, request: ChargeRequest) -> Charge:
        raise AssertionError("the router never moves money")

    async def cancel_charge(self, charge_id: str) -> Charge:
        raise AssertionError("the router never moves money")

    async def send_pix(self, request: SendRequest) -> Send:
        raise AssertionError("the router never moves money")

    async def refund(self, request: RefundRequest) -> Refund:
        raise AssertionError("the router never moves money")

    def verify_webhook(self, request: InboundWebhook) -> list[WebhookEvent]:
        raise AssertionError("not used")

    async def aclose(self) -> None:
        return None


def down(name: str) -> GatewayUnavailable:
    return GatewayUnavailable("connect failed", gateway=name, operation="get_send", code="x")


class World:
    """Two fake gateways behind a memory store on a fake clock."""

    def __init__(
        self,
        *gateways: FakeGateway,
        config: HealthConfig | None = None,
        simulated: Collection[str] = (),
    ) -> None:
        self.clock = FakeClock()
        self.gateways = {g.name: g for g in gateways} or {
            "mercadopago": FakeGateway("mercadopago"),
            "efi": FakeGateway("efi"),
        }
        self.health: HealthStore = MemoryHealthStore(config, gateways=self.gateways, now=self.clock)
        typed: dict[str, PixGateway] = dict(self.gateways)
        self.router = Router(typed, self.health, simulated=simulated)

    async def calls(
        self,
        name: str,
        *,
        ok: int = 0,
        failed: int = 0,
        latency_ms: int = 100,
        operation: str = "send",
    ) -> None:
        for _ in range(ok):
            await self.router.record(name, operation, Outcome.SUCCEEDED, latency_ms)
        for _ in range(failed):
            await self.router.record(name, operation, Outcome.UNAVAILABLE, latency_ms)

    async def send_candidates(self, exclude: Collection[str] = ()) -> list[str]:
        return await self.router.candidates(Operation.SEND, exclude=exclude)

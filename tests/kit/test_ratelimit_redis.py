"""The rate limiter on a real Redis, in front of the real app: shared by instances, locking an
address out before any token lookup, failing open, and keyed by the address uvicorn decided.

Its counters live in their own Redis database (:data:`LIMITER_DB`), flushed before each test;
nothing else is touched. Without Redis these tests fail under CI and skip elsewhere.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
import redis
import uvicorn
from redis.asyncio import Redis
from redis.crc import key_slot
from starlette.types import ASGIApp, Receive, Scope, Send

from pixwave.accounts.service import hash_token
from pixwave.app import create_app
from pixwave.kit.ratelimit import KEY_PREFIX, Policy, Rate, RateLimit, RedisStore, client_key
from pixwave.observability.metrics import RATELIMIT_UNAVAILABLE
from pixwave.resources import Resources
from pixwave.sandbox.server import bind
from tests.conftest import make_settings
from tests.factories import create_actor
from tests.servers import ServerThread
from tests.support import free_port

#: The limiter's own database on the test Redis (the suite's is 15, e2e's 13, the benchmarks' 11
#: and 14); TEST_RATELIMIT_REDIS_DB moves it.
LIMITER_DB = int(os.environ.get("TEST_RATELIMIT_REDIS_DB", "10"))
#: The address httpx's ASGI transport reports.
TEST_CLIENT = "127.0.0.1"

POLICY = Policy(per_token=Rate(3, 60), per_ip=Rate(100, 60), auth_failures=Rate(2, 300))


@pytest.fixture
def limiter_url(redis_url: str) -> str:
    """The limiter's database, emptied (``redis_url`` fails or skips when Redis is absent)."""
    url = f"{redis_url.rsplit('/', 1)[0]}/{LIMITER_DB}"
    with redis.Redis.from_url(url) as client:
        client.flushdb()
    return url


@pytest.fixture
async def limiter_redis(limiter_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(limiter_url, socket_timeout=2)
    yield client
    await client.aclose()


def limited(app: ASGIApp, client: Redis, timeout: float = 0.5) -> RateLimit:
    return RateLimit(app, POLICY, store=RedisStore(client, timeout))


@asynccontextmanager
async def over_asgi(app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(TEST_CLIENT, 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://pixwave.test") as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def failures_key(address: str = TEST_CLIENT) -> str:
    return POLICY.failure(client_key(address)).key


class TestShared:
    async def test_two_instances_share_one_token_limit(
        self, resources: Resources, limiter_redis: Redis, limiter_url: str
    ) -> None:
        """Two app instances, each with its own Redis client: the token's 3 per minute is
        spent across both, and the 4th request is refused by whichever gets it."""
        actor = await create_actor(resources)
        other_client = Redis.from_url(limiter_url)
        first = limited(create_app(resources.settings, resources), limiter_redis)
        second = limited(create_app(resources.settings, resources), other_client)
        try:
            async with over_asgi(first) as a, over_asgi(second) as b:
                remaining = []
                for client in (a, b, a):
                    response = await client.get("/v1/wallet", headers=bearer(actor.token))
                    assert response.status_code == 200
                    remaining.append(response.headers["RateLimit-Remaining"])
                refused = await b.get("/v1/wallet", headers=bearer(actor.token))
        finally:
            await other_client.aclose()
        assert remaining == ["2", "1", "0"]
        assert refused.status_code == 429
        assert refused.json()["code"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60

    async def test_keys_share_one_cluster_slot_and_expire(
        self, resources: Resources, limiter_redis: Redis
    ) -> None:
        """Every key of a request lives in one Redis Cluster slot and has an expiry."""
        app = limited(create_app(resources.settings, resources), limiter_redis)
        async with over_asgi(app) as client:
            await client.get("/v1/wallet", headers=bearer("pxw_unknown"))
        keys = [key.decode() async for key in limiter_redis.scan_iter(f"{KEY_PREFIX}*")]
        rules = POLICY.rules(TEST_CLIENT, "pxw_unknown")
        assert sorted(keys) == sorted(rule.key for rule in rules)  # the 401 counted the gate's
        assert len({key_slot(key.encode()) for key in keys}) == 1
        for key in keys:
            assert 0 < await limiter_redis.pttl(key) <= 300_000


class TestAuthenticationFailures:
    async def test_lock_out_before_any_lookup_then_recover(
        self, resources: Resources, limiter_redis: Redis, limiter_url: str
    ) -> None:
        """Two 401s on one instance lock the address out on another, before its token is even
        looked up; once the failures' window has passed, the same request is served."""
        actor = await create_actor(resources)
        first = limited(create_app(resources.settings, resources), limiter_redis)
        other_client = Redis.from_url(limiter_url)
        second = limited(create_app(resources.settings, resources), other_client)
        try:
            async with over_asgi(first) as a, over_asgi(second) as b:
                for n in range(2):
                    wrong = await a.get("/v1/wallet", headers=bearer(f"pxw_wrong{n}"))
                    assert wrong.status_code == 401
                locked = await b.get("/v1/wallet", headers=bearer(actor.token))
                assert locked.status_code == 429
                assert 299 <= int(locked.headers["Retry-After"]) <= 300
                assert locked.headers["RateLimit-Limit"] == "2"
                assert resources.token_cache.get(hash_token(actor.token)) == (False, None)
                # The window passing, without waiting five minutes.
                await limiter_redis.delete(failures_key())
                served = await b.get("/v1/wallet", headers=bearer(actor.token))
        finally:
            await other_client.aclose()
        assert served.status_code == 200

    async def test_exempt_routes_neither_count_nor_lock(
        self, resources: Resources, limiter_redis: Redis
    ) -> None:
        """Probes and gateway webhooks (whose refusals are 401 too) leave no counter."""
        app = limited(create_app(resources.settings, resources), limiter_redis)
        async with over_asgi(app) as client:
            for _ in range(5):
                assert (await client.get("/healthz")).status_code == 200
                webhook = await client.post("/webhooks/mercadopago", json={"id": "1"})
                assert "RateLimit-Limit" not in webhook.headers
        assert [key async for key in limiter_redis.scan_iter(f"{KEY_PREFIX}*")] == []


class TestFailOpen:
    async def test_closed_port_serves_unlimited(self, resources: Resources) -> None:
        """Redis unreachable: every request is served, without headers, and counted."""
        actor = await create_actor(resources)
        dead = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
        app = limited(create_app(resources.settings, resources), dead)
        before = RATELIMIT_UNAVAILABLE._value.get()
        try:
            async with over_asgi(app) as client:
                for _ in range(5):
                    response = await client.get("/v1/wallet", headers=bearer(actor.token))
                    assert response.status_code == 200
                    assert "RateLimit-Limit" not in response.headers
        finally:
            await dead.aclose()
        assert RATELIMIT_UNAVAILABLE._value.get() >= before + 5

    async def test_silent_redis_times_out_fast(self, resources: Resources) -> None:
        """A Redis that accepts but never answers costs the timeout (50 ms), not the client's
        2 s socket timeout: the request is served."""
        actor = await create_actor(resources)
        with socket.create_server(("127.0.0.1", 0)) as silent:
            port = silent.getsockname()[1]
            mute = Redis(host="127.0.0.1", port=port, socket_timeout=2)
            app = limited(create_app(resources.settings, resources), mute, timeout=0.05)
            try:
                async with over_asgi(app) as client:
                    started = time.perf_counter()
                    response = await client.get("/v1/wallet", headers=bearer(actor.token))
                    elapsed = time.perf_counter() - started
            finally:
                await mute.aclose()
        assert response.status_code == 200
        assert elapsed < 1.0


class TestWiring:
    async def test_create_app_installs_the_limiter(self, resources: Resources) -> None:
        """RATE_LIMIT_ENABLED=true: the app's own Redis counts; probes carry no headers."""
        settings = make_settings(
            database_url=resources.settings.database_url,
            redis_url=resources.settings.redis_url,
            rate_limit_enabled=True,
            rate_limit_per_token="5/minute",
        )
        actor = await create_actor(resources)
        async with over_asgi(create_app(settings, resources)) as client:
            response = await client.get("/v1/wallet", headers=bearer(actor.token))
            probe = await client.get("/healthz")
        assert response.status_code == 200
        assert response.headers["RateLimit-Limit"] == "5"
        assert response.headers["RateLimit-Policy"] == '5;w=60;name="token", 1200;w=60;name="ip"'
        assert "RateLimit-Limit" not in probe.headers
        assert "X-Request-ID" in response.headers

    def test_off_by_default_in_the_embedded_shape(self) -> None:
        """No Redis and nothing set: no limiter in the stack."""
        app = create_app(make_settings(rate_limit_enabled=None, sandbox_gateways=False))
        classes: list[object] = [middleware.cls for middleware in app.user_middleware]
        assert RateLimit not in classes


# --- behind uvicorn: which address is the key ----------------------------------------------


async def ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def served(limiter_url: str) -> Iterator[str]:
    """The limiter over a trivial app, served by uvicorn trusting X-Forwarded-For only from
    127.0.0.1 (what `pixwave api` does with FORWARDED_ALLOW_IPS=127.0.0.1)."""
    limiter = limited(ok, Redis.from_url(limiter_url))
    config = uvicorn.Config(
        limiter,
        log_level="warning",
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        lifespan="off",
    )
    thread = ServerThread(uvicorn.Server(config), bind("127.0.0.1", 0)).start()
    try:
        yield thread.base_url
    finally:
        thread.stop()


def counted_addresses(limiter_url: str) -> set[str]:
    prefix = f"{KEY_PREFIX}ip:"
    with redis.Redis.from_url(limiter_url) as client:
        return {key.decode().removeprefix(prefix) for key in client.scan_iter(f"{prefix}*")}


class TestBehindUvicorn:
    def test_forged_forwarded_for_from_a_stranger_is_ignored(
        self, served: str, limiter_url: str
    ) -> None:
        """A direct caller (127.0.0.2, not a trusted proxy) sending a new X-Forwarded-For each
        time is still counted as itself."""
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(transport=transport, base_url=served) as client:
            for n in range(3):
                client.get("/", headers={"X-Forwarded-For": f"198.51.100.{n}"})
        assert counted_addresses(limiter_url) == {"127.0.0.2"}

    def test_trusted_proxy_names_the_client(self, served: str, limiter_url: str) -> None:
        """Through the trusted proxy, the rightmost address it did not add is the key: a value
        the client put in front of the header changes nothing."""
        with httpx.Client(base_url=served) as client:
            client.get("/", headers={"X-Forwarded-For": "10.9.9.9, 203.0.113.50"})
            client.get("/", headers={"X-Forwarded-For": "10.1.1.1, 203.0.113.50"})
        assert counted_addresses(limiter_url) == {"203.0.113.50"}

"""The rate limiter's decisions, on the in-process store and a clock moved by hand.

Redis, two app instances sharing it, the wiring in `create_app` and the proxy rules are in
`test_ratelimit_redis.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from pixwave.exceptions import RateLimited
from pixwave.kit.ratelimit import (
    KEY_PREFIX,
    Kind,
    MemoryStore,
    Policy,
    Rate,
    RateLimit,
    Rule,
    Usage,
    Verdict,
    client_key,
    token_key,
)
from pixwave.observability.metrics import RATELIMIT_REJECTED, RATELIMIT_UNAVAILABLE
from tests.conftest import make_settings

GOOD = "pxw_good"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """200 for the `GOOD` token or no token, 401 for any other token (like the API)."""
    headers = dict(scope["headers"])
    authorization = headers.get(b"authorization", b"").decode()
    status = 401 if authorization and authorization != f"Bearer {GOOD}" else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def policy() -> Policy:
    """3 per minute per token, 5 per minute per address, 2 failures per 5 minutes."""
    return Policy(Rate.parse("3/minute"), Rate.parse("5/minute"), Rate.parse("2/5minutes"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    limiter = RateLimit(endpoint, policy(), store=MemoryStore(clock), clock=clock)
    transport = httpx.ASGITransport(app=limiter, client=("203.0.113.7", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://pixwave.test") as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class TestRate:
    @pytest.mark.parametrize(
        ("text", "limit", "window"),
        [
            ("600/minute", 600, 60),
            ("10/5minutes", 10, 300),
            ("10 / 5 min", 10, 300),
            ("100/30s", 100, 30),
            ("1/hour", 1, 3600),
            ("7/24h", 7, 86_400),
        ],
    )
    def test_readable_forms(self, text: str, limit: int, window: int) -> None:
        """COUNT/[N]UNIT reads as a count and a window in seconds."""
        assert Rate.parse(text) == Rate(limit, window)

    @pytest.mark.parametrize("text", ["", "600", "600/", "600/fortnight", "-1/minute", "a/s"])
    def test_malformed_is_refused_with_the_format(self, text: str) -> None:
        """Anything else names the expected format."""
        with pytest.raises(ValueError, match="COUNT/WINDOW"):
            Rate.parse(text)

    @pytest.mark.parametrize("text", ["0/minute", "1/0s", "1/25h"])
    def test_out_of_range_is_refused(self, text: str) -> None:
        """A zero count, or a window outside 1 s … 24 h, is refused."""
        with pytest.raises(ValueError, match="must be"):
            Rate.parse(text)

    def test_settings_name_the_variable(self) -> None:
        """A bad rate in the settings fails start-up naming the variable."""
        with pytest.raises(ValidationError, match="RATE_LIMIT_AUTH_FAILURES"):
            make_settings(rate_limit_auth_failures="ten per minute")


class TestDefaults:
    def test_on_with_redis_off_embedded(self) -> None:
        """Unset, the limiter is on exactly when Redis is configured."""
        assert make_settings(rate_limit_enabled=None, redis_url="redis://r:6379/0").rate_limiting
        assert not make_settings(rate_limit_enabled=None).rate_limiting
        assert not make_settings(rate_limit_enabled=False, redis_url="redis://r").rate_limiting
        assert make_settings(rate_limit_enabled=True).rate_limiting

    def test_default_rates(self) -> None:
        """600/min per token, 1200/min per address, 10 failures per 5 min."""
        assert Policy.from_settings(make_settings()) == Policy(
            Rate(600, 60), Rate(1200, 60), Rate(10, 300)
        )


def usage(kind: Kind, limit: int, count: int, reset_ms: int, *, counts: bool = True) -> Usage:
    return Usage(Rule(kind, Rate(limit, 60), f"k:{kind}", counts), count, reset_ms)


class TestHeaders:
    def test_tightest_counted_rule_is_reported(self) -> None:
        """An accepted request reports the rule with the fewest requests left, never the
        failure gate, and has no Retry-After."""
        verdict = Verdict(
            (
                usage(Kind.AUTH_FAILURES, 10, 0, 0, counts=False),
                usage(Kind.IP, 1200, 10, 30_000),
                usage(Kind.TOKEN, 600, 599, 12_001),
            )
        )
        headers = dict(verdict.headers("p"))
        assert headers == {
            b"ratelimit-limit": b"600",
            b"ratelimit-remaining": b"1",
            b"ratelimit-reset": b"13",
            b"ratelimit-policy": b"p",
        }

    def test_rejected_rule_is_reported_with_retry_after(self) -> None:
        """A refused request reports the rule it broke; Retry-After rounds up, at least 1."""
        verdict = Verdict((usage(Kind.IP, 5, 6, 1),))
        headers = dict(verdict.headers("p"))
        assert headers[b"retry-after"] == b"1"
        assert headers[b"ratelimit-remaining"] == b"0"
        assert headers[b"ratelimit-reset"] == b"1"

    def test_gate_refuses_at_its_limit(self) -> None:
        """The failure gate refuses once the failures reached the limit; a counter only past it."""
        assert usage(Kind.AUTH_FAILURES, 10, 10, 1000, counts=False).exceeded
        assert not usage(Kind.IP, 10, 10, 1000).exceeded
        assert usage(Kind.IP, 10, 11, 1000).exceeded

    def test_policy_header(self) -> None:
        """RateLimit-Policy lists the token's limit (with a token) and the address's."""
        assert policy().header(token=True) == '3;w=60;name="token", 5;w=60;name="ip"'
        assert policy().header(token=False) == '5;w=60;name="ip"'


class TestMemoryStore:
    async def test_window_counts_then_resets(self, clock: Clock) -> None:
        """A window starts at the first hit and resets exactly when it ends."""
        store = MemoryStore(clock)
        rule = Rule(Kind.IP, Rate(2, 60), "k")
        assert [(u.count, u.reset_ms) for u in await store.hit([rule])] == [(1, 60_000)]
        clock.now += 59.5
        assert [(u.count, u.reset_ms) for u in await store.hit([rule])] == [(2, 500)]
        assert (await store.hit([rule]))[0].exceeded
        clock.now += 0.5
        assert [(u.count, u.reset_ms) for u in await store.hit([rule])] == [(1, 60_000)]

    async def test_stops_at_the_first_exceeded_rule(self, clock: Clock) -> None:
        """Rules after an exceeded one are neither counted nor reported."""
        store = MemoryStore(clock)
        first, second = Rule(Kind.IP, Rate(1, 60), "a"), Rule(Kind.TOKEN, Rate(5, 60), "b")
        await store.hit([first, second])
        assert len(await store.hit([first, second])) == 1
        assert (await store.hit([second]))[0].count == 2

    async def test_gate_is_read_not_counted(self, clock: Clock) -> None:
        """A gate reads the count without adding to it."""
        store = MemoryStore(clock)
        gate = Rule(Kind.AUTH_FAILURES, Rate(2, 60), "f", counts=False)
        assert [(u.count, u.reset_ms) for u in await store.hit([gate, gate])] == [(0, 0), (0, 0)]

    async def test_full_store_forgets_expired_keys_first(self, clock: Clock) -> None:
        """Past max_keys the expired windows go; live ones stay."""
        store = MemoryStore(clock, max_keys=2)
        await store.hit([Rule(Kind.IP, Rate(5, 1), "old")])
        await store.hit([Rule(Kind.IP, Rate(5, 60), "live")])
        clock.now += 2
        await store.hit([Rule(Kind.IP, Rate(5, 60), "new")])
        assert (await store.hit([Rule(Kind.IP, Rate(5, 60), "live")]))[0].count == 2


class TestKeys:
    @pytest.mark.parametrize(
        ("host", "key"),
        [
            ("203.0.113.7", "203.0.113.7"),
            ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
            ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
            ("::ffff:203.0.113.7", "203.0.113.7"),
            ("testclient", "testclient"),
            (None, "unknown"),
        ],
    )
    def test_client_key(self, host: str | None, key: str) -> None:
        """IPv4 as is, IPv6 by its /64, a mapped IPv4 as the IPv4."""
        assert client_key(host) == key

    def test_token_is_never_in_a_key(self) -> None:
        """Keys hold a hash of the token, not the token nor the SHA-256 the database keeps."""
        import hashlib

        rules = policy().rules("203.0.113.7", "pxw_secret")
        keys = " ".join(rule.key for rule in rules)
        assert "pxw_secret" not in keys
        assert hashlib.sha256(b"pxw_secret").hexdigest() not in keys
        assert f"{KEY_PREFIX}token:{token_key('pxw_secret')}" in keys


class TestMiddleware:
    async def test_success_carries_the_headers(self, client: httpx.AsyncClient) -> None:
        """An accepted request says its tightest limit: here the token's 3 per minute."""
        response = await client.get("/v1/wallet", headers=bearer(GOOD))
        assert response.status_code == 200
        assert response.headers["RateLimit-Limit"] == "3"
        assert response.headers["RateLimit-Remaining"] == "2"
        assert response.headers["RateLimit-Reset"] == "60"
        assert "Retry-After" not in response.headers

    async def test_token_over_its_limit_gets_a_problem(
        self, client: httpx.AsyncClient, clock: Clock
    ) -> None:
        """The 4th request in a minute with one token is 429 rate_limited with Retry-After."""
        before = RATELIMIT_REJECTED.labels("token")._value.get()
        for _ in range(3):
            assert (await client.get("/v1/wallet", headers=bearer(GOOD))).status_code == 200
        clock.now += 20
        response = await client.get("/v1/wallet", headers=bearer(GOOD))
        assert response.status_code == 429
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == RateLimited.code
        assert response.json()["instance"] == "/v1/wallet"
        assert response.headers["Retry-After"] == "40"
        assert response.headers["RateLimit-Remaining"] == "0"
        assert RATELIMIT_REJECTED.labels("token")._value.get() == before + 1
        clock.now += 40
        assert (await client.get("/v1/wallet", headers=bearer(GOOD))).status_code == 200

    async def test_address_limit_covers_every_token(self, client: httpx.AsyncClient) -> None:
        """Switching tokens does not dodge the per-address limit (5 here)."""
        statuses = [
            (await client.get("/", headers=bearer(GOOD if n % 2 else f"x{n}"))).status_code
            for n in range(6)
        ]
        assert statuses[-1] == 429

    async def test_failures_lock_the_address_out_then_recover(
        self, client: httpx.AsyncClient, clock: Clock
    ) -> None:
        """Two 401s in 5 min: every request from the address, even with a good token, is 429
        until the failures' window ends; then it is served again."""
        assert (await client.get("/v1/wallet", headers=bearer("wrong1"))).status_code == 401
        clock.now += 100
        assert (await client.get("/v1/wallet", headers=bearer("wrong2"))).status_code == 401
        locked = await client.get("/v1/wallet", headers=bearer(GOOD))
        assert locked.status_code == 429
        assert locked.headers["Retry-After"] == "200"
        assert locked.headers["RateLimit-Limit"] == "2"
        assert "failed authentications" in locked.json()["detail"]
        clock.now += 200
        assert (await client.get("/v1/wallet", headers=bearer(GOOD))).status_code == 200

    @pytest.mark.parametrize(
        "path",
        ["/healthz", "/readyz", "/metrics", "/webhooks/efi", "/webhooks/efi/pix"],
    )
    async def test_exempt_paths(self, client: httpx.AsyncClient, path: str) -> None:
        """Probes, metrics and gateway webhooks are never limited nor counted: their 401s do
        not lock the address out either."""
        for _ in range(10):
            response = await client.get(path, headers=bearer("wrong"))
            assert response.status_code == 401
            assert "RateLimit-Limit" not in response.headers
        assert (await client.get("/v1/wallet", headers=bearer(GOOD))).status_code == 200

    @pytest.mark.parametrize("mounted", [True, False])
    async def test_the_sandbox_is_exempt_only_where_it_is_mounted(
        self, clock: Clock, mounted: bool
    ) -> None:
        """The demo's connectors call its mounted simulators over loopback, so `/sandbox/…` is
        exempt there; in a process without simulators nothing is there to exempt, and requests
        to it count like any other (a 6th from one address is 429)."""
        limiter = RateLimit(
            endpoint, policy(), store=MemoryStore(clock), clock=clock, sandbox_mounted=mounted
        )
        transport = httpx.ASGITransport(app=limiter, client=("203.0.113.7", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            statuses = [(await c.get("/sandbox/efi/v2/cob")).status_code for _ in range(6)]
        assert statuses[-1] == (200 if mounted else 429)

    async def test_forwarded_for_is_not_read(self, client: httpx.AsyncClient) -> None:
        """A forged X-Forwarded-For (or Forwarded) changes nothing: the ASGI client is the key."""
        statuses = [
            (
                await client.get(
                    "/",
                    headers={"X-Forwarded-For": f"198.51.100.{n}", "Forwarded": f"for=10.0.0.{n}"},
                )
            ).status_code
            for n in range(6)
        ]
        assert statuses == [200] * 5 + [429]


class FailingStore:
    def __init__(self) -> None:
        self.calls = 0

    async def hit(self, rules: Sequence[Rule]) -> list[Usage]:
        self.calls += 1
        raise TimeoutError


class TestFailOpen:
    async def test_store_failure_lets_requests_through(
        self, clock: Clock, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A failing store: requests are served without headers, each counted in the metric,
        `ratelimit.unavailable` logged once per interval."""
        from structlog.testing import capture_logs

        store = FailingStore()
        limiter = RateLimit(endpoint, policy(), store=store, clock=clock)
        transport = httpx.ASGITransport(app=limiter)
        before = RATELIMIT_UNAVAILABLE._value.get()
        with capture_logs() as logs:
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                for _ in range(10):
                    response = await c.get("/v1/wallet", headers=bearer(GOOD))
                    assert response.status_code == 200
                    assert "RateLimit-Limit" not in response.headers
                clock.now += 61
                await c.get("/v1/wallet")
        assert RATELIMIT_UNAVAILABLE._value.get() == before + 11
        events = [line for line in logs if line["event"] == "ratelimit.unavailable"]
        assert [e["requests_unlimited"] for e in events] == [1, 10]
        assert events[0]["error"] == "TimeoutError"

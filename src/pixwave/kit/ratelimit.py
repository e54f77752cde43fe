"""Rate limiting: per API token, per client address, and a stricter limit on failed logins.

Three rules, each a fixed window that starts at its key's first hit (so clients do not all reset
on the same second) and is shared by every process through Redis:

* **per address** (``RATE_LIMIT_PER_IP``) — every request not exempt; IPv6 clients by their /64,
  the block one subscriber gets;
* **per token** (``RATE_LIMIT_PER_TOKEN``) — requests carrying ``Authorization: Bearer``, keyed
  by a domain-separated hash of the token, never the token (nor the hash the database keeps);
* **authentication failures per address** (``RATE_LIMIT_AUTH_FAILURES``) — each 401 counts; an
  address over it gets 429 *before* anything else runs (no token lookup, no database) until its
  window passes.

A request costs one Redis round trip: one script reads the failure gate, counts the address,
counts the token, and stops at the first rule over its limit (:data:`HIT_SCRIPT`). A 401 costs
a second one, to count the failure before the client sees the answer.

Exempt: probes (``/healthz``, ``/readyz``), ``/metrics``, gateway webhooks (``/webhooks/…``:
no token, and gateways burst) and, in a process that mounts them, the built-in simulators
(``/sandbox/…``: the connectors in this very process call them).

**Fail open.** When Redis errs or does not answer within ``RATE_LIMIT_TIMEOUT`` the request goes
through unlimited: a payments API must not stop because its limiter did. Each such request
counts in ``pixwave_ratelimit_unavailable_total``; ``ratelimit.unavailable`` is logged at most
once per :data:`UNAVAILABLE_LOG_INTERVAL`. Without Redis (the embedded default, one process)
the counters live in the process (:class:`MemoryStore`).

The client address is the ASGI ``client``: what uvicorn took from the socket, or from
``X-Forwarded-For`` only when the peer is one of ``FORWARDED_ALLOW_IPS``. Nothing here reads a
forwarding header, so a caller cannot pick its own key.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Protocol

import structlog
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pixwave.exceptions import RateLimited
from pixwave.observability.metrics import RATELIMIT_REJECTED, RATELIMIT_UNAVAILABLE

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from pixwave.config import Settings

__all__ = [
    "EXEMPT_PREFIXES",
    "Kind",
    "MemoryStore",
    "Policy",
    "Rate",
    "RateLimit",
    "RedisStore",
    "Rule",
    "Usage",
    "Verdict",
]

log = structlog.get_logger("pixwave.ratelimit")

#: Paths the limiter never looks at (exact, or a prefix ending in "/").
EXEMPT_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics"})
EXEMPT_PREFIXES: Final = ("/webhooks/",)
#: The built-in simulators' mount: exempt only in a process that mounts them (the demo, whose
#: connectors call them over loopback); elsewhere nothing is there and the path is counted.
SANDBOX_PREFIX: Final = "/sandbox/"
#: ``ratelimit.unavailable`` is logged at most this often (seconds) while Redis fails.
UNAVAILABLE_LOG_INTERVAL: Final = 60.0
#: Every key lives in one Redis Cluster slot (the ``{ratelimit}`` hash tag): one script call
#: touches a request's keys together. See docs/deployment.md.
KEY_PREFIX: Final = "pixwave:{ratelimit}:"

# --- rates -------------------------------------------------------------------------------------

_UNITS: Final = {
    **dict.fromkeys(("s", "sec", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hour", "hours"), 3600),
}
_RATE: Final = re.compile(r"(\d+)\s*/\s*(\d+)?\s*([a-z]+)", re.IGNORECASE)
#: A window over a day would keep keys (and a locked-out address) for longer than any client
#: reasonably waits on a Retry-After.
MAX_WINDOW_SECONDS: Final = 86_400


@dataclass(frozen=True, slots=True)
class Rate:
    """``limit`` requests per ``window_seconds``; read from ``600/minute``, ``10/5minutes``."""

    limit: int
    window_seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        match = _RATE.fullmatch(text.strip())
        unit = _UNITS.get(match.group(3).lower()) if match else None
        if match is None or unit is None:
            raise ValueError(
                f"{text!r} is not a rate: write COUNT/WINDOW, e.g. 600/minute, 10/5minutes, "
                "100/30s (units: s, second, m, minute, h, hour)"
            )
        limit, window = int(match.group(1)), int(match.group(2) or 1) * unit
        if limit < 1:
            raise ValueError(f"{text!r}: the count must be at least 1")
        if not 1 <= window <= MAX_WINDOW_SECONDS:
            raise ValueError(f"{text!r}: the window must be between 1 s and 24 h")
        return cls(limit, window)

    def __str__(self) -> str:
        return f"{self.limit}/{self.window_seconds}s"


# --- rules and their outcome ---------------------------------------------------------------


class Kind(StrEnum):
    """What a rule counts; also the ``limit`` label of the rejection metric."""

    TOKEN = "token"  # noqa: S105 - a label, not a secret
    IP = "ip"
    AUTH_FAILURES = "auth_failures"


@dataclass(frozen=True, slots=True)
class Rule:
    """One limit applied to one key. A *gate* (``counts=False``) is only read: it refuses once
    its count has reached the limit (the failures are counted elsewhere, on a 401)."""

    kind: Kind
    rate: Rate
    key: str
    counts: bool = True


@dataclass(frozen=True, slots=True)
class Usage:
    """A rule's state just after this request: its count, and when its window ends."""

    rule: Rule
    count: int
    reset_ms: int

    @property
    def exceeded(self) -> bool:
        limit = self.rule.rate.limit
        return self.count > limit if self.rule.counts else self.count >= limit

    @property
    def remaining(self) -> int:
        return max(0, self.rule.rate.limit - self.count)

    @property
    def reset_seconds(self) -> int:
        """Whole seconds until the window ends, rounded up (a client waiting that long is
        never early); at least 1 for a refused request."""
        seconds = math.ceil(max(0, self.reset_ms) / 1000)
        return max(1, seconds) if self.exceeded else seconds


@dataclass(frozen=True, slots=True)
class Verdict:
    """The usages a store returned for one request (it stops at the first exceeded rule)."""

    usages: tuple[Usage, ...]

    @property
    def rejected(self) -> Usage | None:
        return next((usage for usage in self.usages if usage.exceeded), None)

    @property
    def tightest(self) -> Usage | None:
        """The counted rule with the fewest requests left (sooner reset on a tie): the one the
        ``RateLimit-*`` headers describe on an accepted request."""
        counted = [usage for usage in self.usages if usage.rule.counts]
        return min(counted, key=lambda u: (u.remaining, u.reset_ms), default=None)

    def headers(self, policy: str) -> list[tuple[bytes, bytes]]:
        """``RateLimit-Limit``/``-Remaining``/``-Reset`` (seconds) of the rejecting rule, or of
        the tightest one; ``Retry-After`` when refused; ``RateLimit-Policy`` always."""
        rejected = self.rejected
        usage = rejected or self.tightest
        if usage is None:
            return []
        headers = [
            (b"ratelimit-limit", str(usage.rule.rate.limit).encode()),
            (b"ratelimit-remaining", str(usage.remaining).encode()),
            (b"ratelimit-reset", str(usage.reset_seconds).encode()),
            (b"ratelimit-policy", policy.encode()),
        ]
        if rejected is not None:
            headers.append((b"retry-after", str(rejected.reset_seconds).encode()))
        return headers


# --- stores ------------------------------------------------------------------------------------


class Store(Protocol):
    async def hit(self, rules: Sequence[Rule]) -> list[Usage]:
        """Apply ``rules`` in order, stopping after the first one exceeded."""
        ...


#: KEYS: one per rule. ARGV: per rule its limit, window (ms) and 1 (count) or 0 (gate: read).
#: Returns count and ms-to-reset per rule applied, stopping after the first one over its limit.
#: A key without expiry (never expected) is given one, so nothing can lock out for good.
HIT_SCRIPT: Final = """
local out = {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[3 * i - 2])
  local window = tonumber(ARGV[3 * i - 1])
  local counts = ARGV[3 * i] == '1'
  local count
  if counts then
    count = redis.call('INCR', key)
  else
    count = tonumber(redis.call('GET', key) or '0')
  end
  local ttl = redis.call('PTTL', key)
  if ttl == -1 then
    redis.call('PEXPIRE', key, window)
    ttl = window
  elseif ttl < 0 then
    ttl = 0
  end
  out[#out + 1] = count
  out[#out + 1] = ttl
  if (counts and count > limit) or (not counts and count >= limit) then
    break
  end
end
return out
"""


class RedisStore:
    """Counters in Redis, shared by every process: one script call per :meth:`hit`, within
    ``timeout`` seconds (``TimeoutError`` past it; the middleware then fails open)."""

    def __init__(self, redis: Redis, timeout: float) -> None:
        self.timeout = timeout
        self._script = redis.register_script(HIT_SCRIPT)

    async def hit(self, rules: Sequence[Rule]) -> list[Usage]:
        args: list[int] = []
        for rule in rules:
            args += [rule.rate.limit, rule.rate.window_seconds * 1000, int(rule.counts)]
        raw: list[Any] = await asyncio.wait_for(
            self._script(keys=[rule.key for rule in rules], args=args), self.timeout
        )
        return [
            Usage(rule, int(raw[2 * i]), int(raw[2 * i + 1]))
            for i, rule in enumerate(rules[: len(raw) // 2])
        ]


class MemoryStore:
    """The same windows in this process (the embedded default: one process, no Redis).

    ``clock`` returns seconds on a monotonic scale (tests move it by hand). Past ``max_keys``
    live keys the expired ones are dropped, then, if still full, everything (a fresh start is
    the memory-safe choice; it only ever lets requests through).
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self.clock = clock
        self.max_keys = max_keys
        self._windows: dict[str, tuple[int, float]] = {}

    async def hit(self, rules: Sequence[Rule]) -> list[Usage]:
        now = self.clock()
        usages: list[Usage] = []
        for rule in rules:
            count, ends = self._windows.get(rule.key, (0, now))
            if ends <= now:
                count, ends = 0, now + rule.rate.window_seconds
            if rule.counts:
                count += 1
                self._store(rule.key, count, ends, now)
            usage = Usage(rule, count, math.ceil((ends - now) * 1000) if count else 0)
            usages.append(usage)
            if usage.exceeded:
                break
        return usages

    def _store(self, key: str, count: int, ends: float, now: float) -> None:
        if key not in self._windows and len(self._windows) >= self.max_keys:
            self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
            if len(self._windows) >= self.max_keys:
                log.warning("ratelimit.memory_full", keys=len(self._windows))
                self._windows.clear()
        self._windows[key] = (count, ends)


# --- the policy: which rules a request meets -------------------------------------------------


def client_key(host: str | None) -> str:
    """The address a limit counts: IPv4 as is, IPv6 by its /64 (one subscriber's block),
    anything unparsable (a test client, a Unix socket) verbatim."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def token_key(token: str) -> str:
    """A hash of the token for its counter: keyed apart from the SHA-256 the database stores,
    so Redis holds nothing that names a token row."""
    return hashlib.blake2b(token.encode(), digest_size=16, person=b"pxw-ratelimit").hexdigest()


def bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if kind.lower() == "bearer" and token else None
    return None


def exempt(path: str, *, sandbox: bool = False) -> bool:
    """Never limited nor counted; ``sandbox``: this process mounts the simulators."""
    return (
        path in EXEMPT_PATHS
        or path.startswith(EXEMPT_PREFIXES)
        or (sandbox and path.startswith(SANDBOX_PREFIX))
    )


@dataclass(frozen=True, slots=True)
class Policy:
    """The three rates; builds each request's rules and the ``RateLimit-Policy`` value."""

    per_token: Rate
    per_ip: Rate
    auth_failures: Rate

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            per_token=Rate.parse(settings.rate_limit_per_token),
            per_ip=Rate.parse(settings.rate_limit_per_ip),
            auth_failures=Rate.parse(settings.rate_limit_auth_failures),
        )

    def rules(self, address: str, token: str | None) -> list[Rule]:
        """The failure gate first (a locked-out address counts nothing more), then the
        address, then the token."""
        rules = [
            Rule(Kind.AUTH_FAILURES, self.auth_failures, f"{KEY_PREFIX}fail:{address}", False),
            Rule(Kind.IP, self.per_ip, f"{KEY_PREFIX}ip:{address}"),
        ]
        if token is not None:
            rules.append(Rule(Kind.TOKEN, self.per_token, f"{KEY_PREFIX}token:{token_key(token)}"))
        return rules

    def failure(self, address: str) -> Rule:
        """The rule that counts one authentication failure of ``address``."""
        return Rule(Kind.AUTH_FAILURES, self.auth_failures, f"{KEY_PREFIX}fail:{address}")

    def header(self, token: bool) -> str:
        """``RateLimit-Policy``: each limit this request is under, as ``limit;w=seconds``."""
        rates = [(self.per_token, "token")] if token else []
        rates.append((self.per_ip, "ip"))
        return ", ".join(f'{r.limit};w={r.window_seconds};name="{name}"' for r, name in rates)


# --- the middleware ------------------------------------------------------------------------


class RateLimit:
    """Pure ASGI middleware applying :class:`Policy` before anything else of the request runs
    (a refused request costs one Redis round trip and no database work).

    Without a ``store`` (tests pass one), it is built on the first request from the app's
    resources — their Redis client, or a :class:`MemoryStore` without one — so the middleware
    can be added before the resources exist.
    """

    def __init__(
        self,
        app: ASGIApp,
        policy: Policy,
        *,
        timeout: float = 0.1,
        store: Store | None = None,
        clock: Callable[[], float] = time.monotonic,
        sandbox_mounted: bool = False,
    ) -> None:
        self.app = app
        self.sandbox_mounted = sandbox_mounted
        self.policy = policy
        self.timeout = timeout
        self.store = store
        self.clock = clock
        self._last_unavailable_log = -math.inf
        self._unavailable_since_log = 0
        self._rejected = {kind: RATELIMIT_REJECTED.labels(str(kind)) for kind in Kind}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or exempt(scope["path"], sandbox=self.sandbox_mounted):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client_key(client[0] if client else None)
        token = bearer(scope)
        store = self.store or self._build_store(scope)
        try:
            verdict = Verdict(tuple(await store.hit(self.policy.rules(address, token))))
        except Exception as exc:  # any failure of the limiter lets the request through
            self._unavailable(exc)
            await self._pass_failures_only(scope, receive, send, store, address)
            return
        headers = verdict.headers(self.policy.header(token is not None))
        rejected = verdict.rejected
        if rejected is not None:
            self._rejected[rejected.rule.kind].inc()
            await self._refuse(scope, send, rejected, headers)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                if message["status"] == 401:
                    await self._count_failure(store, address)
                message = {**message, "headers": [*message.get("headers", ()), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _pass_failures_only(
        self, scope: Scope, receive: Receive, send: Send, store: Store, address: str
    ) -> None:
        """Redis failed: serve the request unlimited (still trying to count a 401)."""

        async def send_counting(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                await self._count_failure(store, address)
            await send(message)

        await self.app(scope, receive, send_counting)

    async def _count_failure(self, store: Store, address: str) -> None:
        try:
            await store.hit([self.policy.failure(address)])
        except Exception as exc:
            self._unavailable(exc)

    async def _refuse(
        self, scope: Scope, send: Send, usage: Usage, headers: list[tuple[bytes, bytes]]
    ) -> None:
        rate = usage.rule.rate
        what = _REFUSED[usage.rule.kind]
        error = RateLimited(
            f"{what}: {rate.limit} per {rate.window_seconds} s; retry in {usage.reset_seconds} s"
        )
        response = JSONResponse(
            error.problem(scope.get("path")),
            status_code=error.status_code,
            media_type="application/problem+json",
        )
        response.raw_headers.extend(headers)
        await response(scope, _disconnected, send)

    def _build_store(self, scope: Scope) -> Store:
        resources = scope["app"].state.resources
        redis = resources.redis
        self.store = MemoryStore() if redis is None else RedisStore(redis, self.timeout)
        return self.store

    def _unavailable(self, error: BaseException) -> None:
        RATELIMIT_UNAVAILABLE.inc()
        self._unavailable_since_log += 1
        now = self.clock()
        if now - self._last_unavailable_log >= UNAVAILABLE_LOG_INTERVAL:
            log.warning(
                "ratelimit.unavailable",
                error=repr(error) if str(error) else type(error).__name__,
                requests_unlimited=self._unavailable_since_log,
            )
            self._last_unavailable_log = now
            self._unavailable_since_log = 0


_REFUSED: Final = {
    Kind.TOKEN: "too many requests with this token",
    Kind.IP: "too many requests from this address",
    Kind.AUTH_FAILURES: "too many failed authentications from this address",
}


async def _disconnected() -> Message:
    return {"type": "http.disconnect"}

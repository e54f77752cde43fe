"""Fault injection for the sandbox simulators: the ways real gateways fail, on demand.

Rules are set per operation (``payments.create``, ``cob.put`` …) or for every operation
(``*``); the most specific rule wins. A request meets its rule in this order:

1. **outage** — ``refuse`` closes the listening socket (connection refused; standalone server
   only, and only for ``outage_seconds`` since the admin routes share the port) or ``503``
   answers every request with 503 (until cleared, or for ``outage_seconds``);
2. **latency** — fixed, uniform or normal (clipped at 0), added before anything else happens;
3. **rate limit** — more than N requests in the current second get 429 with ``Retry-After``;
4. **error rate** — that share of requests gets ``error_status`` (a 5xx) *without* effect;
5. **timeout rate** — that share is *processed* and then never answered: the response is held
   for ``hang_seconds`` and the connection dropped, the case that pays twice elsewhere.

All randomness comes from one ``random.Random(seed)``, so a failing run replays exactly: the
decisions are numbered and kept in a ring buffer the admin endpoint shows.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALL = "*"


class Latency(BaseModel):
    """Added latency in milliseconds: ``fixed_ms``, or ``min_ms``..``max_ms``, or normal."""

    model_config = ConfigDict(extra="forbid")

    fixed_ms: float | None = Field(default=None, ge=0)
    min_ms: float | None = Field(default=None, ge=0)
    max_ms: float | None = Field(default=None, ge=0)
    mean_ms: float | None = Field(default=None, ge=0)
    stddev_ms: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_shape(self) -> Latency:
        shapes = [
            self.fixed_ms is not None,
            self.min_ms is not None or self.max_ms is not None,
            self.mean_ms is not None or self.stddev_ms is not None,
        ]
        if sum(shapes) != 1:
            raise ValueError("give exactly one of fixed_ms, min_ms+max_ms, mean_ms+stddev_ms")
        if shapes[1] and (self.min_ms is None or self.max_ms is None or self.min_ms > self.max_ms):
            raise ValueError("a uniform latency needs min_ms <= max_ms")
        if shapes[2] and self.mean_ms is None:
            raise ValueError("a normal latency needs mean_ms")
        return self

    def sample(self, rng: random.Random) -> float:
        """Seconds to wait."""
        if self.fixed_ms is not None:
            return self.fixed_ms / 1000
        if self.min_ms is not None and self.max_ms is not None:
            return rng.uniform(self.min_ms, self.max_ms) / 1000
        mean = self.mean_ms or 0.0
        return max(0.0, rng.gauss(mean, self.stddev_ms or 0.0)) / 1000


class FaultRule(BaseModel):
    """How one operation (or every operation) misbehaves."""

    model_config = ConfigDict(extra="forbid")

    outage: Literal["refuse", "503"] | None = None
    outage_seconds: float | None = Field(
        default=None, gt=0, le=3600, description="The outage ends by itself after this long."
    )
    latency: Latency | None = None
    rate_limit: int | None = Field(default=None, ge=0, description="Requests per second.")
    retry_after: int = Field(default=1, ge=0, description="Seconds sent with 429 and 503.")
    error_rate: float = Field(default=0.0, ge=0, le=1)
    error_status: int = Field(default=500, ge=500, le=599)
    timeout_rate: float = Field(default=0.0, ge=0, le=1, description="Processed, never answered.")
    hang_seconds: float = Field(default=30.0, ge=0, le=600)

    @model_validator(mode="after")
    def _refuse_ends(self) -> FaultRule:
        # While refusing, the admin routes on the same port are unreachable too: the outage
        # has to end by itself.
        if self.outage == "refuse" and self.outage_seconds is None:
            raise ValueError("a 'refuse' outage needs outage_seconds (the port is closed to all)")
        return self


class FaultConfig(BaseModel):
    """The whole fault set of one simulator; ``seed`` makes the random choices replayable."""

    model_config = ConfigDict(extra="forbid")

    seed: int | None = None
    rules: dict[str, FaultRule] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    """What the injector decided for one request; numbered so a run can be replayed."""

    number: int
    operation: str
    action: str  # pass | outage | error | rate_limited | timeout
    delay: float = 0.0
    status: int | None = None
    retry_after: int | None = None
    hang_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "operation": self.operation,
            "action": self.action,
            "delay_ms": round(self.delay * 1000, 3),
            "status": self.status,
        }


class Listener(Protocol):
    """The standalone server's listening socket, which a ``refuse`` outage closes."""

    async def pause(self) -> None: ...

    async def resume(self) -> None: ...


class FaultInjector:
    """Decides, per request, whether and how to misbehave."""

    def __init__(self, operations: Sequence[str]) -> None:
        self.operations = tuple(dict.fromkeys(operations))  # one name may serve several paths
        self.config = FaultConfig()
        self.rng = random.Random()  # noqa: S311 - fault injection, not cryptography
        self.listener: Listener | None = None
        self.refusing = False
        self.counter = 0
        self.recent: deque[Decision] = deque(maxlen=500)
        self._windows: dict[str, tuple[int, int]] = {}
        #: The clock of the one-second rate-limit windows (tests pin it).
        self.monotonic: Callable[[], float] = time.monotonic
        self._endings: dict[str, asyncio.Task[None]] = {}

    async def configure(self, config: FaultConfig) -> None:
        unknown = sorted(set(config.rules) - {ALL, *self.operations})
        if unknown:
            raise ValueError(f"unknown operations {unknown}; known: {[ALL, *self.operations]}")
        for name, rule in config.rules.items():
            if rule.outage == "refuse" and name != ALL:
                raise ValueError("a 'refuse' outage closes the whole server: set it on '*'")
            if rule.outage == "refuse" and self.listener is None:
                raise ValueError(
                    "a 'refuse' outage needs a standalone simulator (`pixwave sandbox …`); "
                    "a mounted one can only answer 503"
                )
        self.config = config
        self.rng = random.Random(config.seed)  # noqa: S311
        self.counter = 0
        self.recent.clear()
        self._windows.clear()
        self._schedule_endings()
        await self._apply_listener()

    def _schedule_endings(self) -> None:
        for task in self._endings.values():
            task.cancel()
        self._endings.clear()
        for name, rule in self.config.rules.items():
            if rule.outage is not None and rule.outage_seconds is not None:
                self._endings[name] = asyncio.get_running_loop().create_task(
                    self._end_outage(name, rule.outage_seconds)
                )

    async def _end_outage(self, operation: str, after: float) -> None:
        """Drop the outage from the rule (keeping its other faults) once its time is up."""
        await asyncio.sleep(after)
        self._endings.pop(operation, None)
        rules = dict(self.config.rules)
        rule = rules.pop(operation, None)
        if rule is not None:
            rest = rule.model_copy(update={"outage": None, "outage_seconds": None})
            if rest != FaultRule():
                rules[operation] = rest
        self.config = FaultConfig(seed=self.config.seed, rules=rules)
        await self._apply_listener()

    async def set_rule(self, operation: str, rule: FaultRule | None) -> None:
        rules = dict(self.config.rules)
        if rule is None:
            rules.pop(operation, None)
        else:
            rules[operation] = rule
        await self.configure(FaultConfig(seed=self.config.seed, rules=rules))

    async def clear(self) -> None:
        await self.configure(FaultConfig(seed=self.config.seed))

    async def _apply_listener(self) -> None:
        everything = self.config.rules.get(ALL)
        refuse = everything is not None and everything.outage == "refuse"
        if self.listener is None or refuse == self.refusing:
            return
        if refuse:
            await self.listener.pause()
        else:
            await self.listener.resume()
        self.refusing = refuse

    def rule_for(self, operation: str) -> FaultRule | None:
        return self.config.rules.get(operation) or self.config.rules.get(ALL)

    def decide(self, operation: str) -> Decision:
        self.counter += 1
        number = self.counter
        rule = self.rule_for(operation)
        if rule is None:
            return Decision(number, operation, "pass")
        if rule.outage is not None:
            decision = Decision(
                number, operation, "outage", status=503, retry_after=rule.retry_after
            )
            self.recent.append(decision)
            return decision
        delay = rule.latency.sample(self.rng) if rule.latency else 0.0
        if rule.rate_limit is not None and self._over_limit(operation, rule.rate_limit):
            decision = Decision(
                number,
                operation,
                "rate_limited",
                delay,
                status=429,
                retry_after=max(1, rule.retry_after),
            )
        elif rule.error_rate and self.rng.random() < rule.error_rate:
            decision = Decision(number, operation, "error", delay, status=rule.error_status)
        elif rule.timeout_rate and self.rng.random() < rule.timeout_rate:
            decision = Decision(number, operation, "timeout", delay, hang_seconds=rule.hang_seconds)
        else:
            decision = Decision(number, operation, "pass", delay)
        if decision.action != "pass" or delay:
            self.recent.append(decision)
        return decision

    def _over_limit(self, operation: str, limit: int) -> bool:
        second = math.floor(self.monotonic())
        window_start, count = self._windows.get(operation, (second, 0))
        if window_start != second:
            window_start, count = second, 0
        count += 1
        self._windows[operation] = (window_start, count)
        return count > limit

    def snapshot(self) -> dict[str, Any]:
        return {
            "config": self.config.model_dump(mode="json", exclude_none=True),
            "operations": [ALL, *self.operations],
            "refusing_connections": self.refusing,
            "decisions": self.counter,
            "recent": [d.as_dict() for d in list(self.recent)[-50:]],
        }


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    operation: str


def route(method: str, path: str, operation: str) -> Route:
    """``route("PUT", "/v2/cob/{txid}", "cob.put")``: path parameters match one segment."""
    regex = re.sub(r"\{[^/]+\}", r"[^/]+", path)
    return Route(method.upper(), re.compile(f"^{regex}/?$"), operation)


def _json_response(
    status: int, body: dict[str, Any], headers: dict[str, str], media_type: str
) -> list[Message]:
    payload = orjson.dumps(body)
    raw_headers = [
        (b"content-type", media_type.encode()),
        (b"content-length", str(len(payload)).encode()),
        *((k.encode(), v.encode()) for k, v in headers.items()),
    ]
    return [
        {"type": "http.response.start", "status": status, "headers": raw_headers},
        {"type": "http.response.body", "body": payload},
    ]


#: Builds the provider-shaped error body for an injected status (MP and Efí differ).
ErrorBody = Callable[[int, str], dict[str, Any]]


class FaultMiddleware:
    """ASGI middleware that applies the injector's decision around the simulator's routes."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        injector: FaultInjector,
        routes: Sequence[Route],
        error_body: ErrorBody,
        error_media_type: str = "application/json",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.app = app
        self.injector = injector
        self.routes = tuple(routes)
        self.error_body = error_body
        self.error_media_type = error_media_type
        self.sleep = sleep

    def _operation(self, scope: Scope) -> str | None:
        method = scope["method"]
        path = scope["path"][len(scope.get("root_path", "")) :] or "/"
        for candidate in self.routes:
            if candidate.method == method and candidate.pattern.match(path):
                return candidate.operation
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        operation = self._operation(scope)
        if operation is None:
            await self.app(scope, receive, send)
            return
        decision = self.injector.decide(operation)
        if decision.delay:
            # Read the request before the wait: a provider that is merely slow still does the
            # work after the client gave up (a timeout *with* effect, as for real); without this
            # the app would find the client gone and perform nothing.
            receive = await _read_ahead(receive)
            await self.sleep(decision.delay)
        if decision.action in {"outage", "error", "rate_limited"}:
            assert decision.status is not None
            headers = {"x-sandbox-fault": decision.action}
            if decision.retry_after is not None:
                headers["retry-after"] = str(decision.retry_after)
            body = self.error_body(decision.status, decision.action)
            for message in _json_response(decision.status, body, headers, self.error_media_type):
                await send(message)
            return
        if decision.action == "timeout":
            await self._process_then_hang(scope, receive, send, decision.hang_seconds)
            return
        await self.app(scope, receive, send)

    async def _process_then_hang(
        self, scope: Scope, receive: Receive, send: Send, hang_seconds: float
    ) -> None:
        """Let the operation take effect, swallow its response, and wait for the client to
        give up (or ``hang_seconds``). The client sees a read timeout, never an answer."""

        async def swallow(_: Message) -> None:
            return None

        await self.app(scope, receive, swallow)

        async def until_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        try:
            await asyncio.wait_for(until_disconnect(), timeout=hang_seconds)
        except TimeoutError:
            # The client is more patient than the hang: drop the connection unanswered.
            raise SandboxHangup(
                f"{scope['method']} {scope['path']} processed and not answered"
            ) from None


async def _read_ahead(receive: Receive) -> Receive:
    """Receive the whole body now; hand it to the app as one message, then pass through (so a
    disconnect is still seen by whoever waits for one)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client left while sending: let the app see what there is
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    pending: list[Message] = [
        {"type": "http.request", "body": b"".join(chunks), "more_body": False}
    ]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


class SandboxHangup(Exception):
    """Raised after a process-then-timeout so the server drops the connection unanswered."""

"""The cluster-wide store: every transition in one Lua script (`lua/*.lua`), so two processes
can never both win a probe, and the router's view of every gateway in one round trip."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from importlib.resources import files
from typing import Any, Final

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from pixwave.gateways.errors import Outcome
from pixwave.gateways.health.model import (
    CIRCUIT_TTL_MS,
    LOWEST_PRIORITY,
    TRANSITION_LOGS,
    UP_OUTCOMES,
    CircuitState,
    GatewayHealth,
    GatewaySettings,
    HealthConfig,
    HealthState,
    Sample,
    datetime_of,
    default_priorities,
    health_of,
    log_transition,
    state_of,
)
from pixwave.kit.scripts import Call, run_scripts
from pixwave.kit.singleflight import SingleFlight


def _lua(name: str) -> str:
    """A script of ``lua/`` as text (shipped inside the package)."""
    return files("pixwave.gateways.health").joinpath("lua", f"{name}.lua").read_text("utf-8")


# Every script starts with the clock (`now.lua`); the snapshot and the router's view share
# the snapshot function.
_NOW = _lua("now")
_SNAPSHOT_FUNCTION = _lua("snapshot_function")
_RECORD = _NOW + _lua("record")
_ALLOW = _NOW + _lua("allow")
_SNAPSHOT = _NOW + _SNAPSHOT_FUNCTION + _lua("snapshot")
_VIEW = _NOW + _SNAPSHOT_FUNCTION + _lua("view")

_STATES: Final = (CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN)


class RedisHealthStore:
    """The cluster-wide store. One round trip (one script) per record, allow, snapshot and
    the router's view of every gateway.

    ``now`` (epoch seconds) is for tests; by default the Redis server's clock is used, so
    processes whose clocks drift still agree on when a cooldown ends.
    """

    def __init__(
        self,
        redis: Redis,
        config: HealthConfig | None = None,
        *,
        gateways: Iterable[str] = (),
        now: Callable[[], float] | None = None,
        prefix: str = "pixwave:{health}:",
    ) -> None:
        self.redis = redis
        self.config = config or HealthConfig()
        self.priorities = default_priorities(gateways)
        self.prefix = prefix
        self._now = now
        self._record = redis.register_script(_RECORD)
        self._allow = redis.register_script(_ALLOW)
        self._snapshot = redis.register_script(_SNAPSHOT)
        self._view = redis.register_script(_VIEW)
        self._views: SingleFlight[list[Any]] = SingleFlight()

    def _base(self, gateway: str, operation: str) -> str:
        # Redis Cluster: every key of the store shares the prefix's hash tag (`{health}`), so
        # each script runs in one slot — the router's view reads every gateway's keys at once.
        return f"{self.prefix}{gateway}:{operation}:"

    def _keys(self, gateway: str, operation: str) -> list[str]:
        base = self._base(gateway, operation)
        return [base + "circuit", base + "probe"]

    def _settings_key(self, gateway: str) -> str:
        return f"{self.prefix}settings:{gateway}"

    def _state_key(self, gateway: str) -> str:
        return f"{self.prefix}state:{gateway}"

    def _time(self) -> str:
        return "" if self._now is None else str(int(self._now() * 1000))

    def _record_args(
        self, gateway: str, operation: str, outcome: Outcome, latency_ms: int
    ) -> dict[str, Any]:
        c = self.config
        up = Outcome(outcome) in UP_OUTCOMES
        return {
            "keys": self._keys(gateway, operation),
            "args": [
                self._time(),
                self._base(gateway, operation),
                1 if up else 0,
                max(0, int(latency_ms)),
                c.bucket_ms,
                c.buckets,
                c.failure_threshold,
                c.failure_rate,
                c.open_ms,
                c.latency_samples,
                CIRCUIT_TTL_MS,
                c.consecutive_failures,
            ],
        }

    async def record(self, gateway: str, operation: str, outcome: Outcome, latency_ms: int) -> None:
        answer = await self._record(**self._record_args(gateway, operation, outcome, latency_ms))
        _log_if_moved(gateway, operation, answer)

    async def record_many(self, samples: Sequence[Sample]) -> None:
        if not samples:
            return
        calls: list[Call] = []
        for s in samples:
            args = self._record_args(s.gateway, s.operation, s.outcome, s.latency_ms)
            calls.append(Call(self._record, args["keys"], args["args"]))
        answers = await run_scripts(self.redis, calls)
        for sample, answer in zip(samples, answers, strict=True):
            _log_if_moved(sample.gateway, sample.operation, answer)

    async def allow(self, gateway: str, operation: str) -> bool:
        answer = int(
            await self._allow(
                keys=self._keys(gateway, operation), args=[self._time(), self.config.probe_ms]
            )
        )
        if answer == 2:
            log_transition(gateway, operation, "half_opened")
        return answer > 0

    async def snapshot(self, gateway: str, operation: str) -> GatewayHealth:
        c = self.config
        reply: list[Any] = await self._snapshot(
            keys=self._keys(gateway, operation)[:1],
            args=[self._time(), self._base(gateway, operation), c.bucket_ms, c.buckets],
        )
        return self._snapshot_of(reply)

    def _snapshot_of(self, reply: Sequence[Any]) -> GatewayHealth:
        state, until, successes, failures, p95_ms, streak = (int(v) for v in reply)
        return health_of(
            successes=successes,
            failures=failures,
            p95_ms=None if p95_ms < 0 else p95_ms,
            state=_STATES[state],
            until=until,
            streak=streak,
        )

    async def view(
        self, gateways: Sequence[str], operation: str
    ) -> list[tuple[GatewaySettings, GatewayHealth]]:
        if not gateways:
            return []
        c = self.config
        keys = [
            key
            for gateway in gateways
            for key in (self._keys(gateway, operation)[0], self._settings_key(gateway))
        ]
        bases = [self._base(gateway, operation) for gateway in gateways]
        args: list[str | int] = [self._time(), c.bucket_ms, c.buckets, *bases]
        # A batch's payments route at once: the identical reads in flight share one.
        reply: list[Any] = await self._views.run(
            (tuple(keys), tuple(args)), lambda: self._view(keys=keys, args=args)
        )
        return [
            (
                self._settings(gateway, reply[8 * i + 6], reply[8 * i + 7]),
                self._snapshot_of(reply[8 * i : 8 * i + 6]),
            )
            for i, gateway in enumerate(gateways)
        ]

    async def get_settings(self, gateway: str) -> GatewaySettings:
        enabled, priority = await self.redis.hmget(
            self._settings_key(gateway), "enabled", "priority"
        )
        return self._settings(gateway, enabled, priority)

    async def set_settings(
        self, gateway: str, *, enabled: bool | None = None, priority: int | None = None
    ) -> GatewaySettings:
        key = self._settings_key(gateway)
        changes: dict[FieldT, EncodableT] = {}
        if enabled is not None:
            changes["enabled"] = int(enabled)
        if priority is not None:
            changes["priority"] = int(priority)
        async with self.redis.pipeline(transaction=True) as pipe:
            if changes:
                pipe.hset(key, mapping=changes)
            pipe.hmget(key, "enabled", "priority")
            results = await pipe.execute()
        stored_enabled, stored_priority = results[-1]
        return self._settings(gateway, stored_enabled, stored_priority)

    async def swap_state(self, gateway: str, state: HealthState) -> HealthState | None:
        # SET … GET: one atomic command. The TTL only collects a gateway taken out of the
        # configuration; the periodic job rewrites the key every few seconds.
        previous = await self.redis.set(
            self._state_key(gateway), str(state), px=CIRCUIT_TTL_MS, get=True
        )
        return state_of(previous)

    def _settings(self, gateway: str, enabled: Any, priority: Any) -> GatewaySettings:
        return GatewaySettings(
            enabled=True if enabled is None else int(enabled) == 1,
            priority=(
                self.priorities.get(gateway, LOWEST_PRIORITY) if priority is None else int(priority)
            ),
        )


# --------------------------------------------------------------------------------------------
# Memory


#: Where operator settings lived before every key of the store shared one hash tag.
LEGACY_SETTINGS_PATTERN = "pixwave:health:settings:*"


async def adopt_legacy_settings(redis: Redis, prefix: str = "pixwave:{health}:") -> list[str]:
    """Carry operator settings (enabled, priority) from the pre-cluster key names to the new
    ones, once, without overwriting anything set since; return the gateways carried over.

    Everything else the store keeps (windows, circuits, reported states) is rebuilt within a
    minute; these are an operator's choices and never expire, so `pixwave migrate` moves them.
    """
    carried: list[str] = []
    async for raw in redis.scan_iter(match=LEGACY_SETTINGS_PATTERN, count=100):
        old = raw.decode() if isinstance(raw, bytes) else str(raw)
        gateway = old.rsplit(":", 1)[1]
        values = await redis.hgetall(old)
        for name, value in values.items():
            await redis.hsetnx(f"{prefix}settings:{gateway}", name, value)
        await redis.delete(old)
        carried.append(gateway)
    return carried


def _log_if_moved(gateway: str, operation: str, answer: Sequence[Any]) -> None:
    """Log the circuit's move, when the record script reports one."""
    transition, open_until, successes, failures = answer
    transition = transition.decode() if isinstance(transition, bytes) else str(transition)
    if transition not in TRANSITION_LOGS:
        return  # the common case: nothing changed
    fields: dict[str, Any] = {}
    if transition != "closed":
        fields["open_until"] = datetime_of(int(open_until)).isoformat()
    if transition == "opened":
        fields.update(failures=int(failures), samples=int(successes) + int(failures))
    log_transition(gateway, operation, transition, **fields)

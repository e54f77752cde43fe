"""Live gateway health shared by every process: outcome windows, a circuit breaker, settings.

Each (gateway, operation) pair has a sliding window of call outcomes kept as time buckets
(10 × 6 s by default) and a circuit breaker:

```
closed ──(failures ≥ threshold and failure rate ≥ rate, within the window)──▶ open
open ──(open_seconds pass)──▶ half-open: exactly one caller in the cluster wins the probe
half-open ──(the probe succeeds: window reset)──▶ closed
half-open ──(the probe fails)──▶ open for another open_seconds
```

``succeeded`` and ``rejected`` count as the gateway being up (a rejection is a business answer);
``unavailable`` and ``ambiguous`` are failures. :class:`RedisHealthStore` makes every transition
in one Lua script, so two processes can never both win a probe; :class:`MemoryHealthStore` is
its one-process twin for the embedded default, with exactly the same rules.

Times are kept as values (epoch milliseconds) rather than only as key TTLs, so both stores take
an injectable clock; TTLs are there only so that nothing in Redis outlives its use.

What an operator reads is one **state** per (gateway, operation), derived from the snapshot by
:data:`STATE_RULES` (first match wins), and one per gateway (:func:`gateway_verdict`): the
circuit alone cannot say "down" when the payments engine gives up on a gateway after fewer
failures than open it. The stores also remember each gateway's last reported state
(:meth:`HealthStore.swap_state`), so that a change is logged once for the whole cluster.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Protocol

import structlog
from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from pixwave.gateways.errors import Outcome


class Operation(StrEnum):
    """The payments engine's names for what it asks a gateway; each has its own circuit."""

    CHARGE = "charge"  # create a cash-in charge
    SEND = "send"  # send a Pix (cash-out)
    REFUND = "refund"  # return a received Pix
    QUERY = "query"  # any read (a charge, a send, a refund), and cancelling an unpaid charge


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"  # the cooldown is over; one probe decides


class HealthState(StrEnum):
    """What an operator is told about a gateway or one of its operations (see STATE_RULES)."""

    UP = "up"  # answering
    DEGRADED = "degraded"  # answering, but failing more than it should, or its last call failed
    DOWN = "down"  # circuit open or half-open, or too many failures in a row
    DISABLED = "disabled"  # the operator turned it off (gateway level only)
    IDLE = "idle"  # no calls in the window: nothing is known


#: Outcomes that prove the gateway answered.
UP_OUTCOMES: Final = frozenset({Outcome.SUCCEEDED, Outcome.REJECTED})

#: Priority of a gateway the store was not told about at construction: last.
LOWEST_PRIORITY: Final = 100

#: An open circuit nobody touches for this long is forgotten (then closed): garbage
#: collection for a gateway taken out of the configuration, never a recovery path.
CIRCUIT_TTL_MS: Final = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthConfig:
    window_seconds: float = 60.0
    buckets: int = 10  # the window slides one bucket (window / buckets) at a time
    failure_threshold: int = 5  # at least this many failures in the window …
    failure_rate: float = 0.5  # … and at least this share of the window's calls, to open
    #: … or this many failures in a row, whatever else the window holds (0: off). After a
    #: minute of traffic the rate alone would need as many failures as there were successes.
    consecutive_failures: int = 10
    open_seconds: float = 10.0  # cooldown before a probe is allowed
    #: How long a won probe blocks other callers; after that (the prober died or hung) the
    #: next caller may probe. Above the gateway read timeout.
    probe_seconds: float = 30.0
    #: Latencies kept per bucket (the newest) for the p95: bounds memory and the cost of a
    #: snapshot, which sorts at most buckets × latency_samples numbers.
    latency_samples: int = 20
    #: Calls in the window before routing judges a gateway's success rate and latency: one
    #: slow or failed call must not move traffic off the operator's preferred gateway (a dead
    #: gateway is the circuit's job). Also when a state can be ``degraded`` by its rate.
    min_samples: int = 5
    #: Failures in a row that make the state ``down`` while the circuit is still closed: as
    #: many as the payments engine tries one gateway before falling back (3 by default), so
    #: one payment that gave up on a gateway is enough to show it.
    down_after_failures: int = 3
    #: A judged success rate below this makes the state ``degraded``.
    degraded_below: float = 0.9

    def __post_init__(self) -> None:
        if self.window_seconds <= 0 or self.open_seconds <= 0 or self.probe_seconds <= 0:
            raise ValueError("window_seconds, open_seconds and probe_seconds must be positive")
        if self.buckets < 1 or self.failure_threshold < 1 or self.latency_samples < 1:
            raise ValueError("buckets, failure_threshold and latency_samples must be ≥ 1")
        if not 0 < self.failure_rate <= 1:
            raise ValueError("failure_rate must be in (0, 1]")
        if self.consecutive_failures < 0:
            raise ValueError("consecutive_failures must be ≥ 0")
        if self.min_samples < 1 or self.down_after_failures < 1:
            raise ValueError("min_samples and down_after_failures must be ≥ 1")
        if not 0 <= self.degraded_below <= 1:
            raise ValueError("degraded_below must be in [0, 1]")

    @property
    def bucket_ms(self) -> int:
        return max(1, round(self.window_seconds * 1000 / self.buckets))

    @property
    def open_ms(self) -> int:
        return max(1, round(self.open_seconds * 1000))

    @property
    def probe_ms(self) -> int:
        return max(1, round(self.probe_seconds * 1000))

    @property
    def streak_ms(self) -> int:
        """How long a run of failures lasts without a new one: a window and a bucket, the
        life of the window's newest bucket."""
        return self.bucket_ms * (self.buckets + 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayHealth:
    """What the window says about one (gateway, operation) right now."""

    success_rate: float | None  # None with no samples
    samples: int
    p95_latency_ms: int | None
    circuit: CircuitState
    #: When the cooldown ends (open) or ended (half-open); None when closed.
    open_until: datetime | None
    #: Failures in a row up to the newest call (0: the newest call was answered). Forgotten
    #: once the newest failure is older than the window plus a bucket, like the circuit's
    #: own streak rule.
    streak: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewaySettings:
    """Operator settings for one gateway, the same in every process at once."""

    enabled: bool
    priority: int  # lower is preferred


# --------------------------------------------------------------------------------------------
# States


def is_judged(health: GatewayHealth, min_samples: int) -> bool:
    """Enough calls in the window (``HealthConfig.min_samples``) for the success rate and the
    latency to mean something; below that, routing goes by the operator's priority."""
    return health.samples >= max(1, min_samples)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A state and the name of the rule that gave it (the "why" shown and logged)."""

    state: HealthState
    reason: str


@dataclass(frozen=True, slots=True)
class StateRule:
    state: HealthState
    reason: str
    applies: Callable[[GatewayHealth, HealthConfig], bool]


def _low_success_rate(health: GatewayHealth, config: HealthConfig) -> bool:
    rate = health.success_rate
    return (
        is_judged(health, config.min_samples) and rate is not None and rate < config.degraded_below
    )


#: One (gateway, operation)'s state: the first rule that applies. A broken circuit or a run
#: of failures says more than the window's average, so they come first; a gateway whose last
#: call failed is not "idle" even once that call has left the window.
STATE_RULES: Final[tuple[StateRule, ...]] = (
    StateRule(HealthState.DOWN, "circuit_open", lambda h, _: h.circuit is CircuitState.OPEN),
    StateRule(
        HealthState.DOWN, "circuit_half_open", lambda h, _: h.circuit is CircuitState.HALF_OPEN
    ),
    StateRule(
        HealthState.DOWN, "failures_in_a_row", lambda h, c: h.streak >= c.down_after_failures
    ),
    StateRule(HealthState.DEGRADED, "last_call_failed", lambda h, _: h.streak > 0),
    StateRule(HealthState.IDLE, "no_recent_calls", lambda h, _: h.samples == 0),
    StateRule(HealthState.DEGRADED, "low_success_rate", _low_success_rate),
    StateRule(HealthState.UP, "answering", lambda _h, _c: True),
)

#: Worst first: a gateway is in the state of its worst operation.
SEVERITY: Final = (HealthState.DOWN, HealthState.DEGRADED, HealthState.UP, HealthState.IDLE)


def operation_verdict(health: GatewayHealth, config: HealthConfig) -> Verdict:
    """The state of one (gateway, operation) by :data:`STATE_RULES` (the last always applies)."""
    return next(
        Verdict(rule.state, rule.reason) for rule in STATE_RULES if rule.applies(health, config)
    )


def gateway_verdict(settings: GatewaySettings, operations: Mapping[str, Verdict]) -> Verdict:
    """``disabled`` when the operator turned the gateway off (its operations keep their own
    states, so one can see what it would meet if enabled); otherwise its worst operation's
    state, with that operation named in the reason (the first of equals, in the order given)."""
    if not settings.enabled:
        return Verdict(HealthState.DISABLED, "disabled_by_operator")
    if not operations:
        return Verdict(HealthState.IDLE, "no_operations")
    operation, worst = min(operations.items(), key=lambda item: SEVERITY.index(item[1].state))
    return Verdict(worst.state, f"{operation}: {worst.reason}")


class HealthStore(Protocol):
    """Where outcomes, circuits and operator settings live."""

    config: HealthConfig

    async def record(self, gateway: str, operation: str, outcome: Outcome, latency_ms: int) -> None:
        """Count one call's outcome, and move the circuit if that changes it."""
        ...

    async def allow(self, gateway: str, operation: str) -> bool:
        """May a call be sent now? In half-open, True for exactly one caller (the probe)."""
        ...

    async def snapshot(self, gateway: str, operation: str) -> GatewayHealth:
        """Read-only view; never consumes a probe."""
        ...

    async def get_settings(self, gateway: str) -> GatewaySettings: ...

    async def view(
        self, gateways: Sequence[str], operation: str
    ) -> list[tuple[GatewaySettings, GatewayHealth]]:
        """Settings and snapshot of each gateway, in order: what the router ranks by."""
        ...

    async def set_settings(
        self, gateway: str, *, enabled: bool | None = None, priority: int | None = None
    ) -> GatewaySettings:
        """Change the given fields only, and return the result."""
        ...

    async def swap_state(self, gateway: str, state: HealthState) -> HealthState | None:
        """Remember ``state`` as the gateway's last reported one and return the one before
        (None: none yet), atomically, so that of two reporters only one sees a change."""
        ...


def default_priorities(gateways: Iterable[str]) -> dict[str, int]:
    """1, 2, 3 … in the order given: the deployment's preference when nobody has set one."""
    return {name: index for index, name in enumerate(gateways, start=1)}


def p95(latencies: Sequence[int]) -> int | None:
    """Nearest-rank 95th percentile: a latency that was really observed. Integer arithmetic,
    the same as the snapshot script's, so both stores pick the same sample."""
    if not latencies:
        return None
    ordered = sorted(latencies)
    return ordered[(95 * len(ordered) + 99) // 100 - 1]


def _datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _health(
    *,
    successes: int,
    failures: int,
    p95_ms: int | None,
    state: CircuitState,
    until: int,
    streak: int,
) -> GatewayHealth:
    samples = successes + failures
    return GatewayHealth(
        success_rate=successes / samples if samples else None,
        samples=samples,
        p95_latency_ms=p95_ms,
        circuit=state,
        open_until=None if state is CircuitState.CLOSED else _datetime(until),
        streak=streak,
    )


def _state_of(value: Any) -> HealthState | None:
    """A stored state back as the enum; None when absent or unknown to this version."""
    if value is None:
        return None
    try:
        return HealthState(value.decode() if isinstance(value, bytes) else str(value))
    except ValueError:
        return None


#: Circuit transition → (level, event, fields every line of it carries).
_TRANSITION_LOGS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "opened": ("warning", "gateway.circuit_opened", {}),
    "reopened": ("warning", "gateway.circuit_opened", {"after_probe": True}),
    "half_opened": ("info", "gateway.circuit_half_opened", {}),
    "closed": ("info", "gateway.circuit_closed", {}),
}


def _log_transition(gateway: str, operation: str, transition: str, **fields: Any) -> None:
    """One line per circuit change. The logger is looked up per call (transitions are rare)
    so that whatever logging configuration is current applies."""
    level, event, always = _TRANSITION_LOGS[transition]
    log = structlog.get_logger("pixwave.gateways.health")
    getattr(log, level)(event, gateway=gateway, operation=operation, **always, **fields)


# --------------------------------------------------------------------------------------------
# Redis

# Every script takes the time as ARGV[1] (epoch ms), or "" to use the Redis server's clock —
# one clock for the whole cluster. Bucket keys are derived inside the script from the current
# bucket index (unknown to the caller when Redis keeps the time); they share the circuit's
# hash tag, so they live in the same slot.
_NOW = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# KEYS: circuit, probe. ARGV: now, key base, up (1/0), latency ms, bucket ms, buckets,
# failure threshold, failure rate, open ms, latencies kept per bucket, circuit TTL ms,
# consecutive failures that open (0: off).
# Returns {transition, open_until, successes, failures}; transition is "" when none.
_RECORD = (
    _NOW
    + """
local base = ARGV[2]
local up = ARGV[3] == '1'
local latency = ARGV[4]
local bucket_ms = tonumber(ARGV[5])
local buckets = tonumber(ARGV[6])
local threshold = tonumber(ARGV[7])
local rate = tonumber(ARGV[8])
local open_ms = tonumber(ARGV[9])
local keep = tonumber(ARGV[10])
local circuit_ttl = ARGV[11]
local in_a_row = tonumber(ARGV[12])
local index = math.floor(now / bucket_ms)
local bucket_ttl = bucket_ms * (buckets + 1)
local streak_key = base .. 'streak'

local function count()
  if up then
    redis.call('DEL', streak_key)
  else
    -- a streak lasts one window: failures further apart are not "in a row"
    local v = redis.call('HMGET', streak_key, 'n', 'at')
    local n = tonumber(v[1]) or 0
    if now - (tonumber(v[2]) or 0) > bucket_ttl then n = 0 end
    redis.call('HSET', streak_key, 'n', n + 1, 'at', now)
    redis.call('PEXPIRE', streak_key, bucket_ttl)
  end
  local b = base .. 'b:' .. index
  redis.call('HINCRBY', b, up and 's' or 'f', 1)
  redis.call('PEXPIRE', b, bucket_ttl)
  local l = base .. 'l:' .. index
  redis.call('RPUSH', l, latency)
  redis.call('LTRIM', l, -keep, -1)
  redis.call('PEXPIRE', l, bucket_ttl)
end

local function open()
  local open_until = now + open_ms
  redis.call('HSET', KEYS[1], 'until', open_until)
  redis.call('PEXPIRE', KEYS[1], circuit_ttl)
  redis.call('DEL', KEYS[2])
  return open_until
end

local open_until = tonumber(redis.call('HGET', KEYS[1], 'until'))
if open_until and open_until <= now then
  -- half-open: this outcome decides, whoever reports it
  if up then
    for i = index - buckets + 1, index do
      redis.call('DEL', base .. 'b:' .. i, base .. 'l:' .. i)
    end
    redis.call('DEL', KEYS[1], KEYS[2])
    count()
    return {'closed', 0, 1, 0}
  end
  count()
  return {'reopened', open(), 0, 0}
end
count()
if open_until or up then
  return {'', 0, 0, 0}
end
local successes, failures = 0, 0
for i = index - buckets + 1, index do
  local v = redis.call('HMGET', base .. 'b:' .. i, 's', 'f')
  successes = successes + (tonumber(v[1]) or 0)
  failures = failures + (tonumber(v[2]) or 0)
end
local streak = tonumber(redis.call('HGET', streak_key, 'n')) or 0
if (failures >= threshold and failures >= rate * (successes + failures))
    or (in_a_row > 0 and streak >= in_a_row) then
  return {'opened', open(), successes, failures}
end
return {'', 0, successes, failures}
"""
)

# KEYS: circuit, probe. ARGV: now, probe ms. Returns 0 (no), 1 (closed: yes), 2 (won the probe).
_ALLOW = (
    _NOW
    + """
local open_until = tonumber(redis.call('HGET', KEYS[1], 'until'))
if not open_until then return 1 end
if now < open_until then return 0 end
local held_until = tonumber(redis.call('GET', KEYS[2]))
if held_until and held_until > now then return 0 end
redis.call('SET', KEYS[2], now + tonumber(ARGV[2]), 'PX', ARGV[2])
return 2
"""
)

# One (gateway, operation)'s window and circuit: {state (0 closed, 1 open, 2 half-open),
# open_until, successes, failures, p95 or -1, failures in a row}; the p95 is nearest-rank,
# like :func:`p95`; the streak is 0 once its newest failure is older than the streak's life.
_SNAPSHOT_FUNCTION = """
local function snapshot(circuit, base, bucket_ms, buckets)
  local index = math.floor(now / bucket_ms)
  local open_until = tonumber(redis.call('HGET', circuit, 'until'))
  local state = 0
  if open_until then
    if now < open_until then state = 1 else state = 2 end
  end
  local successes, failures, latencies = 0, 0, {}
  for i = index - buckets + 1, index do
    local v = redis.call('HMGET', base .. 'b:' .. i, 's', 'f')
    successes = successes + (tonumber(v[1]) or 0)
    failures = failures + (tonumber(v[2]) or 0)
    for _, latency in ipairs(redis.call('LRANGE', base .. 'l:' .. i, 0, -1)) do
      table.insert(latencies, tonumber(latency))
    end
  end
  local p95 = -1
  if #latencies > 0 then
    table.sort(latencies)
    p95 = latencies[math.floor((95 * #latencies + 99) / 100)]
  end
  local streak = 0
  local run = redis.call('HMGET', base .. 'streak', 'n', 'at')
  if run[1] and now - (tonumber(run[2]) or 0) <= bucket_ms * (buckets + 1) then
    streak = tonumber(run[1])
  end
  return {state, open_until or 0, successes, failures, p95, streak}
end
"""

# KEYS: circuit. ARGV: now, key base, bucket ms, buckets.
_SNAPSHOT = (
    _NOW
    + _SNAPSHOT_FUNCTION
    + """
return snapshot(KEYS[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
"""
)

# The router's question in one round trip. KEYS: per gateway, its circuit and settings hash.
# ARGV: now, bucket ms, buckets, then per gateway its key base. Returns per gateway the
# snapshot's six values, then enabled and priority (false when unset).
_VIEW = (
    _NOW
    + _SNAPSHOT_FUNCTION
    + """
local out = {}
local bucket_ms, buckets = tonumber(ARGV[2]), tonumber(ARGV[3])
for g = 1, #KEYS / 2 do
  for _, v in ipairs(snapshot(KEYS[2 * g - 1], ARGV[3 + g], bucket_ms, buckets)) do
    table.insert(out, v)
  end
  local settings = redis.call('HMGET', KEYS[2 * g], 'enabled', 'priority')
  table.insert(out, settings[1])
  table.insert(out, settings[2])
end
return out
"""
)

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

    async def record(self, gateway: str, operation: str, outcome: Outcome, latency_ms: int) -> None:
        c = self.config
        up = Outcome(outcome) in UP_OUTCOMES
        transition, open_until, successes, failures = await self._record(
            keys=self._keys(gateway, operation),
            args=[
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
        )
        transition = transition.decode() if isinstance(transition, bytes) else str(transition)
        if transition not in _TRANSITION_LOGS:
            return  # the common case: nothing changed
        fields: dict[str, Any] = {}
        if transition != "closed":
            fields["open_until"] = _datetime(int(open_until)).isoformat()
        if transition == "opened":
            fields.update(failures=int(failures), samples=int(successes) + int(failures))
        _log_transition(gateway, operation, transition, **fields)

    async def allow(self, gateway: str, operation: str) -> bool:
        answer = int(
            await self._allow(
                keys=self._keys(gateway, operation), args=[self._time(), self.config.probe_ms]
            )
        )
        if answer == 2:
            _log_transition(gateway, operation, "half_opened")
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
        return _health(
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
        reply: list[Any] = await self._view(
            keys=keys, args=[self._time(), c.bucket_ms, c.buckets, *bases]
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
        return _state_of(previous)

    def _settings(self, gateway: str, enabled: Any, priority: Any) -> GatewaySettings:
        return GatewaySettings(
            enabled=True if enabled is None else int(enabled) == 1,
            priority=(
                self.priorities.get(gateway, LOWEST_PRIORITY) if priority is None else int(priority)
            ),
        )


# --------------------------------------------------------------------------------------------
# Memory


@dataclass(slots=True)
class _Bucket:
    successes: int = 0
    failures: int = 0
    latencies: deque[int] = field(default_factory=deque)


@dataclass(slots=True)
class _Pair:
    buckets: dict[int, _Bucket] = field(default_factory=dict)
    open_until: int | None = None  # None: closed
    probe_until: int | None = None
    streak: int = 0  # failures in a row
    streak_at: int = 0  # when the last of them was counted (a streak lasts one window)


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


class MemoryHealthStore:
    """The embedded default's store: one process is the whole deployment. Same rules as
    :class:`RedisHealthStore`; no method awaits anything, so each runs atomically."""

    def __init__(
        self,
        config: HealthConfig | None = None,
        *,
        gateways: Iterable[str] = (),
        now: Callable[[], float] = time.time,
    ) -> None:
        self.config = config or HealthConfig()
        self.priorities = default_priorities(gateways)
        self._now = now
        self._pairs: dict[tuple[str, str], _Pair] = {}
        self._settings: dict[str, GatewaySettings] = {}
        self._states: dict[str, HealthState] = {}

    def _clock(self) -> tuple[int, int]:
        """(now in ms, current bucket index)."""
        now = int(self._now() * 1000)
        return now, now // self.config.bucket_ms

    def _pair(self, gateway: str, operation: str) -> _Pair:
        return self._pairs.setdefault((gateway, operation), _Pair())

    def _window(self, pair: _Pair, index: int) -> list[_Bucket]:
        first = index - self.config.buckets + 1
        for stale in [i for i in pair.buckets if i < first]:
            del pair.buckets[stale]
        return [bucket for i, bucket in pair.buckets.items() if first <= i <= index]

    async def record(self, gateway: str, operation: str, outcome: Outcome, latency_ms: int) -> None:
        c = self.config
        now, index = self._clock()
        pair = self._pair(gateway, operation)
        up = Outcome(outcome) in UP_OUTCOMES

        def count() -> None:
            if up:
                pair.streak = 0
            else:
                stale = now - pair.streak_at > c.streak_ms
                pair.streak = 1 if stale else pair.streak + 1
                pair.streak_at = now
            bucket = pair.buckets.get(index)
            if bucket is None:
                bucket = pair.buckets[index] = _Bucket(latencies=deque(maxlen=c.latency_samples))
            if up:
                bucket.successes += 1
            else:
                bucket.failures += 1
            bucket.latencies.append(max(0, int(latency_ms)))

        if pair.open_until is not None and pair.open_until <= now:
            if up:
                pair.buckets.clear()
                pair.open_until = pair.probe_until = None
                count()
                _log_transition(gateway, operation, "closed")
            else:
                count()
                pair.open_until = now + c.open_ms
                pair.probe_until = None
                _log_transition(
                    gateway,
                    operation,
                    "reopened",
                    open_until=_datetime(pair.open_until).isoformat(),
                )
            return
        count()
        if pair.open_until is not None or up:
            return
        window = self._window(pair, index)
        successes = sum(b.successes for b in window)
        failures = sum(b.failures for b in window)
        by_rate = failures >= c.failure_threshold and failures >= c.failure_rate * (
            successes + failures
        )
        in_a_row = 0 < c.consecutive_failures <= pair.streak
        if by_rate or in_a_row:
            pair.open_until = now + c.open_ms
            pair.probe_until = None
            _log_transition(
                gateway,
                operation,
                "opened",
                failures=failures,
                samples=successes + failures,
                open_until=_datetime(pair.open_until).isoformat(),
            )

    async def allow(self, gateway: str, operation: str) -> bool:
        now, _ = self._clock()
        pair = self._pairs.get((gateway, operation))
        if pair is None or pair.open_until is None:
            return True
        if now < pair.open_until:
            return False
        if pair.probe_until is not None and pair.probe_until > now:
            return False
        pair.probe_until = now + self.config.probe_ms
        _log_transition(gateway, operation, "half_opened")
        return True

    async def snapshot(self, gateway: str, operation: str) -> GatewayHealth:
        now, index = self._clock()
        pair = self._pairs.get((gateway, operation)) or _Pair()
        window = self._window(pair, index)
        state = CircuitState.CLOSED
        if pair.open_until is not None:
            state = CircuitState.OPEN if now < pair.open_until else CircuitState.HALF_OPEN
        return _health(
            successes=sum(b.successes for b in window),
            failures=sum(b.failures for b in window),
            p95_ms=p95([latency for b in window for latency in b.latencies]),
            state=state,
            until=pair.open_until or 0,
            streak=pair.streak if now - pair.streak_at <= self.config.streak_ms else 0,
        )

    async def view(
        self, gateways: Sequence[str], operation: str
    ) -> list[tuple[GatewaySettings, GatewayHealth]]:
        return [
            (await self.get_settings(gateway), await self.snapshot(gateway, operation))
            for gateway in gateways
        ]

    async def get_settings(self, gateway: str) -> GatewaySettings:
        return self._settings.get(gateway) or GatewaySettings(
            enabled=True, priority=self.priorities.get(gateway, LOWEST_PRIORITY)
        )

    async def set_settings(
        self, gateway: str, *, enabled: bool | None = None, priority: int | None = None
    ) -> GatewaySettings:
        current = await self.get_settings(gateway)
        updated = GatewaySettings(
            enabled=current.enabled if enabled is None else enabled,
            priority=current.priority if priority is None else priority,
        )
        self._settings[gateway] = updated
        return updated

    async def swap_state(self, gateway: str, state: HealthState) -> HealthState | None:
        previous = self._states.get(gateway)
        self._states[gateway] = state
        return previous


def build_health_store(
    redis: Redis | None,
    config: HealthConfig | None = None,
    *,
    gateways: Sequence[str] = (),
) -> HealthStore:
    """Redis when the deployment has it (every process shares one view), memory otherwise."""
    if redis is None:
        return MemoryHealthStore(config, gateways=gateways)
    return RedisHealthStore(redis, config, gateways=gateways)

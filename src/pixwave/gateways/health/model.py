"""The health model: operations, circuit states, the window's snapshot, the rules that turn
it into a state, operator settings, and the store protocol both stores implement."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Protocol

import structlog

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


@dataclass(frozen=True, slots=True)
class Sample:
    """One call's outcome, as :meth:`HealthStore.record` counts it."""

    gateway: str
    operation: str
    outcome: Outcome
    latency_ms: int


class HealthStore(Protocol):
    """Where outcomes, circuits and operator settings live."""

    config: HealthConfig

    async def record(self, gateway: str, operation: str, outcome: Outcome, latency_ms: int) -> None:
        """Count one call's outcome, and move the circuit if that changes it."""
        ...

    async def record_many(self, samples: Sequence[Sample]) -> None:
        """:meth:`record` for each, in order, in one round trip (a batch's gateway reads)."""
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


def datetime_of(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def health_of(
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
        open_until=None if state is CircuitState.CLOSED else datetime_of(until),
        streak=streak,
    )


def state_of(value: Any) -> HealthState | None:
    """A stored state back as the enum; None when absent or unknown to this version."""
    if value is None:
        return None
    try:
        return HealthState(value.decode() if isinstance(value, bytes) else str(value))
    except ValueError:
        return None


#: Circuit transition → (level, event, fields every line of it carries).
TRANSITION_LOGS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "opened": ("warning", "gateway.circuit_opened", {}),
    "reopened": ("warning", "gateway.circuit_opened", {"after_probe": True}),
    "half_opened": ("info", "gateway.circuit_half_opened", {}),
    "closed": ("info", "gateway.circuit_closed", {}),
}


def log_transition(gateway: str, operation: str, transition: str, **fields: Any) -> None:
    """One line per circuit change. The logger is looked up per call (transitions are rare)
    so that whatever logging configuration is current applies."""
    level, event, always = TRANSITION_LOGS[transition]
    log = structlog.get_logger("pixwave.gateways.health")
    getattr(log, level)(event, gateway=gateway, operation=operation, **always, **fields)


# --------------------------------------------------------------------------------------------

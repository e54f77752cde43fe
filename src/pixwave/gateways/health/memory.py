"""The embedded default's store: one process is the whole deployment. Same rules as the Redis
store; no method awaits anything, so each runs atomically."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from pixwave.gateways.errors import Outcome
from pixwave.gateways.health.model import (
    LOWEST_PRIORITY,
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
    p95,
)


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

    async def record_many(self, samples: Sequence[Sample]) -> None:
        for s in samples:
            await self.record(s.gateway, s.operation, s.outcome, s.latency_ms)

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
                log_transition(gateway, operation, "closed")
            else:
                count()
                pair.open_until = now + c.open_ms
                pair.probe_until = None
                log_transition(
                    gateway,
                    operation,
                    "reopened",
                    open_until=datetime_of(pair.open_until).isoformat(),
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
            log_transition(
                gateway,
                operation,
                "opened",
                failures=failures,
                samples=successes + failures,
                open_until=datetime_of(pair.open_until).isoformat(),
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
        log_transition(gateway, operation, "half_opened")
        return True

    async def snapshot(self, gateway: str, operation: str) -> GatewayHealth:
        now, index = self._clock()
        pair = self._pairs.get((gateway, operation)) or _Pair()
        window = self._window(pair, index)
        state = CircuitState.CLOSED
        if pair.open_until is not None:
            state = CircuitState.OPEN if now < pair.open_until else CircuitState.HALF_OPEN
        return health_of(
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

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

from collections.abc import Sequence

from redis.asyncio import Redis

from pixwave.gateways.health.memory import MemoryHealthStore
from pixwave.gateways.health.model import (
    CIRCUIT_TTL_MS,
    STATE_RULES,
    UP_OUTCOMES,
    CircuitState,
    GatewayHealth,
    GatewaySettings,
    HealthConfig,
    HealthState,
    HealthStore,
    Operation,
    Sample,
    StateRule,
    Verdict,
    default_priorities,
    gateway_verdict,
    is_judged,
    operation_verdict,
    p95,
)
from pixwave.gateways.health.redis import RedisHealthStore, adopt_legacy_settings

__all__ = [
    "CIRCUIT_TTL_MS",
    "STATE_RULES",
    "UP_OUTCOMES",
    "CircuitState",
    "GatewayHealth",
    "GatewaySettings",
    "HealthConfig",
    "HealthState",
    "HealthStore",
    "MemoryHealthStore",
    "Operation",
    "RedisHealthStore",
    "Sample",
    "StateRule",
    "Verdict",
    "adopt_legacy_settings",
    "build_health_store",
    "default_priorities",
    "gateway_verdict",
    "is_judged",
    "operation_verdict",
    "p95",
]


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

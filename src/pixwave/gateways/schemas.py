"""API shapes of the gateways' live health and operator settings."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from pixwave.gateways.base import Capability
from pixwave.gateways.health import CircuitState, GatewayHealth, HealthState, Verdict
from pixwave.gateways.router import GatewayStatus

#: Shown in the OpenAPI description of both ``state`` fields; docs/gateways.md has the rules.
STATE_DESCRIPTION = (
    "up (answering), degraded (a judged success rate below the threshold, or the last call "
    "failed), down (circuit open or half-open, or several failures in a row), idle (no calls "
    "in the window: unknown), disabled (turned off by an operator; gateway level only)."
)


class OperationHealthRead(BaseModel):
    state: HealthState = Field(description=STATE_DESCRIPTION)
    state_reason: str = Field(
        description="The rule that gave the state, e.g. failures_in_a_row, low_success_rate."
    )
    circuit: CircuitState = Field(description="closed, open (no traffic) or half_open (probing).")
    success_rate: float | None = Field(
        description="Share of the window's calls the gateway answered; null with no samples."
    )
    p95_latency_ms: int | None
    samples: int = Field(description="Calls in the sliding window (60 s by default).")
    open_until: datetime | None = Field(
        description="When the circuit's cooldown ends (open) or ended (half_open)."
    )

    @classmethod
    def of(cls, health: GatewayHealth, verdict: Verdict) -> OperationHealthRead:
        return cls(
            state=verdict.state,
            state_reason=verdict.reason,
            circuit=health.circuit,
            success_rate=health.success_rate,
            p95_latency_ms=health.p95_latency_ms,
            samples=health.samples,
            open_until=health.open_until,
        )


class GatewayRead(BaseModel):
    name: str
    state: HealthState = Field(
        description="disabled, or the worst of its operations' states (down, degraded, up, "
        "idle). " + STATE_DESCRIPTION
    )
    state_reason: str = Field(
        description="Why: disabled_by_operator, or the worst operation and its rule "
        "(e.g. 'send: failures_in_a_row')."
    )
    simulated: bool = Field(
        description="True when this gateway is a built-in simulator, not a real provider."
    )
    enabled: bool
    priority: int = Field(description="Lower is preferred when health is equal.")
    capabilities: list[Capability]
    operations: dict[str, OperationHealthRead] = Field(
        description="Health per operation: charge, send, refund, query."
    )

    @classmethod
    def of(cls, status: GatewayStatus) -> GatewayRead:
        return cls(
            name=status.name,
            state=status.state,
            state_reason=status.verdict.reason,
            simulated=status.simulated,
            enabled=status.settings.enabled,
            priority=status.settings.priority,
            capabilities=sorted(status.capabilities),
            operations={
                operation: OperationHealthRead.of(health, status.verdicts[operation])
                for operation, health in status.operations.items()
            },
        )


class GatewayUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = Field(default=None, description="false: route nothing to it.")
    priority: int | None = Field(default=None, ge=1, le=100, description="Lower is preferred.")

"""API shapes of the gateways' live health and operator settings."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from pixwave.gateways.base import Capability
from pixwave.gateways.health import CircuitState, GatewayHealth
from pixwave.gateways.router import GatewayStatus


class OperationHealthRead(BaseModel):
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
    def of(cls, health: GatewayHealth) -> OperationHealthRead:
        return cls(
            circuit=health.circuit,
            success_rate=health.success_rate,
            p95_latency_ms=health.p95_latency_ms,
            samples=health.samples,
            open_until=health.open_until,
        )


class GatewayRead(BaseModel):
    name: str
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
            enabled=status.settings.enabled,
            priority=status.settings.priority,
            capabilities=sorted(status.capabilities),
            operations={
                operation: OperationHealthRead.of(health)
                for operation, health in status.operations.items()
            },
        )


class GatewayUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = Field(default=None, description="false: route nothing to it.")
    priority: int | None = Field(default=None, ge=1, le=100, description="Lower is preferred.")

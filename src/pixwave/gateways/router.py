"""Which gateway a payment should use now, from the shared health view and operator settings.

The payments engine asks :meth:`Router.choose` for the best gateway it may call now (a
half-open circuit's single probe is handed out there), :meth:`Router.acquire` before trying the
same gateway again, and reports every call with :meth:`Router.record`.

Candidates are the gateways with the capability, enabled by the operator, whose circuit for the
operation is not open. Ranking (:func:`rank`), best first:

1. recent success rate, rounded to 0.05 so that noise does not flap traffic between gateways;
2. p95 latency, rounded to 50 ms;
3. the expected fee of this payment at that gateway (``gateways/fees.py``), cheaper first —
   health always comes first, so a cheap gateway that is failing never wins;
4. the operator's priority (lower first), then the name, so the order is total.

The engine passes a :class:`PaymentContext` (amount, Pix key type, kind) with every choice, so
ranking rules can look at the payment itself; the fee is the first rule that does.

A gateway is **judged** on 1 and 2 only once it has ``min_samples`` calls (5 by default) in the
window for that operation. One that has fewer — idle, or just started — is assumed to be as good
as the best judged gateway: a perfect rate, and the latency of the fastest judged gateway that
has a perfect (rounded) rate, or 0 ms when there is none. So between such gateways, and between
one of them and a healthy judged gateway, the operator's priority decides; a judged gateway
whose rounded rate is below 100 % ranks after it. Without this, one 120 ms call would rank the
preferred gateway below an untried one (p95 "0 ms") and traffic would never come back to it. A
dead gateway below the minimum is stopped by its circuit (5 failures open it), not by ranking.

:meth:`Router.probe_open_circuits` brings a gateway back without traffic: it wins the probe of
each circuit whose cooldown is over and makes one cheap read. :meth:`Router.report_state_changes`
logs each change of a gateway's state (``health.STATE_RULES``) once for the whole cluster; both
run in the ``gateways.probe`` periodic job, never on a payment's path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import structlog

from pixwave.exceptions import NotFound
from pixwave.gateways.base import Capability, PixGateway
from pixwave.gateways.errors import (
    GatewayError,
    GatewayRejected,
    Outcome,
    UnsupportedOperation,
)
from pixwave.gateways.fees import NO_FEES, FeeSchedule
from pixwave.gateways.health import (
    UP_OUTCOMES,
    CircuitState,
    GatewayHealth,
    GatewaySettings,
    HealthState,
    HealthStore,
    Operation,
    Sample,
    Verdict,
    gateway_verdict,
    is_judged,
    operation_verdict,
)
from pixwave.observability.metrics import observe_gateway_status
from pixwave.pix import generate_txid

log = structlog.get_logger("pixwave.gateways.router")

#: The capability an operation needs; None: any gateway can be read from.
OPERATION_CAPABILITY: Final[dict[Operation, Capability | None]] = {
    Operation.CHARGE: Capability.CHARGE,
    Operation.SEND: Capability.SEND,
    Operation.REFUND: Capability.REFUND,
    Operation.QUERY: None,
}

RATE_STEP: Final = 0.05
LATENCY_STEP_MS: Final = 50
#: The rate bucket of 100 %: what a gateway below ``min_samples`` is assumed to have.
PERFECT_RATE: Final = -round(1.0 / RATE_STEP)

#: The level of a ``gateway.state_changed`` line, by the state the gateway changed to.
STATE_CHANGE_LEVELS: Final[dict[HealthState, str]] = {
    HealthState.DOWN: "warning",
    HealthState.DEGRADED: "warning",
    HealthState.UP: "info",
    HealthState.IDLE: "info",
    HealthState.DISABLED: "info",
}


class UnknownGateway(NotFound):
    code = "gateway_not_found"
    title = "No such gateway"


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayStatus:
    """One gateway as operators see it: settings, capabilities, each operation's health and
    state, and the gateway's own state."""

    name: str
    settings: GatewaySettings
    capabilities: frozenset[Capability]
    #: True when this gateway is a built-in simulator, not a real provider.
    simulated: bool
    operations: dict[str, GatewayHealth]
    #: Each operation's state (same keys as ``operations``).
    verdicts: dict[str, Verdict]
    #: The gateway's state: ``disabled``, or its worst operation's.
    verdict: Verdict

    @property
    def state(self) -> HealthState:
        return self.verdict.state


@dataclass(frozen=True, slots=True, kw_only=True)
class StateChange:
    """A gateway's state as reported now, differing from the one reported before."""

    gateway: str
    #: ``idle`` when never reported (a new deployment, or the job stopped for a day).
    previous: HealthState
    current: Verdict


def operations_of(gateway: PixGateway) -> list[Operation]:
    """The operations a gateway can be asked for, each with its own circuit."""
    return [
        operation
        for operation, capability in OPERATION_CAPABILITY.items()
        if capability is None or capability in gateway.capabilities
    ]


def score(health: GatewayHealth) -> tuple[int, int]:
    """(rate bucket, latency bucket), smaller is better. Integer buckets make near-equal
    gateways tie exactly."""
    rate = 1.0 if health.success_rate is None else health.success_rate
    latency = health.p95_latency_ms or 0
    return -int(rate / RATE_STEP + 0.5), int(latency / LATENCY_STEP_MS + 0.5)


def rank(
    gateways: Sequence[tuple[str, GatewaySettings, GatewayHealth]],
    *,
    min_samples: int,
    fees: Mapping[str, int] | None = None,
) -> list[str]:
    """The names, best first (see the module docstring). A gateway with fewer than
    ``min_samples`` calls scores as the best judged gateway with a perfect rounded rate would
    (0 ms without one), so that fees and the operator's priority decide against it.
    ``fees``: each gateway's expected fee for the payment (centavos)."""
    fees = fees or {}
    scores = {
        name: score(health) if is_judged(health, min_samples) else None
        for name, _, health in gateways
    }
    perfect = [s[1] for s in scores.values() if s is not None and s[0] == PERFECT_RATE]
    unjudged = (PERFECT_RATE, min(perfect, default=0))
    ordered = sorted(
        (*(scores[name] or unjudged), fees.get(name, 0), settings.priority, name)
        for name, settings, _ in gateways
    )
    return [name for *_, name in ordered]


@dataclass(frozen=True, slots=True)
class PaymentContext:
    """What routing may know of the payment it places."""

    amount: int  # centavos
    pix_key_type: str | None = None  # a withdrawal's key type (cpf, email, evp …)


class Router:
    def __init__(
        self,
        gateways: Mapping[str, PixGateway],
        health: HealthStore,
        *,
        simulated: Collection[str] = (),
        fees: Mapping[str, FeeSchedule] | None = None,
    ) -> None:
        """``simulated``: the names of the gateways served by a built-in simulator, shown
        to operators (the router routes them like any other). ``fees``: each gateway's
        configured fees (none: all equal)."""
        self.gateways = gateways
        self.health = health
        self.simulated = frozenset(simulated)
        self.fees: Mapping[str, FeeSchedule] = fees or {}

    def expected_fee(self, name: str, operation: Operation, context: PaymentContext | None) -> int:
        """What ``name`` is expected to charge for this payment (0 without a context)."""
        if context is None:
            return 0
        return self.fees.get(name, NO_FEES).expected(operation, context.amount)

    # --- the payments engine ------------------------------------------------------------
    async def candidates(
        self,
        operation: Operation,
        *,
        exclude: Collection[str] = (),
        context: PaymentContext | None = None,
    ) -> list[str]:
        """Usable gateways for ``operation``, best first. Reads only: it never takes a probe,
        so a half-open gateway is listed and :meth:`acquire` decides."""
        return [name for name, _ in await self._ranked(operation, exclude, context)]

    async def choose(
        self,
        operation: Operation,
        *,
        exclude: Collection[str] = (),
        context: PaymentContext | None = None,
    ) -> str | None:
        """The best usable gateway, ready to be called: :meth:`candidates` then
        :meth:`acquire` — which a closed circuit, just read, does not need (one Redis round
        trip less per payment); a half-open one is asked, so only one caller probes."""
        for name, circuit in await self._ranked(operation, exclude, context):
            if circuit is CircuitState.CLOSED or await self.acquire(name, operation):
                return name
        return None

    async def _ranked(
        self, operation: Operation, exclude: Collection[str], context: PaymentContext | None
    ) -> list[tuple[str, CircuitState]]:
        needs = OPERATION_CAPABILITY[operation]
        names = [
            name
            for name, gateway in self.gateways.items()
            if name not in exclude and (needs is None or needs in gateway.capabilities)
        ]
        views = await self.health.view(names, operation)
        usable = [
            (name, settings, health)
            for name, (settings, health) in zip(names, views, strict=True)
            if settings.enabled and health.circuit is not CircuitState.OPEN
        ]
        circuits = {name: health.circuit for name, _, health in usable}
        fees = {name: self.expected_fee(name, operation, context) for name, _, _ in usable}
        ranked = rank(usable, min_samples=self.health.config.min_samples, fees=fees)
        return [(name, circuits[name]) for name in ranked]

    async def acquire(self, name: str, operation: str) -> bool:
        """Call right before sending: False when the circuit is open or another caller holds
        the half-open probe (then try the next candidate)."""
        return await self.health.allow(name, operation)

    async def record(self, name: str, operation: str, outcome: Outcome, latency_ms: int) -> None:
        await self.health.record(name, operation, outcome, latency_ms)

    async def record_many(self, samples: Sequence[Sample]) -> None:
        """:meth:`record` for each, in one round trip (the gateway reads of a batch)."""
        await self.health.record_many(samples)

    async def _read_all(
        self, name: str, operations: list[Operation]
    ) -> tuple[GatewaySettings, list[GatewayHealth]]:
        """The gateway's settings and each operation's health: one read per operation."""
        views = await asyncio.gather(*(self.health.view([name], op) for op in operations))
        return views[0][0][0], [view[0][1] for view in views]

    # --- recovery without traffic -------------------------------------------------------
    async def probe_open_circuits(self) -> dict[str, str]:
        """Probe every enabled gateway that has a circuit past its cooldown.

        Returns, per probed gateway: ``recovered`` (it answered; its circuits closed),
        ``still_down`` (re-opened for another cooldown) or ``probe_in_flight`` (another
        caller holds every probe). Gateways with nothing to probe are left out.
        """
        names = list(self.gateways)
        results = await asyncio.gather(*(self._probe_gateway(name) for name in names))
        return {name: result for name, result in zip(names, results, strict=True) if result}

    async def _probe_gateway(self, name: str) -> str | None:
        gateway = self.gateways[name]
        operations = operations_of(gateway)
        settings, snapshots = await self._read_all(name, operations)
        due = [
            operation
            for operation, health in zip(operations, snapshots, strict=True)
            if health.circuit is CircuitState.HALF_OPEN
        ]
        if not settings.enabled or not due:
            return None
        won = [operation for operation in due if await self.health.allow(name, operation)]
        if not won:
            return "probe_in_flight"
        outcome, latency_ms = await self._read(gateway)
        for operation in won:
            await self.health.record(name, operation, outcome, latency_ms)
        result = "recovered" if outcome in UP_OUTCOMES else "still_down"
        log.info(
            "gateway.probed",
            gateway=name,
            operations=[str(operation) for operation in won],
            outcome=str(outcome),
            result=result,
            latency_ms=latency_ms,
        )
        return result

    async def reachable(self, name: str) -> Outcome:
        """One cheap read of ``name``, recorded nowhere: SUCCEEDED or REJECTED when it
        answered. For a tool that must know before it writes anything (`pixwave reconcile`)."""
        outcome, _ = await self._read(self._gateway(name))
        return outcome

    async def _read(self, gateway: PixGateway) -> tuple[Outcome, int]:
        """One cheap read of something that cannot exist: any answer proves the gateway up."""
        reference = generate_txid()
        started = time.monotonic()
        try:
            if Capability.SEND in gateway.capabilities:
                await gateway.get_send(reference=reference)
            elif Capability.CHARGE in gateway.capabilities:
                await gateway.get_charge(reference)
            else:
                await gateway.get_refund(
                    reference=reference, charge_id=reference, end_to_end_id=None, refund_id=None
                )
            outcome = Outcome.SUCCEEDED
        except UnsupportedOperation as exc:
            # Refused locally, nothing reached the provider: that proves nothing.
            log.warning("gateway.probe_unsupported", gateway=gateway.name, error=repr(exc))
            outcome = Outcome.UNAVAILABLE
        except GatewayRejected:
            outcome = Outcome.REJECTED  # GatewayNotFound included: the provider answered
        except GatewayError as exc:
            outcome = exc.outcome
        except Exception as exc:  # a connector bug must not stop the other probes
            log.error("gateway.probe_error", gateway=gateway.name, error=repr(exc))
            outcome = Outcome.UNAVAILABLE
        return outcome, int((time.monotonic() - started) * 1000)

    # --- state changes ------------------------------------------------------------------
    async def report_state_changes(self) -> list[StateChange]:
        """Log every gateway whose state differs from the one last reported, and return them.

        The last reported state lives in the health store and is swapped atomically, so a
        change is logged once for the cluster — even when two runs overlap or the job moves
        to another worker or scheduler leader. A gateway never reported before counts as
        having been ``idle``: starting up quiet logs nothing, starting up down logs at once.
        Called by the periodic job only: it costs a read per (gateway, operation) and a
        write per gateway, none of them on a payment's path.
        """
        changes: list[StateChange] = []
        for status in await self.overview():
            stored = await self.health.swap_state(status.name, status.state)
            previous = stored or HealthState.IDLE
            if previous is status.state:
                continue
            change = StateChange(gateway=status.name, previous=previous, current=status.verdict)
            changes.append(change)
            getattr(log, STATE_CHANGE_LEVELS[status.state])(
                "gateway.state_changed",
                gateway=status.name,
                from_state=str(previous),
                to_state=str(status.state),
                reason=status.verdict.reason,
                operations={op: str(v.state) for op, v in status.verdicts.items()},
                simulated=status.simulated,
            )
        return changes

    # --- operators ----------------------------------------------------------------------
    def _gateway(self, name: str) -> PixGateway:
        gateway = self.gateways.get(name)
        if gateway is None:
            raise UnknownGateway(f"gateway {name!r} is not configured")
        return gateway

    async def status(self, name: str) -> GatewayStatus:
        gateway = self._gateway(name)
        operations = operations_of(gateway)
        settings, snapshots = await self._read_all(name, operations)
        healths = {
            str(operation): health for operation, health in zip(operations, snapshots, strict=True)
        }
        verdicts = {
            operation: operation_verdict(health, self.health.config)
            for operation, health in healths.items()
        }
        verdict = gateway_verdict(settings, verdicts)
        observe_gateway_status(name, healths, verdict)
        return GatewayStatus(
            name=name,
            settings=settings,
            capabilities=gateway.capabilities,
            simulated=name in self.simulated,
            operations=healths,
            verdicts=verdicts,
            verdict=verdict,
        )

    async def overview(self) -> list[GatewayStatus]:
        """Every configured gateway, in the operator's priority order."""
        statuses = await asyncio.gather(*(self.status(name) for name in self.gateways))
        return sorted(statuses, key=lambda s: (s.settings.priority, s.name))

    async def configure(
        self, name: str, *, enabled: bool | None = None, priority: int | None = None
    ) -> GatewayStatus:
        """Change a gateway's settings; every process routes by them from the next call."""
        self._gateway(name)
        before = await self.health.get_settings(name)
        after = await self.health.set_settings(name, enabled=enabled, priority=priority)
        if after != before:
            log.info(
                "gateway.settings_changed",
                gateway=name,
                enabled=after.enabled,
                priority=after.priority,
            )
        return await self.status(name)

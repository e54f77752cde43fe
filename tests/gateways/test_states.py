"""Health states: the rules table row by row, a gateway's state from its operations', the
full-outage case the circuit alone cannot show, and each change logged once for the cluster.

Rules are driven through a real store's window and circuit on a fake clock (the memory store
for the table; both stores for the once-only log), never through hand-built snapshots alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from pixwave.gateways.errors import Outcome
from pixwave.gateways.health import (
    STATE_RULES,
    CircuitState,
    GatewaySettings,
    HealthConfig,
    HealthState,
    MemoryHealthStore,
    Verdict,
    gateway_verdict,
    operation_verdict,
)
from pixwave.gateways.router import Router
from pixwave.gateways.tasks import probe
from pixwave.notifications.models import OutboxEvent
from pixwave.resources import Resources
from tests.gateways.support import Backend, FakeClock, FakeGateway, World, down

UP = HealthState.UP
DEGRADED = HealthState.DEGRADED
DOWN = HealthState.DOWN
IDLE = HealthState.IDLE
DISABLED = HealthState.DISABLED

#: A step of a scenario: ("ok" | "fail", how many calls) or ("wait", seconds).
Step = tuple[str, float]


@dataclass(frozen=True)
class Row:
    """One scenario for one rule of STATE_RULES: what happens, and the verdict it must give."""

    what: str
    steps: tuple[Step, ...]
    state: HealthState
    reason: str


ROWS = (
    Row("five failures open the circuit", (("fail", 5),), DOWN, "circuit_open"),
    Row(
        "the cooldown is over, no probe reported yet",
        (("fail", 5), ("wait", 10)),
        DOWN,
        "circuit_half_open",
    ),
    Row(
        "three failures in a row after a minute of successes: circuit still closed",
        (("ok", 20), ("fail", 3)),
        DOWN,
        "failures_in_a_row",
    ),
    Row("one failure after successes", (("ok", 20), ("fail", 1)), DEGRADED, "last_call_failed"),
    Row(
        "a failure just out of the window is still the last call",
        (("fail", 1), ("wait", 61)),
        DEGRADED,
        "last_call_failed",
    ),
    Row("nothing called", (), IDLE, "no_recent_calls"),
    Row(
        "successes that left the window",
        (("ok", 20), ("wait", 61)),
        IDLE,
        "no_recent_calls",
    ),
    Row("failures whose streak is forgotten", (("fail", 2), ("wait", 67)), IDLE, "no_recent_calls"),
    Row(
        "judged: 80 % over ten calls, the last one answered",
        (("fail", 2), ("ok", 8)),
        DEGRADED,
        "low_success_rate",
    ),
    Row("judged and answering", (("ok", 9), ("fail", 1), ("ok", 10)), UP, "answering"),
    Row(
        "50 % over two calls: below min_samples, the rate is not judged",
        (("fail", 1), ("ok", 1)),
        UP,
        "answering",
    ),
)


async def play(store: MemoryHealthStore, clock: FakeClock, steps: tuple[Step, ...]) -> None:
    for kind, amount in steps:
        if kind == "wait":
            clock.advance(amount)
            continue
        outcome = Outcome.SUCCEEDED if kind == "ok" else Outcome.UNAVAILABLE
        for _ in range(int(amount)):
            await store.record("efi", "send", outcome, 100)


class TestStateRules:
    @pytest.mark.parametrize("row", ROWS, ids=[row.what for row in ROWS])
    async def test_row(self, row: Row) -> None:
        """Each scenario gets its rule's state and reason, by the default thresholds."""
        clock = FakeClock()
        store = MemoryHealthStore(gateways=["efi"], now=clock)
        await play(store, clock, row.steps)
        health = await store.snapshot("efi", "send")
        assert operation_verdict(health, store.config) == Verdict(row.state, row.reason)

    def test_every_rule_has_a_row(self) -> None:
        """No rule of the table goes without a scenario above."""
        assert {rule.reason for rule in STATE_RULES} == {row.reason for row in ROWS}

    async def test_thresholds_come_from_the_config(self) -> None:
        """down_after_failures and degraded_below are the configuration's."""
        clock = FakeClock()
        config = HealthConfig(down_after_failures=1, degraded_below=0.99)
        store = MemoryHealthStore(config, gateways=["efi"], now=clock)
        await play(store, clock, (("ok", 20), ("fail", 1)))
        verdict = operation_verdict(await store.snapshot("efi", "send"), config)
        assert verdict == Verdict(DOWN, "failures_in_a_row")
        await play(store, clock, (("ok", 1),))  # 21 of 22: 95 %, under 99 %
        verdict = operation_verdict(await store.snapshot("efi", "send"), config)
        assert verdict == Verdict(DEGRADED, "low_success_rate")

    async def test_the_rate_is_judged_from_min_samples(self) -> None:
        """With min_samples=50, 22 calls at 95 % are not judged; the default 5 judges them."""
        clock = FakeClock()
        config = HealthConfig(degraded_below=0.99, min_samples=50)
        store = MemoryHealthStore(config, gateways=["efi"], now=clock)
        await play(store, clock, (("fail", 1), ("ok", 21)))
        health = await store.snapshot("efi", "send")
        assert operation_verdict(health, config) == Verdict(UP, "answering")
        judged = HealthConfig(degraded_below=0.99)
        assert operation_verdict(health, judged) == Verdict(DEGRADED, "low_success_rate")


class TestGatewayState:
    def test_the_worst_operation_wins(self) -> None:
        """down beats degraded beats up beats idle; the reason names the operation."""
        settings = GatewaySettings(enabled=True, priority=1)
        operations = {
            "charge": Verdict(UP, "answering"),
            "send": Verdict(DEGRADED, "last_call_failed"),
            "refund": Verdict(IDLE, "no_recent_calls"),
            "query": Verdict(DOWN, "circuit_open"),
        }
        assert gateway_verdict(settings, operations) == Verdict(DOWN, "query: circuit_open")
        del operations["query"]
        assert gateway_verdict(settings, operations) == Verdict(DEGRADED, "send: last_call_failed")
        del operations["send"]
        assert gateway_verdict(settings, operations) == Verdict(UP, "charge: answering")

    def test_idle_only_when_every_operation_is(self) -> None:
        """A gateway is idle when none of its operations was called lately."""
        settings = GatewaySettings(enabled=True, priority=1)
        idle = Verdict(IDLE, "no_recent_calls")
        assert gateway_verdict(settings, {"charge": idle, "query": idle}).state is IDLE

    def test_disabled_whatever_its_operations(self) -> None:
        """An operator-disabled gateway is disabled, even with an open circuit."""
        settings = GatewaySettings(enabled=False, priority=1)
        verdict = gateway_verdict(settings, {"send": Verdict(DOWN, "circuit_open")})
        assert verdict == Verdict(DISABLED, "disabled_by_operator")


class TestFullOutage:
    async def test_three_failed_tries_show_down_with_the_circuit_closed(self, world: World) -> None:
        """A payment tries a dead gateway three times, then falls back: the circuit (5
        failures) stays closed, so it alone says nothing; the state says down."""
        for _ in range(3):  # RETRY_TRIES_PER_GATEWAY
            await world.router.record("mercadopago", "charge", Outcome.UNAVAILABLE, 3_000)
        status = await world.router.status("mercadopago")
        assert status.operations["charge"].circuit is CircuitState.CLOSED
        assert status.verdicts["charge"] == Verdict(DOWN, "failures_in_a_row")
        assert status.verdict == Verdict(DOWN, "charge: failures_in_a_row")

    async def test_disabled_keeps_the_operations_states(self, world: World) -> None:
        """Disabling shows disabled for the gateway and what its operations last met."""
        await world.calls("efi", failed=3, operation="send")
        await world.health.set_settings("efi", enabled=False)
        status = await world.router.status("efi")
        assert status.state is DISABLED
        assert status.verdicts["send"].state is DOWN


def state_changes(logs: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """The gateway.state_changed lines: (level, gateway, from, to, reason)."""
    return [
        (e["log_level"], e["gateway"], e["from_state"], e["to_state"], e["reason"])
        for e in logs
        if e["event"] == "gateway.state_changed"
    ]


class TestStateChangeLog:
    async def test_logged_once_then_again_on_recovery(self, world: World) -> None:
        """Two runs in the same state log one warning; the recovery logs once, at info."""
        await world.calls("mercadopago", failed=3, operation="charge")
        with capture_logs() as logs:
            await world.router.report_state_changes()
            await world.router.report_state_changes()
        assert state_changes(logs) == [
            ("warning", "mercadopago", "idle", "down", "charge: failures_in_a_row")
        ]
        await world.calls("mercadopago", ok=1, operation="charge")
        with capture_logs() as logs:
            await world.router.report_state_changes()
            await world.router.report_state_changes()
        assert state_changes(logs) == [("info", "mercadopago", "down", "up", "charge: answering")]

    async def test_a_quiet_start_logs_nothing(self, world: World) -> None:
        """Gateways never called are idle, which is what "never reported" counts as."""
        with capture_logs() as logs:
            assert await world.router.report_state_changes() == []
        assert state_changes(logs) == []

    async def test_degraded_is_a_warning(self, world: World) -> None:
        """Going degraded warns too, and says which rule."""
        await world.calls("efi", ok=5, failed=1)
        with capture_logs() as logs:
            changes = await world.router.report_state_changes()
        assert [(c.gateway, c.previous, c.current.state) for c in changes] == [
            ("efi", IDLE, DEGRADED)
        ]
        assert state_changes(logs) == [
            ("warning", "efi", "idle", "degraded", "send: last_call_failed")
        ]

    async def test_an_operator_disabling_is_reported(self, world: World) -> None:
        """up → disabled is a change like any other, at info."""
        await world.calls("efi", ok=5)
        await world.router.report_state_changes()
        await world.router.configure("efi", enabled=False)
        with capture_logs() as logs:
            await world.router.report_state_changes()
        assert state_changes(logs) == [("info", "efi", "up", "disabled", "disabled_by_operator")]

    async def test_once_across_processes(self, backend: Backend) -> None:
        """Three processes (or successive scheduler leaders) report, two at the same time:
        the change is logged once, on Redis as in memory."""
        store = backend.store()
        gateways = {name: FakeGateway(name) for name in ("mercadopago", "efi")}
        routers = [Router(gateways, store if i == 0 else backend.peer(store)) for i in range(3)]
        for _ in range(3):
            await store.record("efi", "send", Outcome.UNAVAILABLE, 3_000)
        with capture_logs() as logs:
            await asyncio.gather(
                routers[0].report_state_changes(), routers[1].report_state_changes()
            )
            await routers[2].report_state_changes()
        assert state_changes(logs) == [
            ("warning", "efi", "idle", "down", "send: failures_in_a_row")
        ]


class TestProbeJob:
    async def test_reports_after_probing(self, any_resources: Resources) -> None:
        """The periodic job logs the outage once, then the recovery its own probe found; the
        outage also raises one `alert.gateway_down` event (the recovery none)."""
        world = World(FakeGateway("mercadopago"), FakeGateway("efi"))
        resources = cast(
            "Resources",
            SimpleNamespace(router=world.router, sessionmaker=any_resources.sessionmaker),
        )
        await world.calls("mercadopago", failed=5)
        with capture_logs() as logs:
            await probe(resources)  # cooling down: nothing to probe, the outage is reported
            await probe(resources)
            world.clock.advance(10)
            await probe(resources)  # the probe closes the circuit: recovered
        assert state_changes(logs) == [
            ("warning", "mercadopago", "idle", "down", "send: circuit_open"),
            ("info", "mercadopago", "down", "up", "send: answering"),
        ]
        async with any_resources.sessionmaker() as session:
            alerts = (
                await session.execute(
                    select(OutboxEvent.event_type, OutboxEvent.aggregate_id, OutboxEvent.payload)
                )
            ).all()
        assert [(a.event_type, a.aggregate_id, a.payload["reason"]) for a in alerts] == [
            ("alert.gateway_down", "mercadopago", "send: circuit_open")
        ]

    async def test_a_failed_probe_changes_nothing(self, any_resources: Resources) -> None:
        """Still down after the probe: nothing new to log."""
        world = World(FakeGateway("mercadopago", error=down("mercadopago")), FakeGateway("efi"))
        resources = cast(
            "Resources",
            SimpleNamespace(router=world.router, sessionmaker=any_resources.sessionmaker),
        )
        await world.calls("mercadopago", failed=5)
        await probe(resources)
        world.clock.advance(10)
        with capture_logs() as logs:
            await probe(resources)
        assert "gateway.probed" in [e["event"] for e in logs]
        assert state_changes(logs) == []

"""The router: which gateways a payment may use, in which order, and recovery by probing."""

from __future__ import annotations

import pytest

from pixwave.gateways.base import Capability
from pixwave.gateways.errors import GatewayAmbiguous, Outcome
from pixwave.gateways.fees import Fee, FeeSchedule
from pixwave.gateways.health import (
    CircuitState,
    GatewayHealth,
    GatewaySettings,
    HealthConfig,
    HealthState,
    Operation,
)
from pixwave.gateways.router import PaymentContext, Router, UnknownGateway, rank, score
from tests.gateways.support import T0, FakeGateway, World, at, down


class TestRanking:
    async def test_success_rate_beats_latency(self, world: World) -> None:
        """80 % at 100 ms loses to 100 % at 900 ms."""
        await world.calls("mercadopago", ok=8, failed=2, latency_ms=100)
        await world.calls("efi", ok=10, latency_ms=900)
        assert await world.send_candidates() == ["efi", "mercadopago"]

    async def test_latency_beats_priority(self, world: World) -> None:
        """At the same success rate the faster gateway wins over the preferred one."""
        await world.calls("mercadopago", ok=10, latency_ms=600)
        await world.calls("efi", ok=10, latency_ms=100)
        assert await world.send_candidates() == ["efi", "mercadopago"]

    async def test_priority_breaks_ties(self, world: World) -> None:
        """Equal health: the operator's priority decides, and can be changed."""
        await world.calls("mercadopago", ok=10)
        await world.calls("efi", ok=10)
        assert await world.send_candidates() == ["mercadopago", "efi"]
        await world.health.set_settings("efi", priority=1)
        await world.health.set_settings("mercadopago", priority=3)
        assert await world.send_candidates() == ["efi", "mercadopago"]

    async def test_rounding_prevents_flapping(self, world: World) -> None:
        """98 % at 120 ms ties with 100 % at 110 ms, so priority keeps the order stable."""
        await world.calls("mercadopago", ok=49, failed=1, latency_ms=120)
        await world.calls("efi", ok=50, latency_ms=110)
        assert await world.send_candidates() == ["mercadopago", "efi"]

    def test_score_buckets(self) -> None:
        """Rates round to 0.05 and latencies to 50 ms before comparing."""
        assert score(health(0.98, 130)) == score(health(1.0, 140))
        assert score(health(0.97, 130)) > score(health(1.0, 140))
        assert score(health(0.9, 100)) < score(health(0.8, 100))
        assert score(health(1.0, 120)) == (-20, 2)


def health(rate: float | None, p95: int | None, samples: int = 10) -> GatewayHealth:
    return GatewayHealth(
        success_rate=rate,
        samples=samples,
        p95_latency_ms=p95,
        circuit=CircuitState.CLOSED,
        open_until=None,
    )


def settings(priority: int) -> GatewaySettings:
    return GatewaySettings(enabled=True, priority=priority)


class TestCostAwareRouting:
    """Fees break ties between gateways of equal health; health always comes first."""

    @staticmethod
    def priced(world: World, **fees: str) -> Router:
        return Router(
            dict(world.gateways),
            world.health,
            fees={name: FeeSchedule.parse(text) for name, text in fees.items()},
        )

    async def test_the_cheaper_of_equals_wins_over_priority(self, world: World) -> None:
        """Equal health: the gateway expected to charge less for this payment goes first."""
        await world.calls("mercadopago", ok=10)
        await world.calls("efi", ok=10)
        router = self.priced(world, mercadopago="send=99", efi="send=10")
        context = PaymentContext(amount=100_00)
        assert await router.candidates(Operation.SEND, context=context) == ["efi", "mercadopago"]
        assert await router.choose(Operation.SEND, context=context) == "efi"

    async def test_the_fee_depends_on_the_amount(self, world: World) -> None:
        """A flat fee against a percentage: which is cheaper turns on the amount."""
        router = self.priced(world, mercadopago="send=50", efi="send=1+100bp")
        small, large = PaymentContext(amount=10_00), PaymentContext(amount=1_000_00)
        assert await router.candidates(Operation.SEND, context=small) == ["efi", "mercadopago"]
        assert await router.candidates(Operation.SEND, context=large) == ["mercadopago", "efi"]
        assert router.expected_fee("efi", Operation.SEND, large) == 1 + 10_00

    async def test_a_cheap_failing_gateway_never_wins(self, world: World) -> None:
        """Health first: a free gateway at 80 % loses to an expensive one at 100 %."""
        await world.calls("mercadopago", ok=10)
        await world.calls("efi", ok=8, failed=2)
        router = self.priced(world, mercadopago="send=500+200bp", efi="send=0")
        context = PaymentContext(amount=100_00)
        assert await router.candidates(Operation.SEND, context=context) == ["mercadopago", "efi"]

    async def test_without_a_context_fees_do_not_count(self, world: World) -> None:
        router = self.priced(world, mercadopago="send=99", efi="send=0")
        assert await router.candidates(Operation.SEND) == ["mercadopago", "efi"]

    async def test_fees_are_per_operation(self, world: World) -> None:
        """A gateway cheap for sends is not thereby cheap for charges."""
        router = self.priced(world, mercadopago="charge=0+99bp", efi="charge=0+119bp,send=0")
        context = PaymentContext(amount=100_00)
        assert await router.candidates(Operation.CHARGE, context=context) == [
            "mercadopago",
            "efi",
        ]


class TestFees:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("charge=0+99bp", {Operation.CHARGE: Fee(0, 99)}),
            ("send=25, refund=10+5bp", {Operation.SEND: Fee(25, 0), Operation.REFUND: Fee(10, 5)}),
            ("charge=119bp", {Operation.CHARGE: Fee(0, 119)}),
            ("", {}),
            (None, {}),
        ],
    )
    def test_parse(self, text: str | None, expected: dict[Operation, Fee]) -> None:
        assert FeeSchedule.parse(text).fees == expected

    @pytest.mark.parametrize(
        "text",
        [
            "charge=",
            "charge=abc",
            "query=1",
            "payout=1",
            "charge=99b",
            "charge=5+",
            "send=1,send=2",
        ],
    )
    def test_what_it_cannot_read_is_refused(self, text: str) -> None:
        with pytest.raises(ValueError, match="fee"):
            FeeSchedule.parse(text)

    @pytest.mark.parametrize(
        ("fee", "amount", "expected"),
        [(Fee(0, 99), 100_00, 99), (Fee(0, 99), 50, 0), (Fee(0, 100), 50, 1), (Fee(7, 0), 1, 7)],
    )
    def test_integer_fee_rounds_half_up(self, fee: Fee, amount: int, expected: int) -> None:
        """0.99 % of R$ 100 is 99 centavos; 1 % of 50 centavos is half a centavo → 1."""
        assert fee.of(amount) == expected

    def test_a_bad_fee_setting_is_refused_at_start(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """`MERCADOPAGO_FEES` is validated with the family's other settings."""
        from pydantic import ValidationError

        from pixwave.gateways.mercadopago.spec import MERCADOPAGO

        monkeypatch.setenv("MERCADOPAGO_FEES", "charge=lots")
        with pytest.raises(ValidationError, match="fee"):
            MERCADOPAGO.load_settings()
        monkeypatch.setenv("MERCADOPAGO_FEES", "charge=0+99bp")
        assert MERCADOPAGO.load_settings().fee_schedule.expected(Operation.CHARGE, 100_00) == 99


class TestMinimumSamples:
    """Below min_samples (5) calls in the window a gateway is not judged on rate or latency."""

    async def test_one_call_does_not_demote_the_preferred_gateway(self, world: World) -> None:
        """The README tour: one 120 ms deposit on Mercado Pago, none on Efí — Mercado Pago
        (priority 1) keeps the traffic instead of losing it to an untried gateway's "0 ms"."""
        await world.calls("mercadopago", ok=1, latency_ms=120, operation="charge")
        assert await world.router.candidates(Operation.CHARGE) == ["mercadopago", "efi"]

    async def test_both_below_the_minimum_go_by_priority(self, world: World) -> None:
        """Four slow, half-failing calls against four fast, perfect ones: priority decides."""
        await world.calls("mercadopago", ok=2, failed=2, latency_ms=900)
        await world.calls("efi", ok=4, latency_ms=20)
        assert await world.send_candidates() == ["mercadopago", "efi"]

    async def test_a_judged_poor_rate_loses_to_an_unjudged_gateway(self, world: World) -> None:
        """80 % over ten calls ranks after a gateway with one call: it is presumed healthy."""
        await world.calls("mercadopago", ok=8, failed=2)
        await world.calls("efi", ok=1)
        assert await world.send_candidates() == ["efi", "mercadopago"]

    async def test_no_calls_at_all_is_presumed_healthy(self, world: World) -> None:
        """A gateway nobody used lately beats a judged failing one: it gets tried again."""
        await world.calls("mercadopago", ok=8, failed=2)
        assert await world.send_candidates() == ["efi", "mercadopago"]

    async def test_a_judged_healthy_gateway_and_an_unjudged_one_go_by_priority(
        self, world: World
    ) -> None:
        """100 % at 300 ms (judged) against two fast calls: the unjudged one is given the
        judged one's latency, so priority decides — either way round."""
        await world.calls("mercadopago", ok=10, latency_ms=300)
        await world.calls("efi", ok=2, latency_ms=20)
        assert await world.send_candidates() == ["mercadopago", "efi"]
        await world.health.set_settings("efi", priority=1)
        await world.health.set_settings("mercadopago", priority=2)
        assert await world.send_candidates() == ["efi", "mercadopago"]

    async def test_judged_gateways_compare_on_numbers(self, world: World) -> None:
        """Once both have five calls, the faster wins over the preferred one, as before."""
        await world.calls("mercadopago", ok=5, latency_ms=120)
        await world.calls("efi", ok=5, latency_ms=20)
        assert await world.send_candidates() == ["efi", "mercadopago"]

    async def test_the_minimum_is_configured(self) -> None:
        """min_samples=1 judges after one call: the 120 ms gateway loses to the 20 ms one."""
        world = World(config=HealthConfig(min_samples=1))
        await world.calls("mercadopago", ok=1, latency_ms=120)
        await world.calls("efi", ok=1, latency_ms=20)
        assert await world.send_candidates() == ["efi", "mercadopago"]

    async def test_a_dead_gateway_below_the_minimum_is_stopped_by_its_circuit(
        self, world: World
    ) -> None:
        """Three failures keep the preferred gateway first; the fifth opens its circuit."""
        await world.calls("mercadopago", failed=3)
        assert await world.send_candidates() == ["mercadopago", "efi"]
        await world.calls("mercadopago", failed=2)
        assert await world.send_candidates() == ["efi"]

    def test_unjudged_takes_the_fastest_perfect_latency(self) -> None:
        """Three gateways: an unjudged one (priority 3) ties with the fastest judged gateway
        with a perfect rate, so it ranks after it by priority but before a slower one."""
        ranked = rank(
            [
                ("slow", settings(1), health(1.0, 600)),
                ("fast", settings(2), health(1.0, 100)),
                ("new", settings(3), health(None, None, samples=0)),
            ],
            min_samples=5,
        )
        assert ranked == ["fast", "new", "slow"]

    def test_unjudged_ignores_the_latency_of_imperfect_gateways(self) -> None:
        """A fast gateway with a poor rate does not set the latency an unjudged one is given."""
        ranked = rank(
            [
                ("flaky", settings(1), health(0.6, 20)),
                ("steady", settings(2), health(1.0, 500)),
                ("new", settings(3), health(1.0, 20, samples=2)),
            ],
            min_samples=5,
        )
        assert ranked == ["steady", "new", "flaky"]

    def test_only_unjudged_gateways(self) -> None:
        """With nothing judged, the order is the priority's, then the name's."""
        ranked = rank(
            [
                ("b", settings(2), health(0.0, 3_000, samples=4)),
                ("c", settings(1), health(None, None, samples=0)),
                ("a", settings(2), health(1.0, 10, samples=4)),
            ],
            min_samples=5,
        )
        assert ranked == ["c", "a", "b"]


class TestFiltering:
    async def test_disabled_is_left_out(self, world: World) -> None:
        """An operator-disabled gateway gets no traffic."""
        await world.health.set_settings("mercadopago", enabled=False)
        assert await world.send_candidates() == ["efi"]

    async def test_open_circuit_is_left_out(self, world: World) -> None:
        """An open send circuit removes the gateway for sends only."""
        await world.calls("mercadopago", failed=5)
        assert await world.send_candidates() == ["efi"]
        assert await world.router.candidates(Operation.CHARGE) == [
            "mercadopago",
            "efi",
        ]

    async def test_missing_capability_is_left_out(self) -> None:
        """A gateway that cannot send is never a send candidate."""
        world = World(
            FakeGateway("mercadopago", {Capability.CHARGE, Capability.REFUND}), FakeGateway("efi")
        )
        assert await world.send_candidates() == ["efi"]

    async def test_excluded_are_left_out(self, world: World) -> None:
        """Gateways the payment already tried can be excluded."""
        assert await world.send_candidates(exclude={"mercadopago"}) == ["efi"]
        assert await world.send_candidates(exclude=("mercadopago", "efi")) == []

    async def test_half_open_is_listed_without_taking_the_probe(self, world: World) -> None:
        """After the cooldown the gateway is a candidate again, and listing it takes no probe."""
        await world.calls("mercadopago", failed=5)
        world.clock.advance(10)
        for _ in range(3):
            assert "mercadopago" in await world.send_candidates()
        assert await world.router.acquire("mercadopago", "send")
        assert not await world.router.acquire("mercadopago", "send")


class TestChoose:
    async def test_the_best_closed_gateway_without_asking_its_circuit(
        self, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A closed circuit was just read: choosing it costs no `allow` round trip."""
        await world.calls("mercadopago", ok=5, latency_ms=300)
        await world.calls("efi", ok=5, latency_ms=20)
        asked: list[str] = []
        real_allow = world.health.allow

        async def allow(gateway: str, operation: str) -> bool:
            asked.append(gateway)
            return await real_allow(gateway, operation)

        monkeypatch.setattr(world.health, "allow", allow)
        assert await world.router.choose(Operation.SEND) == "efi"
        assert asked == []

    async def test_a_half_open_gateway_is_chosen_by_one_caller_only(self, world: World) -> None:
        """Both gateways past their cooldown: the first caller takes the preferred one's
        probe, the second the other's, and a third finds nothing to call."""
        await world.calls("mercadopago", failed=5)
        await world.calls("efi", failed=5)
        world.clock.advance(10)
        assert await world.router.choose(Operation.SEND) == "mercadopago"
        assert await world.router.choose(Operation.SEND) == "efi"
        assert await world.router.choose(Operation.SEND) is None


class TestAcquireAndRecord:
    async def test_closed_circuit_always_allows(self, world: World) -> None:
        """Healthy gateways never make callers wait."""
        assert all([await world.router.acquire("efi", "send") for _ in range(5)])

    async def test_open_circuit_refuses(self, world: World) -> None:
        """During the cooldown acquire says no."""
        await world.calls("efi", failed=5)
        assert not await world.router.acquire("efi", "send")

    async def test_record_reaches_the_store(self, world: World) -> None:
        """What the engine reports is what the health view shows."""
        await world.router.record("efi", "charge", Outcome.REJECTED, 40)
        health = await world.health.snapshot("efi", "charge")
        assert (health.samples, health.success_rate, health.p95_latency_ms) == (1, 1.0, 40)


class TestProbeOpenCircuits:
    async def test_brings_a_gateway_back_without_traffic(self, world: World) -> None:
        """After the cooldown a "not found" read closes the circuit: the gateway answered."""
        await world.calls("mercadopago", failed=5)
        world.clock.advance(10)
        assert await world.router.probe_open_circuits() == {"mercadopago": "recovered"}
        assert world.gateways["mercadopago"].reads == ["get_send"]
        assert (await world.health.snapshot("mercadopago", "send")).circuit is CircuitState.CLOSED
        assert await world.send_candidates() == ["mercadopago", "efi"]

    async def test_a_failed_probe_reopens(self) -> None:
        """A probe that cannot connect opens the circuit for another cooldown."""
        world = World(FakeGateway("mercadopago", error=down("mercadopago")), FakeGateway("efi"))
        await world.calls("mercadopago", failed=5)
        world.clock.advance(10)
        assert await world.router.probe_open_circuits() == {"mercadopago": "still_down"}
        health = await world.health.snapshot("mercadopago", "send")
        assert health.circuit is CircuitState.OPEN
        assert health.open_until == at(T0 + 20)

    async def test_an_ambiguous_probe_is_a_failure(self) -> None:
        """A read that times out proves nothing: the circuit stays open."""
        error = GatewayAmbiguous("read timeout", gateway="efi", operation="get_send", code="x")
        world = World(FakeGateway("mercadopago"), FakeGateway("efi", error=error))
        await world.calls("efi", failed=5)
        world.clock.advance(10)
        assert await world.router.probe_open_circuits() == {"efi": "still_down"}

    async def test_waits_for_the_cooldown(self, world: World) -> None:
        """An open circuit still cooling down is not probed."""
        await world.calls("mercadopago", failed=5)
        world.clock.advance(5)
        assert await world.router.probe_open_circuits() == {}
        assert world.gateways["mercadopago"].reads == []

    async def test_healthy_gateways_are_left_alone(self, world: World) -> None:
        """Nothing open, nothing called."""
        await world.calls("efi", ok=3)
        assert await world.router.probe_open_circuits() == {}
        assert world.gateways["efi"].reads == []

    async def test_a_probe_held_elsewhere_is_respected(self, world: World) -> None:
        """When another caller holds the probe, no second read is made."""
        await world.calls("mercadopago", failed=5)
        world.clock.advance(10)
        assert await world.router.acquire("mercadopago", "send")
        assert await world.router.probe_open_circuits() == {"mercadopago": "probe_in_flight"}
        assert world.gateways["mercadopago"].reads == []

    async def test_one_read_closes_every_due_circuit(self, world: World) -> None:
        """Send and query circuits open on the same gateway are both closed by one read."""
        await world.calls("efi", failed=5, operation="send")
        await world.calls("efi", failed=5, operation="query")
        world.clock.advance(10)
        assert await world.router.probe_open_circuits() == {"efi": "recovered"}
        assert world.gateways["efi"].reads == ["get_send"]
        for operation in ("send", "query"):
            health = await world.health.snapshot("efi", operation)
            assert health.circuit is CircuitState.CLOSED

    async def test_gateway_without_sends_is_probed_with_a_charge_read(self) -> None:
        """A charge-only gateway is probed by reading a charge that cannot exist."""
        world = World(FakeGateway("mercadopago", {Capability.CHARGE}))
        await world.calls("mercadopago", failed=5, operation="charge")
        world.clock.advance(10)
        assert await world.router.probe_open_circuits() == {"mercadopago": "recovered"}
        assert world.gateways["mercadopago"].reads == ["get_charge"]

    async def test_disabled_gateways_are_not_probed(self, world: World) -> None:
        """An operator-disabled gateway is not called, even to probe it."""
        await world.calls("mercadopago", failed=5)
        await world.health.set_settings("mercadopago", enabled=False)
        world.clock.advance(10)
        assert await world.router.probe_open_circuits() == {}
        assert world.gateways["mercadopago"].reads == []


class TestOperatorView:
    async def test_status_lists_each_supported_operation(self) -> None:
        """A gateway's status has a health entry for each operation it can serve, plus reads."""
        world = World(FakeGateway("mercadopago", {Capability.CHARGE, Capability.REFUND}))
        status = await world.router.status("mercadopago")
        assert list(status.operations) == ["charge", "refund", "query"]

    async def test_status_carries_the_states(self, world: World) -> None:
        """Each operation's state and the gateway's (its worst operation's) are in the status."""
        await world.calls("efi", ok=10, operation="charge")
        await world.calls("efi", ok=10, failed=1, operation="send")
        status = await world.router.status("efi")
        assert {op: v.state for op, v in status.verdicts.items()} == {
            "charge": HealthState.UP,
            "send": HealthState.DEGRADED,
            "refund": HealthState.IDLE,
            "query": HealthState.IDLE,
        }
        assert (status.state, status.verdict.reason) == (
            HealthState.DEGRADED,
            "send: last_call_failed",
        )

    async def test_simulated_comes_from_the_constructor(self) -> None:
        """Gateways named in ``simulated`` say so; the others, and every gateway of a router
        built without it, are real."""
        world = World(simulated=["efi"])
        overview = {s.name: s.simulated for s in await world.router.overview()}
        assert overview == {"mercadopago": False, "efi": True}
        assert not any(s.simulated for s in await World().router.overview())

    async def test_unknown_gateway(self, world: World) -> None:
        """Asking about a gateway that is not configured is a 404-class error."""
        with pytest.raises(UnknownGateway):
            await world.router.configure("pagseguro", enabled=False)
        assert (await world.health.get_settings("pagseguro")).enabled is True

"""The router: which gateways a payment may use, in which order, and recovery by probing."""

from __future__ import annotations

from collections.abc import Collection, Iterable

import pytest

from pixwave.gateways.base import (
    Capability,
    Charge,
    ChargeRequest,
    InboundWebhook,
    PixGateway,
    Refund,
    RefundRequest,
    Send,
    SendRequest,
    WebhookEvent,
)
from pixwave.gateways.errors import (
    GatewayAmbiguous,
    GatewayError,
    GatewayNotFound,
    GatewayUnavailable,
    Outcome,
)
from pixwave.gateways.health import (
    CircuitState,
    GatewayHealth,
    GatewaySettings,
    HealthStore,
    MemoryHealthStore,
    Operation,
)
from pixwave.gateways.router import Router, UnknownGateway, rank
from tests.gateways.test_health import T0, FakeClock, at

ALL = frozenset({Capability.CHARGE, Capability.SEND, Capability.REFUND, Capability.WEBHOOK})


class FakeGateway:
    """A connector whose reads answer "not found" (it is up) or raise ``error`` (it is down)."""

    def __init__(
        self,
        name: str,
        capabilities: Iterable[Capability] = ALL,
        *,
        error: GatewayError | None = None,
    ) -> None:
        self.name = name
        self.capabilities = frozenset(capabilities)
        self.error = error
        self.reads: list[str] = []

    def _answer(self, method: str, reference: str) -> GatewayError:
        self.reads.append(method)
        if self.error is not None:
            return self.error
        return GatewayNotFound(
            f"no {reference}", gateway=self.name, operation=method, code="not_found"
        )

    async def get_send(self, reference: str, send_id: str | None = None) -> Send:
        raise self._answer("get_send", reference)

    async def get_charge(self, charge_id: str) -> Charge:
        raise self._answer("get_charge", charge_id)

    async def get_refund(
        self, *, reference: str, charge_id: str, end_to_end_id: str | None, refund_id: str | None
    ) -> Refund:
        raise self._answer("get_refund", reference)

    async def create_charge(self, request: ChargeRequest) -> Charge:
        raise AssertionError("the router never moves money")

    async def cancel_charge(self, charge_id: str) -> Charge:
        raise AssertionError("the router never moves money")

    async def send_pix(self, request: SendRequest) -> Send:
        raise AssertionError("the router never moves money")

    async def refund(self, request: RefundRequest) -> Refund:
        raise AssertionError("the router never moves money")

    def verify_webhook(self, request: InboundWebhook) -> list[WebhookEvent]:
        raise AssertionError("not used")

    async def aclose(self) -> None:
        return None


def down(name: str) -> GatewayUnavailable:
    return GatewayUnavailable("connect failed", gateway=name, operation="get_send", code="x")


class World:
    """Two fake gateways behind a memory store on a fake clock."""

    def __init__(self, *gateways: FakeGateway) -> None:
        self.clock = FakeClock()
        self.gateways = {g.name: g for g in gateways} or {
            "mercadopago": FakeGateway("mercadopago"),
            "efi": FakeGateway("efi"),
        }
        self.health: HealthStore = MemoryHealthStore(gateways=self.gateways, now=self.clock)
        typed: dict[str, PixGateway] = dict(self.gateways)
        self.router = Router(typed, self.health)

    async def calls(
        self,
        name: str,
        *,
        ok: int = 0,
        failed: int = 0,
        latency_ms: int = 100,
        operation: str = "send",
    ) -> None:
        for _ in range(ok):
            await self.router.record(name, operation, Outcome.SUCCEEDED, latency_ms)
        for _ in range(failed):
            await self.router.record(name, operation, Outcome.UNAVAILABLE, latency_ms)

    async def send_candidates(self, exclude: Collection[str] = ()) -> list[str]:
        return await self.router.candidates(Operation.SEND, exclude=exclude)


@pytest.fixture
def world() -> World:
    return World()


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

    async def test_no_samples_counts_as_healthy(self, world: World) -> None:
        """A gateway nobody used lately ranks as 100 %: it gets tried again."""
        await world.calls("mercadopago", ok=8, failed=2)
        assert await world.send_candidates() == ["efi", "mercadopago"]

    def test_rank_buckets(self) -> None:
        """Rates round to 0.05 and latencies to 50 ms before comparing."""

        def health(rate: float | None, p95: int | None) -> GatewayHealth:
            return GatewayHealth(
                success_rate=rate,
                samples=1,
                p95_latency_ms=p95,
                circuit=CircuitState.CLOSED,
                open_until=None,
            )

        settings = GatewaySettings(enabled=True, priority=1)
        assert rank(settings, health(0.98, 130)) == rank(settings, health(1.0, 140))
        assert rank(settings, health(0.97, 130)) > rank(settings, health(1.0, 140))
        assert rank(settings, health(None, None)) == (-20, 0, 1)
        assert rank(settings, health(0.9, 100)) < rank(settings, health(0.8, 100))


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

    async def test_unknown_gateway(self, world: World) -> None:
        """Asking about a gateway that is not configured is a 404-class error."""
        with pytest.raises(UnknownGateway):
            await world.router.configure("pagseguro", enabled=False)
        assert (await world.health.get_settings("pagseguro")).enabled is True
